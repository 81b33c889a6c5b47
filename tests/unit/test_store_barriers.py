"""The store's barriers on real SQLite files: what a barrier reports when its session cannot be
written, a lock met while sessions are written one by one.

A "barrier" event (a session's first, a synthesis, feedback, a budget decision, the end) must be
safe before the user sees it. These tests check that a barrier says when it is not, and that the
events it covers are kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import SessionSpec
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.store import BarrierResult, SessionRecorder, SessionStore, sessions

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
# A lone surrogate, as an escaped JSON string from a server can carry: UTF-8 cannot hold it, so
# SQLite cannot take it and the session it belongs to is set aside.
UNWRITABLE = "half a pair: \ud800"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "sessions" / "sessions.db")
    yield opened
    opened.close()


def started(sid: str, task: str = "a task") -> ev.SessionStarted:
    return ev.SessionStarted(
        session_id=sid, seq=1, task=task, context={}, strategy="test", workflow="w", chunks=["A"]
    )


def synthesis(sid: str, seq: int, text: str = "chunk one") -> ev.Synthesis:
    return ev.Synthesis(session_id=sid, seq=seq, chunk=1, agreed=[], debated=[], confidence=None, text=text)


def finished(sid: str, seq: int) -> ev.SessionFinished:
    return ev.SessionFinished(
        session_id=sid,
        seq=seq,
        status="done",
        output="out",
        input_tokens=1,
        output_tokens=2,
        cost_usd=None,
        duration_s=1.0,
    )


def recorder(store: SessionStore, sid: str) -> SessionRecorder:
    return store.recorder(SessionSpec(task=sid, workflow=WORKFLOW, strategy="test"), sid)


# ---------------------------------------------------------------------------- a session set aside


def test_a_session_set_aside_fails_its_barriers_and_the_others_commit(store: SessionStore) -> None:
    aside = recorder(store, "bad-text")
    aside.record(started("bad-text"))
    assert aside.last_barrier is BarrierResult.COMMITTED
    bad = ev.Token(session_id="bad-text", seq=2, agent="coder", chunk=1, text=UNWRITABLE)
    aside.record(bad)
    aside.record(synthesis("bad-text", 3))
    # The synthesis is not in the database, and the barrier says so.
    assert aside.last_barrier is BarrierResult.IN_MEMORY
    assert aside.problem is not None and "session bad-text cannot be saved" in aside.problem
    other = recorder(store, "other")
    other.record(started("other"))
    other.record(synthesis("other", 2))
    aside.record(finished("bad-text", 4))
    assert aside.last_barrier is BarrierResult.IN_MEMORY
    assert other.last_barrier is BarrierResult.COMMITTED and other.problem is None
    assert store.close() == [bad, synthesis("bad-text", 3), finished("bad-text", 4)]


# ---------------------------------------------------------------------------- a lock, session by session


def test_a_lock_met_while_the_sessions_are_written_one_by_one_is_retried(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One session's text fails the batch, so the writer writes each session alone; another program
    takes the lock just then. The other session is kept and retried, not set aside for good."""
    monkeypatch.setattr("facilitair_tui.store.sessions.BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    statements: list[str] = []

    def take_the_lock_after_the_batch_failed(sql: str) -> None:
        # Called on the writer's thread before each statement: the first BEGIN after a ROLLBACK is
        # the first session's own transaction. The holder takes the lock right before it.
        after_a_rollback = bool(statements) and statements[-1] == "ROLLBACK"
        if sql == "BEGIN IMMEDIATE" and after_a_rollback and not holder.in_transaction:
            holder.execute("BEGIN IMMEDIATE")
        statements.append(sql)

    def connect(path: Path) -> sqlite3.Connection:  # the writer's connection, traced
        conn = real_connect(path)
        conn.set_trace_callback(take_the_lock_after_the_batch_failed)
        return conn

    real_connect = sessions._connect
    monkeypatch.setattr(sessions, "_connect", connect)
    good, bad = recorder(store, "good"), recorder(store, "bad")
    good.record(started("good"))
    bad.record(started("bad"))
    # One batch (the synthesis's barrier takes what queued before it): the bad text fails it.
    unwritable = ev.Token(session_id="bad", seq=2, agent="coder", chunk=1, text=UNWRITABLE)
    bad.record(unwritable)
    later: list[ev.Event] = [
        ev.ChunkStarted(session_id="good", seq=2, chunk=1, title="A", total=1),
        ev.Token(session_id="good", seq=3, agent="coder", chunk=1, text="fine"),
        synthesis("good", 4),
    ]
    for event in later:
        good.record(event)  # then the good session, alone, meets the lock
    assert holder.in_transaction, "the lock was taken while the sessions were written one by one"
    assert good.last_barrier is BarrierResult.IN_MEMORY  # not committed: it says so
    assert good.problem is not None and "locked by another program" in good.problem
    holder.execute("ROLLBACK")
    holder.close()
    assert store.close() == [unwritable]  # the last try writes it: only the bad session is left
    with SessionStore.open(store.path) as reopened:
        assert reopened.events("good") == [started("good"), *later]
