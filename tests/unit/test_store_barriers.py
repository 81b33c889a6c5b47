"""The store's barriers on real SQLite files: what a barrier reports when its session cannot be
written, where that session's events go, a lock met while sessions are written one by one.

A "barrier" event (a session's first, a synthesis, feedback, a budget decision, the end) must be
safe before the user sees it. These tests check that a barrier says when it is not, and that the
events it covers are kept where a crash cannot take them.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import SessionSpec
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.store import BarrierResult, SessionRecorder, SessionStore, StoreError, sessions

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
# A lone surrogate, as an escaped JSON string from a server can carry: UTF-8 cannot hold it, so
# SQLite cannot take it and the session it belongs to is set aside. Its file (JSON Lines, UTF-8)
# has U+FFFD in its place.
UNWRITABLE = "half a pair: \ud800"
REPLACED = "half a pair: \ufffd"


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


def unsaved_file(store: SessionStore, sid: str) -> Path:
    return unsaved_file_at(store.path, sid)


def unsaved_file_at(database: Path, sid: str) -> Path:
    return database.parent / f"unsaved-{sid}.jsonl"


def read_jsonl(path: Path) -> list[ev.Event]:
    return [ev.from_json(line) for line in path.read_bytes().splitlines()]


# ---------------------------------------------------------------------------- a session set aside


def test_a_session_set_aside_fails_its_barriers_and_its_events_are_in_its_file_at_once(
    store: SessionStore,
) -> None:
    aside = recorder(store, "bad-text")
    aside.record(started("bad-text"))
    assert aside.last_barrier is BarrierResult.COMMITTED
    bad = ev.Token(session_id="bad-text", seq=2, agent="coder", chunk=1, text=UNWRITABLE)
    aside.record(bad)
    aside.record(synthesis("bad-text", 3))
    # The synthesis is not in the database, and the barrier says so ...
    assert aside.last_barrier is BarrierResult.SET_ASIDE
    path = unsaved_file(store, "bad-text")
    assert aside.problem is not None and str(path) in aside.problem
    assert "facilitair sessions import" in aside.problem
    # ... but it is already in the session's file, before the store closes: the whole session so
    # far (what the database holds of it too), so the file stands alone.
    kept = msgspec.structs.replace(bad, text=REPLACED)
    assert read_jsonl(path) == [started("bad-text"), kept, synthesis("bad-text", 3)]
    # Every later event of the session follows it there; the other sessions' barriers commit.
    other = recorder(store, "other")
    other.record(started("other"))
    rest: list[ev.Event] = [
        ev.ChunkStarted(session_id="bad-text", seq=4, chunk=2, title="B", total=2),
        ev.Token(session_id="bad-text", seq=5, agent="coder", chunk=2, text="more"),
        finished("bad-text", 6),
    ]
    for event in rest:
        aside.record(event)
    other.record(synthesis("other", 2))
    assert aside.last_barrier is BarrierResult.SET_ASIDE
    assert other.last_barrier is BarrierResult.COMMITTED and other.problem is None
    whole = [started("bad-text"), kept, synthesis("bad-text", 3), *rest]
    assert read_jsonl(path) == whole
    assert store.close() == []  # nothing left for the caller: it is all in the file
    with SessionStore.open(store.path) as reopened:
        assert reopened.events("other") == [started("other"), synthesis("other", 2)]
        assert reopened.events("bad-text") == [started("bad-text")]  # what was committed before
        # The file imports over that: the session is whole in the database again.
        assert reopened.import_events(read_jsonl(path)) == "bad-text"
        assert reopened.events("bad-text") == whole and reopened.summary("bad-text").status == "done"


_KILLED_AFTER_A_SET_ASIDE_BARRIER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from facilitair_tui.core import events as ev
    from facilitair_tui.store import SessionStore

    store = SessionStore.open(Path(sys.argv[1]))
    recorder = store.recorder(None, "doomed")
    recorder.record(ev.SessionStarted(session_id="doomed", seq=1, task="t", context={}, strategy="test",
                                      workflow="w", chunks=["A"]))
    recorder.record(ev.Token(session_id="doomed", seq=2, agent="coder", chunk=1, text="\\ud800"))
    recorder.record(ev.Synthesis(session_id="doomed", seq=3, chunk=1, agreed=[], debated=[],
                                 confidence=None, text="seen"))  # a barrier: the user sees it now
    print(recorder.last_barrier.name, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_kill_after_a_set_aside_barrier_loses_nothing_the_user_saw(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "sessions.db"
    SessionStore.open(path).close()
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_AFTER_A_SET_ASIDE_BARRIER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "SET_ASIDE"
        assert child.stdin is not None
        child.stdin.write("die\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
    kept = read_jsonl(path.parent / "unsaved-doomed.jsonl")
    assert [type(e) for e in kept] == [ev.SessionStarted, ev.Token, ev.Synthesis]
    assert isinstance(kept[-1], ev.Synthesis) and kept[-1].text == "seen"


_FILE_TOO_BIG_FOR_THE_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from facilitair_tui.core import events as ev
    from facilitair_tui.store import SessionStore

    store = SessionStore.open(Path(sys.argv[1]))
    recorder = store.recorder(None, "too-big")
    recorder.record(ev.SessionStarted(session_id="too-big", seq=1, task="t", context={}, strategy="test",
                                      workflow="w", chunks=["A"]))
    # From here on, no file may grow past 1 MB (what a nearly full disk does to a big write).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    big = "\\ud800" + "x" * (2 << 20)
    recorder.record(ev.Token(session_id="too-big", seq=2, agent="coder", chunk=1, text=big))
    recorder.record(ev.Synthesis(session_id="too-big", seq=3, chunk=1, agreed=[], debated=[],
                                 confidence=None, text="seen"))
    print(recorder.last_barrier.name)
    print(recorder.problem)
    print([type(e).__name__ for e in store.close()])
    """
)


