"""Session store: what recording every event costs a streaming session, and the store's write ceiling.

1. Tokens/s of the same scripted session (4 chunks x (3 agents + synthesizer)) consumed as is,
   against the same session whose consumer records each event first (``SessionRecorder.record``
   into a fresh store, ``store.close()`` included in the time; opening the store is not, the app
   opens it once per process). Target: at least 95% of the tokens/s without the store.
   a. CPU-bound: ``DELTAS`` deltas per call with no delay, the worst case for the overhead (the
      engine, the recorder and the writer thread share one GIL).
   b. Model-paced: ``PACED_DELTAS`` deltas per call, one every ``PACE_S`` (~300 tokens/s per
      agent, three agents at once), as a session with real models streams. Tokens/s hardly moves
      there, so the CPU time the process spends per session is shown too.
   Tokens are the sum of ``Token.deltas`` over the token events delivered. The two variants
   alternate, and the medians are shown: this machine is shared and noisy.
2. Write ceiling: a realistic mix of events (mostly tokens, agent starts and ends, a synthesis
   per chunk, which waits for its commit like in a live session) recorded as fast as the
   recorder takes them, then ``close``; events/s committed, every event read back afterwards and
   compared. Baseline in the same run: one ``executemany`` of one row per event into a table like
   the first ``token_log`` (a row per token event) in one transaction: SQLite's raw ceiling for
   that layout on this disk. The store packs each batch's token events of one agent execution
   into one row, so it can pass that ceiling.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ChatRequest
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver
from facilitair_tui.store import SessionStore

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = load_workflow(ROOT / "tests" / "data" / "scripted_workflow.toml")
TARGET = 0.95

DELTAS = 2000  # per call, CPU-bound variant
RUNS = 7
PACED_DELTAS = 150  # per call, model-paced variant
PACE_S = 0.003
PACED_RUNS = 3

CEILING_TOKENS = 120_000
CEILING_RUNS = 3
SESSION_ID = "0f8b6c2e4d1a4b7c9e3f5a6b7c8d9e0f"


# ---------------------------------------------------------------------- 1. tokens/s


def synthesis_header() -> list[str]:
    return ["AGREED:\n", "- short codes\n", "DEBATED:\n", "CONFIDENCE: 0.8\n", "MERGED:\n"]


def script(deltas: int, delay_s: float) -> Callable[[ChatRequest], Reply]:
    words = [f" tok{i}" for i in range(deltas)]
    synthesis = synthesis_header() + words

    def reply_for(request: ChatRequest) -> Reply:
        return Reply(synthesis if request.model.endswith("synthesizer") else words, delay_s=delay_s)

    return reply_for


@dataclass
class Run:
    seconds: float
    cpu_s: float  # the whole process: the engine, the recorder and the writer thread
    tokens: int
    events: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


async def session(deltas: int, delay_s: float, store: SessionStore | None) -> Run:
    spec = SessionSpec(task="Build a REST API with JWT auth", workflow=WORKFLOW, strategy="test")
    provider = ScriptedProvider(script(deltas, delay_s))
    start, cpu = time.perf_counter(), time.process_time()
    collaboration = Collaboration(spec, SingleProviderResolver(provider))
    tokens = events = 0
    if store is None:
        async for event in collaboration.events():
            events += 1
            if isinstance(event, ev.Token):
                tokens += event.deltas
    else:
        recorder = store.recorder(spec, collaboration.session_id)
        async for event in collaboration.events():
            recorder.record(event)
            events += 1
            if isinstance(event, ev.Token):
                tokens += event.deltas
        store.close()
    return Run(time.perf_counter() - start, time.process_time() - cpu, tokens, events)


def compare(deltas: int, delay_s: float, runs: int, directory: Path) -> tuple[list[Run], list[Run], float]:
    """``runs`` sessions without and with the store, alternating; also the store's opening time."""
    plain: list[Run] = []
    recorded: list[Run] = []
    opens: list[float] = []
    for n in range(runs):
        gc.collect()
        plain.append(asyncio.run(session(deltas, delay_s, None)))
        gc.collect()
        start = time.perf_counter()
        store = SessionStore.open(directory / f"run-{delay_s}-{n}" / "sessions.db")
        opens.append(time.perf_counter() - start)
        recorded.append(asyncio.run(session(deltas, delay_s, store)))
        if recorded[-1].tokens != plain[-1].tokens:
            raise RuntimeError(f"token counts differ: {recorded[-1].tokens} vs {plain[-1].tokens}")
    return plain, recorded, statistics.median(opens)


