"""Semantic cache latency: end-to-end lookups at 10k entries, and how soon a hit starts streaming.

1. Lookup (``SemanticCache.lookup``: embed the task, search the index in the context's profile,
   read the candidates' entries, run the matcher, count the hit) on a cache of ``ENTRIES``
   stored solutions (2 KB outputs, 50 context profiles), for tasks that hit and tasks that miss.
   Targets: p50 at most 10 ms, p99 at most 25 ms. Baseline in the same run: the embedding of
   the same task alone, the floor of any semantic lookup; the ratio says what the rest costs.
2. Time to first chunk: from the moment a session starts (the user's Enter) to the first cached
   chunk's synthesis event, on a warm cache (the TUI warms it while the user types). Target:
   100 ms. Baseline: the same session with the cache off, to its ``session_started`` event.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from facilitair_tui.cache import SemanticCache
from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.native import Embedder
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver

ENTRIES = 10_000
PROFILES = 50
LOOKUPS = 400
SESSIONS = 30

VERBS = ("Build", "Write", "Add", "Implement", "Design", "Refactor", "Test", "Document", "Deploy", "Migrate")
THINGS = (
    "a REST API", "a CLI tool", "a cron job", "a GraphQL schema", "a login form", "a rate limiter",
    "an LRU cache", "a CSV importer", "a webhook handler", "a search page", "a billing report",
    "a Kafka consumer", "a Terraform module", "a Dockerfile", "a retry policy", "an audit log",
)  # fmt: skip
DETAILS = (
    "for orders", "for invoices", "with JWT auth", "with pagination", "for the admin panel",
    "with unit tests", "for mobile clients", "behind a feature flag", "for EU customers",
    "with structured logging", "for the data team", "using async I/O", "with OpenTelemetry",
)  # fmt: skip


def task(rng: random.Random, n: int) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(DETAILS)} (ticket {n})"


def context(n: int) -> dict[str, str]:
    return {"language": ("python", "go", "typescript", "java", "rust")[n % 5], "team_size": str(n % 10 + 1)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill(cache: SemanticCache) -> list[tuple[str, dict[str, str]]]:
    rng = random.Random(7)
    stored = []
    started = time.perf_counter()
    with cache.batch():
        for n in range(ENTRIES):
            t, c = task(rng, n), context(n % PROFILES)
            cache.put(t, c, f"# Solution {n}\n\n" + "lorem ipsum " * 170, cost_usd=0.01, duration_s=30.0)
            stored.append((t, c))
    print(f"filled {ENTRIES:,} entries in {time.perf_counter() - started:.1f} s")
    return stored


def bench_lookups(cache: SemanticCache, embedder: Embedder, stored: list[tuple[str, dict[str, str]]]) -> None:
    rng = random.Random(11)
    hits = [rng.choice(stored) for _ in range(LOOKUPS // 2)]
    misses = [(task(rng, 99_999 + i), context(i)) for i in range(LOOKUPS // 2)]
    requests = hits + misses
    rng.shuffle(requests)
    lookup_ms, embed_ms, served = [], [], 0
    for t, c in requests:  # interleaved, so both see the same machine
        start = time.perf_counter()
        embedder.encode([t])
        embed_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        served += cache.lookup(t, c) is not None
        lookup_ms.append((time.perf_counter() - start) * 1e3)
    p50, p99 = statistics.median(lookup_ms), pct(lookup_ms, 0.99)
    e50, e99 = statistics.median(embed_ms), pct(embed_ms, 0.99)
    print(
        f"\nLookup at {len(cache.list()):,} entries "
        f"({LOOKUPS} lookups, half of them stored tasks; {served} served)"
    )
    print(f"  embedding alone (baseline)  p50 {e50:6.2f} ms   p99 {e99:6.2f} ms")
    print(f"  lookup end to end           p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   (targets 10 / 25 ms)")
    print(f"  lookup / embedding          p50 {p50 / e50:5.2f}x    p99 {p99 / e99:5.2f}x")


async def first_event(
    cache: SemanticCache | None, wanted: type[ev.Event], t: str, c: dict[str, str]
) -> float:
    """Milliseconds from starting a session to its first ``wanted`` event (then it is stopped)."""
    workflow = load_workflow(Path(__file__).parents[1] / "tests" / "data" / "scripted_workflow.toml")
    provider = ScriptedProvider(lambda request: Reply(["never called on a hit"]))
    spec = SessionSpec(task=t, workflow=workflow, strategy="test", context=c)
    collaboration = Collaboration(spec, SingleProviderResolver(provider), cache=cache)
    start = time.perf_counter()
    elapsed: float | None = None
    async for event in collaboration.events():
        if elapsed is None and isinstance(event, wanted):
            elapsed = (time.perf_counter() - start) * 1e3
            collaboration.stop()
    if elapsed is None:
        raise RuntimeError(f"no {wanted.__name__} event")
    return elapsed


def bench_first_chunk(cache: SemanticCache) -> None:
    from facilitair_tui.core.cache import SolvedSession

    t, c = "Add cursor-based pagination to the orders endpoint", {"language": "python"}
    syntheses = [
        ev.Synthesis(
            session_id="x", chunk=i, agreed=[], debated=[], confidence=None, text=f"chunk {i} " * 200
        )
        for i in range(1, 5)
    ]
    cache.remember(
        SolvedSession(
            task=t,
            context=c,
            output="out",
            chunks=["A", "B", "C", "D"],
            syntheses=syntheses,
            models={},
            strategy="test",
            workflow="scripted",
            cost_usd=0.1,
            duration_s=60.0,
            input_tokens=1,
            output_tokens=1,
            session_id="x",
        )
    )
    cached, plain = [], []
    for _ in range(SESSIONS):
        cached.append(asyncio.run(first_event(cache, ev.Synthesis, t, c)))
        plain.append(asyncio.run(first_event(None, ev.SessionStarted, t, c)))
    print(f"\nTime to the first cached chunk after Enter ({SESSIONS} sessions, warm cache)")
    print(f"  cache off: to session_started (baseline)  p50 {statistics.median(plain):6.2f} ms")
    print(
        f"  cache hit: to chunk 1's synthesis         p50 {statistics.median(cached):6.2f} ms   "
        f"max {max(cached):6.2f} ms   (target 100 ms)"
    )


def main() -> None:
    embedder = Embedder.load()
    with (
        tempfile.TemporaryDirectory() as directory,
        SemanticCache.open(Path(directory) / "cache", embedder=embedder) as cache,
    ):
        stored = fill(cache)
        bench_lookups(cache, embedder, stored)
        bench_first_chunk(cache)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
