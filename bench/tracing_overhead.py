"""Tracing overhead: tokens per second of a streaming session with tracing on against off.

Both modes run the same 4-chunk session (3 agents and a synthesizer, every call streaming
``DELTAS_PER_CALL`` deltas) recorded in a real session store, as ``facilitair collaborate``
records it. "On" wraps the recorder in the tracing sink, which builds the timeline and exports
its spans over OTLP/HTTP to a receiver in another process (the test suite's, decoding every
export, as a collector would); "off" records only. The modes alternate, in both orders,
``ROUNDS`` times; each side's figure is its median. The receiver's span count proves the spans
were sent.

1. Streaming: each call streams a delta every ``PACE_S`` (500 tokens/s per agent, faster than
   the hosted APIs stream). Target: tracing on at most 1% slower (ratio at least 0.99).
2. Unpaced: the deltas come as fast as the engine takes them (about 100,000 tokens/s on this
   machine, a whole session in some 60 ms), so the fixed cost of the session's ~40 spans shows
   as much as it ever can. No target: it bounds the cost from above.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facilitair_tui.config import TelemetrySettings  # noqa: E402
from facilitair_tui.core import events as ev  # noqa: E402
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec  # noqa: E402
from facilitair_tui.core.provider import ChatRequest  # noqa: E402
from facilitair_tui.core.workflow import load_workflow  # noqa: E402
from facilitair_tui.library import EventSink  # noqa: E402
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver  # noqa: E402
from facilitair_tui.store import SessionStore  # noqa: E402
from facilitair_tui.traces.export import Tracing  # noqa: E402
from facilitair_tui.traces.settings import trace_config  # noqa: E402

WORKFLOW = load_workflow(ROOT / "tests" / "data" / "scripted_workflow.toml")
DELTAS_PER_CALL = 400
ROUNDS = 8
PACE_S = 0.002
PACED_DELTAS = 100  # per call: a paced session takes about 1.5 s


def _replies(pace_s: float) -> Callable[[ChatRequest], Reply]:
    deltas = PACED_DELTAS if pace_s else DELTAS_PER_CALL

    def reply(request: ChatRequest) -> Reply:
        return Reply([f"{request.model} token {i} " for i in range(deltas)], delay_s=pace_s)

    return reply


async def one_session(store: SessionStore, tracing: Tracing | None, pace_s: float) -> tuple[float, int]:
    """Seconds for one whole session and the deltas it streamed."""
    spec = SessionSpec(task="Build a REST API with JWT auth", workflow=WORKFLOW, strategy="test")
    provider = ScriptedProvider(_replies(pace_s))
    collaboration = Collaboration(spec, SingleProviderResolver(provider))
    recorder: EventSink = store.recorder(collaboration.spec, collaboration.session_id)
    if tracing is not None:
        recorder = tracing.wrap(recorder)
    deltas = 0
    gc.collect()
    start = time.perf_counter()
    async for event in collaboration.events():
        await recorder.record_async(event)
        if isinstance(event, ev.Token):
            deltas += event.deltas
    return time.perf_counter() - start, deltas


def compare(store: SessionStore, tracing: Tracing, rounds: int, pace_s: float) -> tuple[float, float]:
    """Median tokens/s without tracing and with it, the modes alternating in both orders."""
    rates: dict[str, list[float]] = {"off": [], "on": []}
    asyncio.run(one_session(store, tracing, pace_s))  # warm-up: imports, first connections
    for n in range(rounds):
        for mode in ("off", "on") if n % 2 == 0 else ("on", "off"):
            seconds, deltas = asyncio.run(one_session(store, tracing if mode == "on" else None, pace_s))
            rates[mode].append(deltas / seconds)
    return statistics.median(rates["off"]), statistics.median(rates["on"])


def _report(title: str, off: float, on: float, target: str) -> None:
    print(title)
    print(f"  tracing off (baseline)   {off:12,.0f} tokens/s (median)")
    print(f"  tracing on  (OTLP/HTTP)  {on:12,.0f} tokens/s (median)")
    print(f"  ratio on/off             {on / off:12.3f}   {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.support.otlp_receiver"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    endpoint = receiver.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as tmp:
        config = trace_config(TelemetrySettings(endpoint=endpoint), env={})
        assert config is not None
        tracing = Tracing(config)
        store = SessionStore.open(Path(tmp) / "sessions.sqlite3")
        paced = compare(store, tracing, args.rounds, PACE_S)
        unpaced = compare(store, tracing, args.rounds, 0.0)
        tracing.close()
        store.close()
    spans, _ = receiver.communicate("")
    print(f"tracing overhead: {args.rounds} rounds per part of a 4-chunk session (3 agents + synthesizer)")
    _report(
        f"1. streaming, a delta every {PACE_S * 1000:g} ms per agent, {PACED_DELTAS} per call",
        *paced,
        "(target at least 0.990)",
    )
    _report(f"2. unpaced, {DELTAS_PER_CALL} deltas per call (the upper bound)", *unpaced, "(no target)")
    print(f"  spans received           {int(spans.strip() or 0):12,d}")


if __name__ == "__main__":
    main()