def test_an_unsaved_file_that_cannot_be_written_keeps_the_events_in_memory_and_no_half_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions" / "sessions.db"
    SessionStore.open(path).close()
    child = subprocess.run(
        [sys.executable, "-c", _FILE_TOO_BIG_FOR_THE_DISK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result, problem, unwritten = child.stdout.splitlines()
    assert result == "IN_MEMORY"
    assert f"nor in {unsaved_file_at(path, 'too-big')}" in problem and "kept in memory" in problem
    assert unwritten == "['Token', 'Synthesis']"  # handed back at close: the front end keeps them
    assert unsaved_file_at(path, "too-big").read_bytes() == b""  # not a half line


def test_the_file_of_a_session_set_aside_imports_over_what_the_database_has_of_it(
    store: SessionStore,
) -> None:
    """The file holds the whole session; importing it adds what the database lacks."""
    copy: list[ev.Event] = [
        started("copied"),
        ev.ChunkStarted(session_id="copied", seq=2, chunk=1, title="A", total=1),
        synthesis("copied", 3),
        finished("copied", 4),
    ]
    store.import_events(copy[:2])
    assert store.import_events(copy) == "copied"
    assert store.events("copied") == copy and store.summary("copied").status == "done"
    with pytest.raises(StoreError, match="already has these events"):
        store.import_events(copy)
    # Another session that only shares the id is still refused.
    with pytest.raises(StoreError, match="already in the store"):
        store.import_events([started("copied", task="another task")])


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
    assert store.close() == []  # the last try writes it; the bad session is in its file
    with SessionStore.open(store.path) as reopened:
        assert reopened.events("good") == [started("good"), *later]
    assert not unsaved_file(store, "good").exists()
    assert read_jsonl(unsaved_file(store, "bad"))[-1] == msgspec.structs.replace(unwritable, text=REPLACED)


# ---------------------------------------------------------------------------- the event loop goes on


async def test_an_awaited_barrier_lets_the_event_loop_run_while_the_database_is_locked(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that the barrier can only end by the lock being released, from this loop.
    monkeypatch.setattr("facilitair_tui.store.sessions.BUSY_TIMEOUT_MS", 120_000)
    session = recorder(store, "waits")
    await session.record_async(started("waits"))
    assert session.last_barrier is BarrierResult.COMMITTED
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        waiting = asyncio.create_task(session.record_async(synthesis("waits", 2)))
        await asyncio.sleep(0)  # the barrier is queued and waits for its commit
        assert not waiting.done()

        async def release_the_lock() -> None:
            holder.execute("ROLLBACK")

        # Another coroutine runs while the barrier waits: here, the one that lets it commit.
        await asyncio.create_task(release_the_lock())
        await waiting
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    assert session.last_barrier is BarrierResult.COMMITTED and session.problem is None
    assert store.events("waits") == [started("waits"), synthesis("waits", 2)]


async def test_an_awaited_barrier_reports_a_lock_that_outlasts_the_busy_timeout(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("facilitair_tui.store.sessions.BUSY_TIMEOUT_MS", 100)
    session = recorder(store, "late")
    await session.record_async(started("late"))
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        await session.record_async(synthesis("late", 2))
        assert session.last_barrier is BarrierResult.IN_MEMORY
        assert session.problem is not None and "locked by another program" in session.problem
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.close() == []  # retried, and written at the latest by the last try
    with SessionStore.open(store.path) as reopened:
        assert reopened.events("late") == [started("late"), synthesis("late", 2)]
