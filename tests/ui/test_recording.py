"""The main screen records a live session: it stays live while the store waits, and says when the
store cannot take the session (a real store on a real SQLite file)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import SessionSpec
from facilitair_tui.library import EmptyCacheCatalog
from facilitair_tui.providers.scripted import ScriptedProvider
from facilitair_tui.store import BarrierResult, SessionRecorder, SessionStore, sessions
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.help import HelpScreen
from facilitair_tui.tui.screens.main import MainScreen

from .library_support import open_store
from .support import FakeClock, Script, collaboration, wait_until

SID = "recorded-live"


def live_app(store: SessionStore, script: Script) -> FacilitairApp:
    return FacilitairApp(
        collaboration(ScriptedProvider(script), clock=FakeClock(0.25), session_id=SID),
        store=store,
        catalog=EmptyCacheCatalog(),
        live_clock=False,
    )


def spied_recorders(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> list[SessionRecorder]:
    """The recorders the app asks the store for."""
    made: list[SessionRecorder] = []
    real = store.recorder

    def recorder(spec: SessionSpec | None, session_id: str) -> SessionRecorder:
        made.append(real(spec, session_id))
        return made[-1]

    monkeypatch.setattr(store, "recorder", recorder)
    return made


def toasts(app: FacilitairApp) -> str:
    """The notifications' text with whitespace removed (a toast wraps long paths anywhere)."""
    return "".join("".join(str(toast.render()) for toast in app.screen.query("Toast")).split())


async def finished(pilot, screen: MainScreen) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")


async def test_the_screen_answers_keys_while_the_sessions_first_commit_waits_on_a_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that the first barrier can only end by the lock being released.
    monkeypatch.setattr(sessions, "BUSY_TIMEOUT_MS", 120_000)
    store = open_store(tmp_path)
    recorders = spied_recorders(store, monkeypatch)
    writer_blocked = threading.Event()

    def connect(path: Path) -> sqlite3.Connection:  # the writer's: says when it meets the lock
        conn = real_connect(path)
        conn.set_trace_callback(lambda sql: writer_blocked.set() if sql == "BEGIN IMMEDIATE" else None)
        return conn

    real_connect = sessions._connect
    monkeypatch.setattr(sessions, "_connect", connect)
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        app = live_app(store, Script())
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_until(pilot, writer_blocked.is_set, "the session's first commit waits")
            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen opened")
            # The key was handled while the first event's barrier still waits; nothing of the
            # session is shown before it is saved.
            [recorder] = recorders
            assert recorder.last_barrier is None
            screen = app.main_screen
            assert screen is not None and screen.view.agents["architect"].phase == "idle"
            holder.execute("ROLLBACK")
            await pilot.press("escape")
            await finished(pilot, screen)
            assert recorder.last_barrier is BarrierResult.COMMITTED
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
    assert store.summary(SID).status == "done"
    assert store.close() == []


async def test_a_session_the_database_cannot_take_is_said_and_kept_in_its_file(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    # The database refuses this session's tokens (as a schema refuses a row): its start is
    # committed, then it is set aside, and its events go to its unsaved file from there on.
    conn = sqlite3.connect(store.path)
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON token_log WHEN NEW.session_id = '{SID}'"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    conn.commit()
    conn.close()
    app = live_app(store, Script())
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        screen = app.main_screen
        assert screen is not None
        unsaved = tmp_path / f"unsaved-{SID}.jsonl"
        await wait_until(pilot, lambda: str(unsaved) in toasts(app), "the screen says where the session is")
        assert "cannotbesavedinthesessiondatabase(refusedbythetest)" in toasts(app)
        await finished(pilot, screen)
    assert store.close() == []  # nothing left over: it is all in the file
    kept = [ev.from_json(line) for line in unsaved.read_bytes().splitlines()]
    assert isinstance(kept[0], ev.SessionStarted) and isinstance(kept[-1], ev.SessionFinished)
    assert [e.seq for e in kept] == list(range(1, len(kept) + 1))  # all of it, in order
    with SessionStore.open(store.path) as reopened:
        stored = reopened.events(SID)  # the start the database took before it refused a token
        assert stored == kept[: len(stored)] and not any(isinstance(e, ev.Token) for e in stored)