def report_tokens(title: str, plain: list[Run], recorded: list[Run]) -> None:
    base = statistics.median(r.tokens_per_s for r in plain)
    ours = statistics.median(r.tokens_per_s for r in recorded)
    base_cpu = statistics.median(r.cpu_s for r in plain) * 1e3
    ours_cpu = statistics.median(r.cpu_s for r in recorded) * 1e3
    ratio = ours / base
    print(title)
    print(f"  tokens per session: {plain[0].tokens:,}; events: {plain[0].events:,} without the store,")
    print(f"  {recorded[0].events:,} with it; runs: {len(plain)} each, alternating (medians)")
    print(f"  {'':36}{'tokens/s':>12}{'wall ms':>10}{'CPU ms':>10}")
    for name, rate, runs, cpu in (
        ("without the store (baseline)", base, plain, base_cpu),
        ("recording every event", ours, recorded, ours_cpu),
    ):
        wall = statistics.median(r.seconds for r in runs) * 1e3
        print(f"  {name:36}{rate:12,.0f}{wall:10.1f}{cpu:10.1f}")
    verdict = "PASS" if ratio >= TARGET else "MISS"
    extra_us = (ours_cpu - base_cpu) * 1e3 / recorded[0].events
    print(
        f"  with / without: {ratio:6.1%}  (target >= {TARGET:.0%}: {verdict});"
        f" CPU added per event: {extra_us:.1f} us"
    )


# ---------------------------------------------------------------------- 2. write ceiling


def finished(agent: str, chunk: int, tokens: int) -> ev.AgentFinished:
    return ev.AgentFinished(
        session_id=SESSION_ID, agent=agent, chunk=chunk, input_tokens=100, output_tokens=tokens,
        latency_ms=1.0, cost_usd=0.001, status="done",
    )  # fmt: skip


def synthetic_events(tokens: int) -> list[ev.Event]:
    """A session's worth of events: 4 chunks, 3 agents streaming at once, then the synthesizer."""
    sid = SESSION_ID
    chunks = [c.title for c in WORKFLOW.chunks]
    roles = [r.name for r in WORKFLOW.roles]
    per_call = tokens // (len(chunks) * (len(roles) + 1))
    out: list[ev.Event] = [
        ev.SessionStarted(
            session_id=sid, task="Build a REST API", context={}, strategy="test", workflow=WORKFLOW.name,
            chunks=chunks,
        )
    ]  # fmt: skip
    for c, title in enumerate(chunks, start=1):
        out.append(ev.ChunkStarted(session_id=sid, chunk=c, title=title, total=len(chunks)))
        out += [ev.AgentStarted(session_id=sid, agent=role, chunk=c, model="m") for role in roles]
        out += [
            ev.Token(session_id=sid, agent=roles[i % len(roles)], chunk=c, text=f" tok{i}")
            for i in range(per_call * len(roles))
        ]
        out += [finished(r, c, per_call) for r in roles]
        out.append(ev.AgentStarted(session_id=sid, agent="synthesizer", chunk=c, model="m"))
        out += [
            ev.Token(session_id=sid, agent="synthesizer", chunk=c, text=f" w{i}") for i in range(per_call)
        ]
        out.append(finished("synthesizer", c, per_call))
        out.append(
            ev.Synthesis(
                session_id=sid, chunk=c, agreed=["short codes"], debated=[], confidence=0.8,
                text="merged " * 200,
            )
        )  # fmt: skip
    out.append(
        ev.SessionFinished(
            session_id=sid, status="done", output="merged " * 800, input_tokens=1600, output_tokens=tokens,
            cost_usd=0.016, duration_s=1.0,
        )
    )  # fmt: skip
    return [msgspec.structs.replace(e, seq=seq, t=seq * 1e-4) for seq, e in enumerate(out, start=1)]


