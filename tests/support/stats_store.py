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


# The demo store of the stats screen's screenshot: a week of made-up sessions on three pairings.
DEMO_PAIRS = (
    ({"coder": MINI, "reviewer": HAIKU, "synthesizer": MINI}, 0.004, 2600.0),
    ({"coder": "openai:gpt-4o", "reviewer": "openai:gpt-4o-mini", "synthesizer": MINI}, 0.03, 4100.0),
    ({"coder": LOCAL, "reviewer": LOCAL, "synthesizer": LOCAL}, 0.0, 21000.0),
)


def fill_demo_store(store: SessionStore, now: float, seed: int = 7) -> None:
    """Made-up sessions over the 7 days before ``now`` (a picture of the screen, not a measure)."""
    import random

    rng = random.Random(seed)
    count = 0
    for day in range(7):
        for _ in range(rng.randint(2, 6)):
            models, price, latency = DEMO_PAIRS[rng.randrange(len(DEMO_PAIRS))]
            count += 1
            sid = f"demo{count:04d}"
            body: list[ev.Event] = []
            spent = 0.0
            for agent in ("architect", "coder", "reviewer", "synthesizer"):
                model = models.get(agent, models["coder"])
                n = 1
                if model != LOCAL and rng.random() < 0.15:
                    kind = rng.choice(["rate_limit", "rate_limit", "server", "timeout"])
                    body.append(attempt(sid, agent, model, n, outcome="failed", error=kind))
                    n += 1
                took = latency * rng.uniform(0.5, 1.8)
                body.append(attempt(sid, agent, model, n, first_token_ms=took * rng.uniform(0.05, 0.2)))
                cost = price * rng.uniform(0.5, 1.5)
                spent += cost
                body += call(sid, agent, model, took, rng.randint(150, 600), cost)
            passed = rng.randint(1, 6)
            body.append(
                ev.CodeRun(session_id=sid, agent="coder", chunk=1, passed=passed, failed=rng.randint(0, 2),
                           duration_ms=40.0, output="")
            )  # fmt: skip
            reviewer_points = [{"reviewer": "r"} for _ in range(rng.randint(0, 3))]
            body.append(debated(sid, *reviewer_points, {"coder": "c"}))
            store.import_events(
                session(sid, models, body, spent), started_at=now - day * DAY - rng.uniform(0, 80000)
            )
