"""Today's spend for the daily budget, counted from the session store (real SQLite files)."""

from __future__ import annotations

import time
from pathlib import Path

from facilitair_tui.core import events as ev
from facilitair_tui.store import SessionStore
from facilitair_tui.store.spend import local_midnight, spent_today


def calls(sid: str, *costs: float | None, t: float = 5.0) -> list[ev.Event]:
    """A recorded session whose agents' calls cost ``costs``, each ending ``t`` s into it."""
    events: list[ev.Event] = [
        ev.SessionStarted(
            session_id=sid, seq=1, task="t", context={}, strategy="s", workflow="w", chunks=["A"]
        )
    ]
    for number, cost in enumerate(costs):
        agent = f"agent{number}"
        events.append(ev.AgentStarted(session_id=sid, agent=agent, chunk=1, model="openai:m", t=t - 1))
        events.append(
            ev.AgentFinished(
                session_id=sid,
                agent=agent,
                chunk=1,
                input_tokens=10,
                output_tokens=10,
                latency_ms=1000.0,
                cost_usd=cost,
                status="done",
                t=t,
            )
        )
    return events


def test_every_other_session_of_the_day_counts_and_nothing_else(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    assert spent_today(database) == 0.0  # no store yet: nothing was spent
    now = time.time()
    midnight = local_midnight(now)
    store = SessionStore.open(database)
    try:
        store.import_events(calls("today1", 0.25, 0.5), started_at=max(midnight, now - 60))
        store.import_events(calls("today2", 1.0, None), started_at=max(midnight, now - 30))  # None: unknown
        store.import_events(calls("yesterday", 9.0), started_at=midnight - 3600)
        # Started before midnight, but its call ended after it: that spend is today's.
        store.import_events(calls("overnight", 2.0, t=7200.0), started_at=midnight - 3600)
    finally:
        store.close()
    assert spent_today(database, now=now) == 3.75
    assert spent_today(database, "today2", now=now) == 2.75  # the asking session counts its own


def test_a_store_that_cannot_be_read_is_unknown_not_zero(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    database.write_bytes(b"not a database" * 100)
    assert spent_today(database) is None
