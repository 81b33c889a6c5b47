"""The cache inspector and the session history, including replay through the main screen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.widgets import Button, DataTable, Input, Static

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration, Continuation, SessionSpec
from facilitair_tui.library import EmptyCacheCatalog, MemoryCacheCatalog
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.session import Prepared
from facilitair_tui.store import StoredSession
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.cache_inspector import EMPTY_CACHE, CacheInspectorScreen, SolutionScreen
from facilitair_tui.tui.screens.confirm import ConfirmScreen
from facilitair_tui.tui.screens.fork import ForkScreen
from facilitair_tui.tui.screens.help import HelpScreen
from facilitair_tui.tui.screens.history import RESUME_NOTE, HistoryScreen
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.widgets.final_output import FULL_TAB, FinalOutput
from tests.support.scripted import chunk_of, record_cut

from .library_support import (
    NOW,
    ScreenApp,
    fixed_now,
    open_store,
    recorded_session,
    seeded_solutions,
    write_recording,
)
from .support import ROLES, FakeClock, Script, collaboration, wait_until


def cache_app(catalog: MemoryCacheCatalog | EmptyCacheCatalog) -> ScreenApp:
    return ScreenApp(lambda: CacheInspectorScreen(catalog, now=fixed_now))


def tasks_of(table: DataTable[str]) -> list[str]:
    return [str(table.get_row_at(row)[0]) for row in range(table.row_count)]


# ---------------------------------------------------------------------------- cache inspector


async def test_cache_inspector_lists_the_seeded_solutions_newest_first() -> None:
    app = cache_app(MemoryCacheCatalog(seeded_solutions()))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CacheInspectorScreen)
        assert tasks_of(screen.table) == [
            "Design a rate limiter",
            "Build a REST API for a todo list",
            "Write a URL shortener",
        ]
        assert screen.table.get_row_at(0)[1:] == ["language=rust, team_size=3", "12 min ago", "5", "$0.1875"]
        assert screen.table.get_row_at(2)[3:] == ["0", "—"]
        assert "Design a rate limiter: the **code**." in screen.preview.source
        await pilot.press("down")
        assert "Build a REST API for a todo list" in screen.preview.source


async def test_search_filters_by_task_and_context_as_you_type() -> None:
    app = cache_app(MemoryCacheCatalog(seeded_solutions()))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CacheInspectorScreen)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"python")
        assert tasks_of(screen.table) == ["Build a REST API for a todo list"]
        screen.search.value = ""
        await pilot.press(*"url")
        assert tasks_of(screen.table) == ["Write a URL shortener"]
        await pilot.press(*" nothing")
        assert tasks_of(screen.table) == []
        assert "No cached solution matches “url nothing”." in str(screen.empty_note.render())
        await pilot.press("enter")  # back to the table
        assert app.focused is screen.table


async def test_delete_removes_the_solution_only_after_confirming() -> None:
    catalog = MemoryCacheCatalog(seeded_solutions())
    app = cache_app(catalog)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CacheInspectorScreen)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is screen and len(catalog.list()) == 3
        await pilot.press("d")
        await pilot.press("y")
        assert app.screen is screen
        assert catalog.get("sol-3") is None
        assert tasks_of(screen.table) == ["Build a REST API for a todo list", "Write a URL shortener"]


async def test_open_shows_the_output_read_only_and_escape_goes_back() -> None:
    app = cache_app(MemoryCacheCatalog(seeded_solutions()))
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = app.screen
        await pilot.press("enter")
        solution = app.screen
        assert isinstance(solution, SolutionScreen)
        await pilot.pause()
        output = solution.query_one("#solution-output", FinalOutput)
        assert "Design a rate limiter: the **code**." in output.text_of(FULL_TAB)
        await pilot.press("escape")
        assert app.screen is inspector
        await pilot.press("escape")
        assert not isinstance(app.screen, CacheInspectorScreen)


async def test_an_empty_cache_says_so_and_how_it_fills() -> None:
    app = cache_app(EmptyCacheCatalog())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CacheInspectorScreen)
        assert screen.table.row_count == 0
        assert str(screen.empty_note.render()) == EMPTY_CACHE
        assert screen.check_action("delete", ()) is False


# ---------------------------------------------------------------------------- history and replay


def live_app(tmp_path: Path, step: float = 0.25) -> FacilitairApp:
    return FacilitairApp(
        collaboration(ScriptedProvider(Script()), clock=FakeClock(step)),
        store=open_store(tmp_path / "sessions"),
        catalog=EmptyCacheCatalog(),
        live_clock=False,
    )


async def wait_done(pilot, screen: MainScreen) -> None:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
    await wait_until(
        pilot,
        lambda: all(p.rendered_source == p.text for p in screen.panes),
        "the panes rendered every token",
    )


async def test_a_live_session_is_recorded_and_replays_identically_at_instant_speed(tmp_path: Path) -> None:
    app = live_app(tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        live = app.main_screen
        assert live is not None
        await wait_done(pilot, live)

        await pilot.press("h")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        assert history.table.row_count == 1
        [summary] = history.sessions
        assert summary.status == "done" and summary.task == live.view.task

        await pilot.press("i")
        assert "instant (i)" in str(history.query_one("#history-speed", Static).render())
        await pilot.press("enter")
        replay = app.screen
        assert isinstance(replay, MainScreen) and replay.replaying
        await wait_done(pilot, replay)

        assert replay.view.final is not None and live.view.final is not None
        assert replay.view.final.output == live.view.final.output
        assert replay.final_output.text_of(FULL_TAB) == live.final_output.text_of(FULL_TAB)
        assert app.store is not None
        recorded = app.store.events(summary.id)
        for agent in ROLES:
            pane = replay.pane(agent)
            assert pane.text == live.pane(agent).text
            for chunk in range(1, 5):
                tokens = [
                    e.text
                    for e in recorded
                    if isinstance(e, ev.Token) and (e.agent, e.chunk) == (agent, chunk)
                ]
                assert tokens and "".join(tokens) in pane.text
        # Stop and feedback belong to live sessions; the screen says it is a replay.
        assert replay.check_action("stop", ()) is False and replay.check_action("feedback", ()) is False
        assert "Replay of a recorded session at instant" in str(
            replay.query_one("#replay-banner", Static).render()
        )

        await pilot.press("escape")
        assert app.screen is history


async def test_replay_at_4x_pauses_and_resumes(tmp_path: Path) -> None:
    app = live_app(tmp_path, step=0.05)  # about 9 s recorded: some 2 s at 4x
    async with app.run_test(size=(200, 50)) as pilot:
        live = app.main_screen
        assert live is not None
        await wait_done(pilot, live)
        await pilot.press("h", "4", "enter")
        replay = app.screen
        assert isinstance(replay, MainScreen) and replay.replaying
        await pilot.press("p")
        assert replay.collaboration.paused
        await wait_until(pilot, lambda: replay.view.state == "paused", "the replay shows the pause")
        assert not replay.view.finished
        await pilot.press("p")
        assert not replay.collaboration.paused
        await wait_done(pilot, replay)
        assert replay.view.final == live.view.final


async def test_history_shows_an_imported_interrupted_session_replayable_not_resumable(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    write_recording(store, recorded_session("cut", "Half a task", finished=False, cost=0.01), NOW)
    app = ScreenApp(lambda: HistoryScreen(store, now=fixed_now, live_clock=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        assert screen.table.get_row_at(0)[1:3] == ["Half a task", "interrupted"]
        # Imported without its workflow definition: it cannot be continued, so no resume.
        assert not screen.query_one("#history-resume", Button).display
        assert screen.check_action("resume", ()) is False
        assert RESUME_NOTE not in str(screen.query_one("#history-note", Static).render())
        # Its replay ends where the recording does, without an error.
        await pilot.press("i", "enter")
        replay = app.screen
        assert isinstance(replay, MainScreen)
        await wait_until(pilot, lambda: not replay.session_running, "the recording ended")
        assert replay.pane("architect").text.endswith("word7 ")
        assert replay.view.final is None


async def test_an_empty_history_says_so(tmp_path: Path) -> None:
    app = ScreenApp(lambda: HistoryScreen(open_store(tmp_path / "none"), now=fixed_now))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "No recorded sessions yet" in str(app.screen.query_one("#history-empty", Static).render())


async def test_c_and_h_are_in_the_help_and_the_footer_and_open_their_screens(tmp_path: Path) -> None:
    app = live_app(tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        live = app.main_screen
        assert live is not None
        await wait_done(pilot, live)
        footer_keys = {b.binding.id for b in app.active_bindings.values()}
        assert {"cache", "history"} <= footer_keys
        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert {"cache", "history"} <= {row.binding_id for row in help_screen.rows}
        await pilot.press("escape", "c")
        assert isinstance(app.screen, CacheInspectorScreen)
        assert str(app.screen.empty_note.render()) == EMPTY_CACHE
        await pilot.press("escape", "h")
        assert isinstance(app.screen, HistoryScreen)


def test_a_sessions_age_is_its_start(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    write_recording(store, recorded_session("a", "Task", finished=True, cost=0.01), NOW)
    [summary] = store.list()
    assert summary.started_at == NOW - timedelta(seconds=1.3)


# ---------------------------------------------------------------------------- resume and fork


class NoRegistry:
    async def aclose(self) -> None:
        pass


def scripted_continuation(calls: list[dict[str, Any]], providers: list[ScriptedProvider]) -> Any:
    """``session.prepare_continuation`` on the scripted provider: the same Continuation, the real engine."""

    def prepare(stored: StoredSession, **changes: Any) -> Prepared:
        calls.append(changes)
        at = changes["at_chunk"] if changes["at_chunk"] is not None else len(stored.syntheses)
        feedback = stored.pending_feedback(at)
        if changes["feedback"]:
            feedback = {at + 1: changes["feedback"]}
        provider = ScriptedProvider(Script())
        providers.append(provider)
        spec = SessionSpec(
            task=stored.summary.task,
            workflow=stored.workflow,  # type: ignore[arg-type]
            strategy="test",
            continuation=Continuation(
                parent_id=stored.summary.id,
                chunks=stored.syntheses[:at],
                feedback=feedback,
                change="feedback" if changes["feedback"] else "",
            ),
        )
        return Prepared(Collaboration(spec, SingleProviderResolver(provider)), NoRegistry())  # type: ignore[arg-type]

    return prepare


async def test_r_resumes_an_interrupted_session_and_f_forks_one_from_the_history(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    cut = collaboration(ScriptedProvider(Script()), clock=FakeClock(0.01), session_id="cut-session")
    parent = await record_cut(store, cut, chunks_done=2)
    calls: list[dict[str, Any]] = []
    providers: list[ScriptedProvider] = []
    app = FacilitairApp(
        entry=None,
        collaboration=collaboration(ScriptedProvider(Script()), clock=FakeClock(0.01)),
        store=store,
        prepare_continuation=scripted_continuation(calls, providers),
        live_clock=False,
    )
    async with app.run_test(size=(200, 50)) as pilot:
        live = app.main_screen
        assert live is not None
        await wait_done(pilot, live)
        await pilot.press("h")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        row = [s.id for s in history.sessions].index(parent)
        history.table.move_cursor(row=row)
        await pilot.pause()
        assert history.query_one("#history-resume", Button).display
        assert RESUME_NOTE in str(history.query_one("#history-note", Static).render())

        await pilot.press("r")
        await wait_until(
            pilot, lambda: isinstance(app.screen, MainScreen) and app.screen is not live, "resumed"
        )
        resumed = app.screen
        assert isinstance(resumed, MainScreen) and not resumed.replaying
        await wait_done(pilot, resumed)
        assert calls == [{"at_chunk": None, "feedback": None, "strategy": None}]
        # The reused chunks called no model; the synthesis panel has all four chunks.
        assert {chunk_of(c.request) for c in providers[0].calls} == {3, 4}
        assert resumed.view.final is not None and resumed.view.final.status == "done"

        # Both branches are in the history: the resume under the session it continues.
        await pilot.press("h")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        ids = [s.id for s in history.sessions]
        child = resumed.collaboration.session_id
        assert ids.index(child) == ids.index(parent) + 1
        assert "└ resume of" in str(history.table.get_row_at(ids.index(child))[1])

        history.table.move_cursor(row=ids.index(parent))
        await pilot.press("f")
        fork = app.screen
        assert isinstance(fork, ForkScreen)
        fork.query_one("#fork-chunk", Input).value = "7"
        await pilot.press("enter")
        assert "from 0 to 2" in str(fork.query_one("#fork-error", Static).render())
        fork.query_one("#fork-chunk", Input).value = "1"
        fork.query_one("#fork-feedback", Input).value = "use PostgreSQL"
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, MainScreen) and app.screen is not resumed, "forked"
        )
        forked = app.screen
        assert isinstance(forked, MainScreen)
        await wait_done(pilot, forked)
        assert calls[-1] == {"at_chunk": 1, "feedback": ["use PostgreSQL"], "strategy": None}
        assert {chunk_of(c.request) for c in providers[1].calls} == {2, 3, 4}
