"""Orchestration overhead: what the engine costs around the models.

1. A 4-chunk collaboration (3 agents + synthesizer) on an instant in-process provider, against
   a baseline measured in the same run: the same provider streams (same calls, same deltas,
   the same concurrency per chunk) consumed directly with no engine. The difference is the
   time the collaboration spends outside the provider. Target: at most 5 ms per collaboration.
2. Token delivery latency, from the moment the provider yields a delta to the moment the
   consumer holds its event, with agents streaming at a real pace (1 delta/ms each); baseline:
   one bare asyncio.Queue hop under the same pacing. Target: p99 at most 1 ms. (A token event
   that merges deltas which piled up counts once per delta, each from its own yield.)

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ChatRequest, ModelRef, StreamItem, TextDelta, Usage
from facilitair_tui.core.workflow import load_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = load_workflow(ROOT / "tests" / "data" / "scripted_workflow.toml")
DELTAS_PER_CALL = 64
RUNS = 60


class InstantProvider:
    """Yields its deltas as fast as the consumer takes them; optional pacing per delta."""

    name = "bench"

    def __init__(self, pace_s: float = 0.0) -> None:
        self.pace_s = pace_s
        self.sent_at: dict[str, int] = {}

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        prefix = f"{request.model}-{id(request)}-"
        for i in range(DELTAS_PER_CALL):
            if self.pace_s:
                await asyncio.sleep(self.pace_s)
            text = f"{prefix}{i} "
            self.sent_at[text] = time.perf_counter_ns()
            yield TextDelta(text)
        yield Usage(100, DELTAS_PER_CALL)

    async def aclose(self) -> None:
        return None

    def resolve(self, ref: ModelRef) -> InstantProvider:
        return self


def _spec() -> SessionSpec:
    return SessionSpec(
        task="Build a REST API with JWT auth", workflow=WORKFLOW, strategy="test", read_after_tokens=8
    )


async def one_collaboration() -> tuple[float, int]:
    provider = InstantProvider()
    collab = Collaboration(_spec(), provider)
    count = 0
    start = time.perf_counter()
    async for _event in collab.events():
        count += 1
    return time.perf_counter() - start, count


async def one_baseline() -> float:
    """The same streams with no engine: per chunk, 3 concurrent calls, then one more."""
    provider = InstantProvider()
    request = ChatRequest(model="m", messages=(), max_tokens=DELTAS_PER_CALL)

    async def drain() -> list[StreamItem]:
        return [item async for item in provider.stream(request)]

    start = time.perf_counter()
    for _chunk in range(len(WORKFLOW.chunks)):
        await asyncio.gather(*(drain() for _ in WORKFLOW.roles))
        await drain()
    return time.perf_counter() - start


async def delivery_latency(pace_s: float) -> list[float]:
    provider = InstantProvider(pace_s=pace_s)
    collab = Collaboration(_spec(), provider)
    latencies = []
    async for event in collab.events():
        if isinstance(event, ev.Token):
            now = time.perf_counter_ns()
            # A token carries several deltas when the consumer lagged; each delta ends with a space.
            for delta in event.text.split(" ")[:-1]:
                latencies.append((now - provider.sent_at[f"{delta} "]) / 1e6)
    return latencies


async def queue_baseline(pace_s: float, producers: int = 3, n: int = 2000) -> list[float]:
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def produce() -> None:
        for _ in range(n // producers):
            await asyncio.sleep(pace_s)
            queue.put_nowait(time.perf_counter_ns())

    tasks = [asyncio.create_task(produce()) for _ in range(producers)]
    latencies = []
    for _ in range((n // producers) * producers):
        sent = await queue.get()
        latencies.append((time.perf_counter_ns() - sent) / 1e6)
    await asyncio.gather(*tasks)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    gc.collect()
    for _ in range(5):  # warm up imports, caches, the native module
        await one_collaboration()
        await one_baseline()
    collab_times, base_times = [], []
    events = 0
    for _ in range(RUNS):  # interleaved so machine noise hits both alike
        t, events = await one_collaboration()
        collab_times.append(t)
        base_times.append(await one_baseline())
    collab_ms = statistics.median(collab_times) * 1e3
    base_ms = statistics.median(base_times) * 1e3
    overhead = collab_ms - base_ms
    tokens = len(WORKFLOW.chunks) * (len(WORKFLOW.roles) + 1) * DELTAS_PER_CALL
    print("== Orchestration overhead: 4 chunks x (3 agents + synthesizer), instant provider ==")
    print(f"  deltas per collaboration: {tokens}, events: {events}, runs: {RUNS} (medians)")
    print(f"  baseline, provider streams alone:   {base_ms:8.3f} ms")
    print(f"  full collaboration:                 {collab_ms:8.3f} ms  (ratio {collab_ms / base_ms:.2f}x)")
    print(f"  outside the provider:               {overhead:8.3f} ms per collaboration (target <= 5 ms)")
    print(f"                                      {overhead * 1e3 / tokens:8.2f} us per delta")

    pace = 0.001
    ours = await delivery_latency(pace)
    base = await queue_baseline(pace)
    print("== Token delivery latency, provider yield -> consumer, 3 agents at 1 delta/ms ==")
    print(f"  baseline, one asyncio.Queue hop:    p50 {pct(base, 0.5):.3f} ms  p99 {pct(base, 0.99):.3f} ms")
    print(
        f"  engine:                             p50 {pct(ours, 0.5):.3f} ms  p99 {pct(ours, 0.99):.3f} ms"
        f"  (p99 ratio {pct(ours, 0.99) / max(pct(base, 0.99), 1e-9):.2f}x; "
        f"target p99 <= 1 ms; n={len(ours)})"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
