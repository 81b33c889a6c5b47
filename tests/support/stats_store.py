"""A session store with known sessions, for the stats' tests (and the stats screen's screenshot)."""

from __future__ import annotations

from typing import Any

from facilitair_tui.core import events as ev
from facilitair_tui.store import SessionStore

DAY = 86400.0
MINI, HAIKU, LOCAL = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5", "local:qwen2.5-coder-0.5b"


def attempt(sid: str, agent: str, model: str, n: int, **fields: Any) -> ev.ModelAttempt:
    return ev.ModelAttempt(
        session_id=sid, agent=agent, chunk=1, attempt=n, model=model, kind="first" if n == 1 else "retry",
        started_t=0.0, **fields,
    )  # fmt: skip


def call(sid: str, agent: str, model: str, latency_ms: float, out: int, cost: float | None) -> list[ev.Event]:
    return [
        ev.AgentStarted(session_id=sid, agent=agent, chunk=1, model=model),
        ev.AgentFinished(
            session_id=sid, agent=agent, chunk=1, input_tokens=100, output_tokens=out, latency_ms=latency_ms,
            cost_usd=cost, status="done",
        ),
    ]  # fmt: skip


def session(sid: str, models: dict[str, str], body: list[ev.Event], cost: float | None) -> list[ev.Event]:
    events: list[ev.Event] = [
        ev.SessionStarted(session_id=sid, task=f"task {sid}", context={}, strategy="s", workflow="default",
                          models=models, chunks=["Build"]),
        ev.ChunkStarted(session_id=sid, chunk=1, title="Build", total=1),
        *body,
        ev.SessionFinished(session_id=sid, status="done", output="x", input_tokens=0, output_tokens=0,
                           cost_usd=cost, duration_s=10.0),
    ]  # fmt: skip
    for seq, event in enumerate(events, 1):
        event.seq, event.t = seq, float(seq)
    return events


def debated(sid: str, *positions: dict[str, str]) -> ev.Synthesis:
    points = [ev.DebatedPoint(point=f"p{i}", positions=p) for i, p in enumerate(positions)]
    return ev.Synthesis(session_id=sid, chunk=1, agreed=["a"], debated=points, confidence=0.5, text="t")


PAIR = {"coder": MINI, "reviewer": HAIKU, "synthesizer": MINI}


def fill_store(store: SessionStore, now: float) -> None:
    """Three sessions: two on (gpt-4o-mini, claude-haiku) 1 and 2 days before ``now``, with
    failed requests, code runs and debated points; one on the local model 30 days before."""
    a = session(
        "aaaa",
        PAIR,
        [
            attempt("aaaa", "coder", MINI, 1, outcome="failed", error="rate_limit", wait_ms=1000.0),
            attempt("aaaa", "coder", MINI, 2, first_token_ms=100.0, duration_ms=900.0, output_tokens=50),
            *call("aaaa", "coder", MINI, 1000.0, 50, 0.01),
            attempt("aaaa", "reviewer", HAIKU, 1, first_token_ms=300.0, output_tokens=40),
            *call("aaaa", "reviewer", HAIKU, 2000.0, 40, 0.02),
            ev.CodeRun(session_id="aaaa", agent="coder", chunk=1, passed=3, failed=1, duration_ms=5.0,
                       output=""),
            debated("aaaa", {"coder": "x", "reviewer": "y"}, {"coder": "only"}),
        ],
        0.03,
    )  # fmt: skip
    b = session(
        "bbbb",
        PAIR,
        [
            attempt("bbbb", "coder", MINI, 1, outcome="failed", error="server"),
            attempt("bbbb", "coder", MINI, 2, outcome="failed", error="rate_limit"),
            attempt("bbbb", "coder", MINI, 3, first_token_ms=200.0),
            *call("bbbb", "coder", MINI, 3000.0, 30, 0.03),
            *call("bbbb", "synthesizer", MINI, 5000.0, 20, 0.01),
            *call("bbbb", "reviewer", HAIKU, 4000.0, 60, 0.04),
            debated("bbbb", {"reviewer": "z"}),
        ],
        0.08,
    )  # fmt: skip
    old = session("cccc", {"coder": LOCAL}, [*call("cccc", "coder", LOCAL, 7000.0, 70, 0.0)], 0.0)
    store.import_events(a, started_at=now - 1 * DAY)
    store.import_events(b, started_at=now - 2 * DAY)
    store.import_events(old, started_at=now - 30 * DAY)