def store_ceiling(events: list[ev.Event], path: Path) -> float:
    """Seconds to record ``events`` into a fresh store and close it; checks every row is there."""
    store = SessionStore.open(path)
    recorder = store.recorder(None, SESSION_ID)
    gc.collect()
    start = time.perf_counter()
    for event in events:
        recorder.record(event)
    store.close()
    elapsed = time.perf_counter() - start
    with SessionStore.open(path) as reopened:
        stored = reopened.events(SESSION_ID)
    if stored != events:
        raise RuntimeError(f"{len(events)} events recorded, {len(stored)} read back, or not the same")
    return elapsed


def sqlite_ceiling(n: int, path: Path) -> float:
    """Seconds to insert ``n`` token rows (already built) in one transaction: SQLite's raw ceiling."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE token_log (session_id TEXT NOT NULL, seq INTEGER NOT NULL, execution_id INTEGER,"
        " chunk INTEGER NOT NULL, agent TEXT NOT NULL, t REAL NOT NULL, text TEXT NOT NULL,"
        " deltas INTEGER NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX token_log_by_execution ON token_log(execution_id)")
    rows = [(SESSION_ID, i, 1 + i % 16, 1 + i % 4, "architect", i * 1e-4, f" tok{i}", 1) for i in range(n)]
    gc.collect()
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO token_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bench_ceiling(directory: Path) -> None:
    events = synthetic_events(CEILING_TOKENS)
    tokens = sum(isinstance(e, ev.Token) for e in events)
    ours: list[float] = []
    raw: list[float] = []
    for n in range(CEILING_RUNS):
        ours.append(store_ceiling(events, directory / f"ceiling-{n}" / "sessions.db"))
        raw.append(sqlite_ceiling(len(events), directory / f"raw-{n}.db"))
    store_rate = len(events) / statistics.median(ours)
    raw_rate = len(events) / statistics.median(raw)
    print("== Write ceiling: one session's events recorded as fast as the recorder takes them ==")
    print(
        f"  events: {len(events):,} ({tokens:,} tokens, {len(events) - tokens} others, 4 syntheses"
        f" waiting for their commits)"
        f"\n  runs: {CEILING_RUNS} each, alternating (medians); every row checked afterwards"
    )
    print(f"  {'':44}{'events/s':>12}{'ms':>9}")
    for name, rate, times in (
        ("SQLite executemany, one transaction (baseline)", raw_rate, raw),
        ("session store, record() to close()", store_rate, ours),
    ):
        print(f"  {name:44}{rate:12,.0f}{statistics.median(times) * 1e3:9.1f}")
    print(f"  store / raw SQLite: {store_rate / raw_rate:6.1%}")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        compare(200, 0.0, 2, directory)  # warm up imports, caches, SQLite
        plain, recorded, open_s = compare(DELTAS, 0.0, RUNS, directory)
        report_tokens(
            f"== Tokens/s, CPU-bound: 4 chunks x (3 agents + synthesizer), {DELTAS:,} deltas per call,"
            " no delay ==",
            plain,
            recorded,
        )
        plain, recorded, _ = compare(PACED_DELTAS, PACE_S, PACED_RUNS, directory)
        report_tokens(
            f"== Tokens/s, model-paced: {PACED_DELTAS} deltas per call, one every {PACE_S * 1e3:g} ms"
            f" (~{1 / PACE_S:.0f} tokens/s per agent) ==",
            plain,
            recorded,
        )
        print(f"  (opening a fresh store, not timed above: {open_s * 1e3:.1f} ms)")
        bench_ceiling(directory)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
