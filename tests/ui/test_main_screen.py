"""The main screen, driven by scripted sessions: what the user sees and what reaches the engine.

Assertions are about visible text, widget state, the screen stack and the provider's recorded
calls (the prompts). Sessions are held mid-run by a gate, never by sleeping.
"""

from __future__ import annotations

import pytest
from textual.widgets import Static, TextArea

from facilitair_tui.core import events as ev
from facilitair_tui.providers.scripted import Reply, ScriptedProvider
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.messages import SessionEvents
from facilitair_tui.tui.screens.confirm import ConfirmScreen
from facilitair_tui.tui.screens.error import ErrorScreen
from facilitair_tui.tui.screens.feedback import EMPTY_MESSAGE, FeedbackScreen
from facilitair_tui.tui.screens.help import HelpScreen
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.widgets.stream_view import StreamView
from tests.support.scripted import TITLES, chunk_of

from .support import (
    ROLES,
    SYNTH,
    FakeClock,
    GatedProvider,
    Script,
    agent_deltas,
    collaboration,
    hold_at,
    wait_until,
)

WIDE = (200, 50)
NARROW = (80, 24)


def main_of(app: FacilitairApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


def header_text(screen: MainScreen, agent: str) -> str:
    target = screen.synthesis_panel if agent == SYNTH else screen.pane(agent)
    return str(target.query_one(".pane-header", Static).render())


def status_text(screen: MainScreen) -> str:
    return str(screen.status_bar.render())


def toasts(app: FacilitairApp) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


def full_transcript(script: Script, agent: str, chunks: int = 4) -> list[str]:
    return [script.text(agent, chunk) for chunk in range(1, chunks + 1)]


async def wait_finished(pilot, screen: MainScreen) -> None:  # type: ignore[no-untyped-def]
    # Finished as shown: the output is rendered and the screen switched to it.
    await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
    # The final batch also fed the panes' text views; let them catch up.
    await wait_until(
        pilot,
        lambda: all(p.rendered_source == p.text for p in screen.panes),
        "the panes rendered every token",
    )


# ---------------------------------------------------------------------------- streaming, statuses


async def test_panes_stream_tokens_and_show_true_statuses() -> None:
    script = Script()
    # The architect stops after 4 tokens and the coder after 2: the coder has started (it reads
    # the architect, who passed 3 tokens), the reviewer is still reading both.
    provider = GatedProvider(script, hold_at({("architect", 1): 4, ("coder", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        architect = screen.pane("architect")
        expected = "".join(agent_deltas("architect", 1)[:4])
        await wait_until(pilot, lambda: provider.held == 2, "architect and coder wait at the gate")
        await wait_until(pilot, lambda: expected in architect.rendered_source, "the architect's tokens show")

        assert "Chunk 1: Requirements" in architect.rendered_source
        assert "generating" in header_text(screen, "architect")
        assert "4 tok" in header_text(screen, "architect")
        assert "generating" in header_text(screen, "coder")
        assert "reading Architect, Coder" in header_text(screen, "reviewer")
        assert "waiting" in header_text(screen, SYNTH)
        assert "running" in status_text(screen)
        assert [call.model for call in provider.calls] == ["architect", "coder"]

        provider.gate.set()
        await wait_finished(pilot, screen)

        for agent in ROLES:
            text = screen.pane(agent).rendered_source
            for chunk, title in enumerate(TITLES, start=1):
                assert f"Chunk {chunk}: {title}" in text
                assert script.text(agent, chunk) in text
            assert "done" in header_text(screen, agent)
        assert "done" in header_text(screen, SYNTH)
        assert "done" in status_text(screen)
        assert screen.final_output.display


async def test_elapsed_time_comes_from_event_times_and_the_end_is_announced() -> None:
    script = Script()
    provider = ScriptedProvider(script)
    app = FacilitairApp(collaboration(provider, clock=FakeClock(step=0.5)), live_clock=False)
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        screen = main_of(app)
        await wait_finished(pilot, screen)
        architect = screen.view.agents["architect"]
        assert architect.started_t is not None and architect.finished_t is not None
        elapsed = architect.finished_t - architect.started_t
        minutes, seconds = divmod(elapsed, 60)
        assert f"{int(minutes):02d}:{seconds:05.2f}" in header_text(screen, "architect")
        final = screen.view.final
        assert final is not None
        assert f"{final.input_tokens:,} in / {final.output_tokens:,} out" in status_text(screen)
        tokens = final.input_tokens + final.output_tokens
        duration = f"{int(final.duration_s // 60):02d}:{final.duration_s % 60:05.2f}"
        expected = f"Collaboration complete: {duration}, {tokens:,} tokens"
        await wait_until(pilot, lambda: expected in toasts(app), "the end is announced")
        assert "cost unknown" in toasts(app)  # the scripted models have no price


async def test_a_failing_agent_shows_failed_while_the_others_finish() -> None:
    script = Script(failing={"coder": Reply(agent_deltas("coder", 0), fail_after=2)})
    provider = ScriptedProvider(script)
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_finished(pilot, screen)
        assert "failed" in header_text(screen, "coder")
        assert "connection dropped after 2 deltas" in screen.pane("coder").rendered_source
        for agent in ("architect", "reviewer", SYNTH):
            assert "done" in header_text(screen, agent)
        assert screen.view.final is not None and screen.view.final.status == "done"
        assert screen.pane("coder").has_class("-failed")


async def test_a_session_that_cannot_go_on_shows_the_error_screen_with_every_cause() -> None:
    script = Script(failing={agent: Reply(fail_after=0) for agent in ROLES})
    app = FacilitairApp(collaboration(ScriptedProvider(script)), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen), "the error screen shows")
        error = app.screen
        assert isinstance(error, ErrorScreen)
        assert error.title_text == "The session cannot go on"
        assert "no agent produced any text in chunk 1" in error.message
        for agent in ROLES:
            assert f"{agent.title()}: " in error.message
        assert error.message.count("stream ended without completion") == len(ROLES)
        assert "o shows the output" in error.fix
        await pilot.press("escape")
        await wait_finished(pilot, screen)
        assert screen.view.final is not None and screen.view.final.status == "failed"


# ---------------------------------------------------------------------------- pause


async def test_pause_holds_everything_and_resume_loses_nothing() -> None:
    script = Script()
    # Chunk 1: every role stops after 3 tokens until the gate opens.
    limits = {(agent, 1): 3 for agent in ROLES}
    provider = GatedProvider(script, hold_at(limits))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 3, "all three agents wait at the gate")
        await wait_until(
            pilot,
            lambda: all(screen.view.agents[a].streamed == 3 for a in ROLES),
            "three tokens of each agent are shown",
        )

        await pilot.press("p")
        assert screen.collaboration.paused
        await wait_until(pilot, lambda: "paused" in status_text(screen), "the status bar says paused")
        before = {agent: screen.pane(agent).text for agent in ROLES}
        calls_before = len(provider.calls)

        # Let the three running calls stream to their end while paused.
        provider.gate.set()
        await wait_until(
            pilot,
            lambda: all(len(call.delivered) == len(agent_deltas(call.model, 1)) for call in provider.calls),
            "the running calls delivered their scripts",
        )
        for _ in range(20):  # give the engine every chance to start a call it should not
            await pilot.pause()
        assert len(provider.calls) == calls_before == 3  # no new model call while paused
        assert {agent: screen.pane(agent).text for agent in ROLES} == before
        for agent in ROLES:
            assert "paused" in header_text(screen, agent)

        await pilot.press("p")
        await wait_finished(pilot, screen)
        for agent in ROLES:
            text = screen.pane(agent).rendered_source
            position = 0
            for chunk_text in full_transcript(script, agent):
                position = text.index(chunk_text, position)  # every token, in order
        assert screen.view.final is not None and screen.view.final.status == "done"


async def test_pause_also_holds_a_batch_not_yet_applied() -> None:
    script = Script()
    provider = GatedProvider(script, hold_at({("architect", 1): 3}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        # A batch the UI received but had not applied when the user paused stays held.
        screen.action_toggle_pause()
        text = screen.pane("architect").text
        late = ev.Token(session_id="ui-test", agent="architect", chunk=1, text="LATE ")
        await screen.on_session_events(SessionEvents([late]))
        assert screen.pane("architect").text == text
        screen.action_toggle_pause()
        await wait_until(pilot, lambda: "LATE " in screen.pane("architect").text, "the held batch is applied")


# ---------------------------------------------------------------------------- feedback


async def test_feedback_for_the_next_chunk_reaches_the_next_chunks_prompts() -> None:
    script = Script()
    provider = GatedProvider(script, hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")

        await pilot.press("f")
        assert isinstance(app.screen, FeedbackScreen)
        app.screen.query_one(TextArea).insert("Use PostgreSQL, not SQLite")
        await pilot.press("enter")  # "next chunk" is the default choice
        assert app.screen is screen
        await wait_until(pilot, lambda: bool(screen.view.feedback), "the engine acknowledged the feedback")
        assert screen.view.feedback[0].applies_to == "next_chunk" and screen.view.feedback[0].chunk == 2

        provider.gate.set()
        await wait_finished(pilot, screen)
        prompts = {
            (call.model, chunk_of(call.request)): call.request.messages[-1].content for call in provider.calls
        }
        assert "Use PostgreSQL, not SQLite" not in prompts["architect", 1]
        for agent in (*ROLES, SYNTH):
            assert "Use PostgreSQL, not SQLite" in prompts[agent, 2], agent


async def test_feedback_now_restarts_the_chunk_with_the_feedback() -> None:
    script = Script()
    provider = GatedProvider(script, hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        await pilot.press("f")
        app.screen.query_one(TextArea).insert("Keep it tiny")
        await pilot.click("#when-now")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(provider.calls) >= 2, "the architect restarted")
        provider.gate.set()
        await wait_finished(pilot, screen)
        restarted = [c for c in provider.calls if c.model == "architect" and chunk_of(c.request) == 1]
        assert len(restarted) == 2
        assert "Keep it tiny" in restarted[1].request.messages[-1].content
        assert "restarted with your feedback" in screen.pane("architect").rendered_source


async def test_empty_feedback_is_refused_and_nothing_is_sent() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        await pilot.press("f")
        await pilot.press("enter")
        feedback = app.screen
        assert isinstance(feedback, FeedbackScreen)
        error = feedback.query_one("#feedback-error", Static)
        assert error.display and EMPTY_MESSAGE in str(error.render())
        await pilot.press("escape")
        assert app.screen is screen
        provider.gate.set()
        await wait_finished(pilot, screen)
        assert not any("Feedback from the user" in c.request.messages[-1].content for c in provider.calls)


# ---------------------------------------------------------------------------- verbosity


async def test_verbosity_cycles_through_all_filtered_and_synthesis_only() -> None:
    script = Script()
    provider = GatedProvider(script, hold_at({("architect", 2): 3}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "chunk 2's architect waits at the gate")
        architect = screen.pane("architect")
        await wait_until(pilot, lambda: architect.rendered_source == architect.text, "the pane caught up")
        latest_box = architect.query_one(".pane-latest")
        latest = architect.query_one(".pane-latest-text", Static)
        markdown = architect.query_one(".pane-text", StreamView)
        assert markdown.display and not latest_box.display
        assert "verbosity all" in status_text(screen)

        await pilot.press("v")
        assert screen.verbosity == "filtered"
        assert not markdown.display and latest_box.display
        shown = str(latest.render())
        assert "Chunk 2: Architecture" in shown
        assert "".join(agent_deltas("architect", 2)[:3]).strip() in shown
        assert script.text("architect", 1).strip() not in shown  # earlier paragraphs are not shown
        assert screen.synthesis_panel.display
        assert "verbosity filtered" in status_text(screen)

        await pilot.press("v")
        assert screen.verbosity == "synthesis"
        assert not any(pane.display for pane in screen.panes)
        assert screen.synthesis_panel.display
        assert "Merged plan of chunk 1" in screen.synthesis_panel.merged_source

        # Text that arrives while the panes are hidden is not lost: it shows once they are back.
        provider.gate.set()
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        await pilot.press("o")  # back from the final output to the panes
        await pilot.press("v")
        assert screen.verbosity == "all"
        assert architect.display and markdown.display
        await wait_until(pilot, lambda: architect.rendered_source == architect.text, "the pane caught up")
        assert script.text("architect", 4) in architect.rendered_source


# ---------------------------------------------------------------------------- stop and quit


async def test_stop_with_confirmation_ends_stopped_and_shows_the_partial_output() -> None:
    script = Script()
    provider = GatedProvider(script, hold_at({("architect", 2): 3}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "chunk 2's architect waits at the gate")

        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is screen and screen.session_running

        await pilot.press("s")
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        final = screen.view.final
        assert final is not None and final.status == "stopped"
        assert "stopped" in status_text(screen)
        output = screen.final_output
        assert output.display and not screen.query_one("#workspace").display
        partial = "".join(agent_deltas("architect", 2)[:3]).strip()
        assert partial in output.text_of("output-full")
        assert "Architecture (interrupted)" in output.text_of("output-architecture")
        assert partial in output.text_of("output-architecture")
        assert "Merged plan of chunk 1" in output.text_of("output-architecture")  # Requirements
        assert "Nothing for this part" in output.text_of("output-code")
        assert "cancelled" in header_text(screen, "architect")
        # The session is over: its controls leave the footer, the output switch comes in.
        assert screen.check_action("toggle_pause", ()) is False
        assert screen.check_action("stop", ()) is False
        assert screen.check_action("toggle_output", ()) is True


async def test_quit_while_running_asks_then_stops_the_session_first() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert app.screen is screen and screen.session_running
        await app.run_action("quit")  # Textual's own quit (the palette's) asks too
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.press("q")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_value is not None, "the app exited")
    final = app.return_value
    assert final is not None and final.status == "stopped"


async def test_quit_after_the_session_finished_does_not_ask() -> None:
    app = FacilitairApp(collaboration(ScriptedProvider(Script())), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_value is not None, "the app exited")
    assert app.return_value is not None and app.return_value.status == "done"


# ---------------------------------------------------------------------------- help, keymap, palette


@pytest.mark.parametrize("key", ["question_mark", "f1"])
async def test_help_lists_every_binding_of_the_app_and_the_screen(key: str) -> None:
    app = FacilitairApp(collaboration(ScriptedProvider(Script())), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        await pilot.press(key)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        ids = {row.binding_id for row in help_screen.rows}
        assert {
            "pause",
            "verbosity",
            "feedback",
            "stop",
            "toggle_output",
            "write_files",
            "help",
            "quit",
            "quit_ctrl_q",
            "command_palette",
        } <= ids
        shown = help_screen.text
        for row in help_screen.rows:
            assert row.keys in shown and row.description in shown and row.binding_id in shown
        assert "? / f1" in shown
        assert "Pause/Resume" in shown
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_keys_are_remapped_by_binding_id() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), keymap={"pause": "space"}, live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        await pilot.press("p")
        assert not screen.collaboration.paused
        await pilot.press("space")
        assert screen.collaboration.paused
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        pause_row = next(row for row in app.screen.rows if row.binding_id == "pause")
        assert pause_row.keys == "space"


async def test_command_palette_runs_the_screens_actions() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held == 1, "the architect waits at the gate")
        await pilot.press("ctrl+p")
        await pilot.press(*"cycle verbosity")
        await wait_until(
            pilot, lambda: _palette_has(app, "Cycle verbosity"), "the palette offers the command"
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.verbosity == "filtered", "the verbosity changed")

        await pilot.press("ctrl+p")
        await pilot.press(*"pause")
        await wait_until(pilot, lambda: _palette_has(app, "Pause / resume"), "the palette offers pause")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.collaboration.paused, "the session paused")


def _palette_has(app: FacilitairApp, text: str) -> bool:
    from textual.command import CommandList

    try:
        options = app.screen.query_one(CommandList)
    except Exception:
        return False
    return any(text in str(options.get_option_at_index(i).prompt) for i in range(options.option_count))


# ---------------------------------------------------------------------------- layout


async def test_narrow_terminal_shows_one_tab_at_a_time() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = main_of(app)
        await pilot.pause()
        assert screen.current_layout == "narrow" and screen.has_class("-narrow")
        tabs = screen.agent_tabs
        assert tabs.display
        shown = [pane for pane in (*screen.panes, screen.synthesis_panel) if pane.display]
        assert [p.id for p in shown] == ["pane-architect"]
        tabs.active = "tab-coder"
        await pilot.pause()
        shown = [pane for pane in (*screen.panes, screen.synthesis_panel) if pane.display]
        assert [p.id for p in shown] == ["pane-coder"]
        tabs.active = "tab-synthesis"
        await pilot.pause()
        assert screen.synthesis_panel.display and not any(p.display for p in screen.panes)


async def test_wide_terminal_shows_the_agents_side_by_side() -> None:
    provider = GatedProvider(Script(), hold_at({("architect", 1): 2}))
    app = FacilitairApp(collaboration(provider), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await pilot.pause()
        assert screen.current_layout == "wide" and screen.has_class("-wide")
        assert not screen.agent_tabs.display
        regions = [pane.region for pane in screen.panes]
        assert all(pane.display for pane in screen.panes)
        assert len({r.y for r in regions}) == 1  # one row
        assert regions[0].right <= regions[1].x and regions[1].right <= regions[2].x
        assert screen.synthesis_panel.region.y >= regions[0].bottom


async def test_the_app_also_takes_a_factory_for_the_collaboration() -> None:
    made: list[object] = []

    def factory():  # type: ignore[no-untyped-def]
        made.append(collaboration(ScriptedProvider(Script())))
        return made[-1]

    app = FacilitairApp(factory, live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        assert made == [screen.collaboration]


async def test_resizing_switches_the_layout() -> None:
    app = FacilitairApp(collaboration(ScriptedProvider(Script())), live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await pilot.pause()
        await pilot.resize_terminal(100, 30)
        await wait_until(pilot, lambda: screen.current_layout == "narrow", "the layout is narrow")
        await pilot.resize_terminal(160, 40)
        await wait_until(pilot, lambda: screen.current_layout == "wide", "the layout is wide")


# ---------------------------------------------------------------------------- failures of the UI itself


async def test_a_failing_session_worker_shows_an_error_screen_and_the_app_stays_up() -> None:
    from facilitair_tui.core.gateway import NO_RETRY
    from facilitair_tui.core.orchestrator import Collaboration
    from facilitair_tui.providers.scripted import SingleProviderResolver

    class Broken(Collaboration):
        async def events(self):  # type: ignore[no-untyped-def, override]
            count = 0
            async for event in super().events():
                yield event
                count += 1
                if count == 5:
                    raise RuntimeError("the event stream broke")

    provider = GatedProvider(Script(), hold_at({("architect", 1): 4}))
    base = collaboration(provider)
    broken = Broken(base.spec, SingleProviderResolver(provider), clock=FakeClock(), retry=NO_RETRY)
    app = FacilitairApp(broken, live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen), "the error screen shows")
        error = app.screen
        assert isinstance(error, ErrorScreen)
        assert "the event stream broke" in error.message
        assert "run the task again" in error.fix
        assert "failed" in status_text(screen)
        assert screen.check_action("toggle_pause", ()) is False
        await pilot.press("escape")
        assert app.screen is screen
        assert app.is_running


# ---------------------------------------------------------------------------- batching


async def test_a_burst_of_events_reaches_the_screen_as_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from facilitair_tui.core.orchestrator import Collaboration

    tokens = [f"w{i} " for i in range(40)]

    class Burst(Collaboration):
        """Everything at once: every event is ready before the screen's worker runs again."""

        async def events(self):  # type: ignore[no-untyped-def, override]
            sid = self.session_id
            yield ev.SessionStarted(
                session_id=sid, task="t", context={}, strategy="test", workflow="scripted", models={}
            )
            yield ev.ChunkStarted(session_id=sid, chunk=1, title="Requirements", total=4)
            yield ev.AgentStarted(session_id=sid, agent="architect", chunk=1, model="scripted:architect")
            for text in tokens:
                yield ev.Token(session_id=sid, agent="architect", chunk=1, text=text)
            yield ev.SessionFinished(
                session_id=sid,
                status="stopped",
                output="",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
                duration_s=1.0,
            )

    batches: list[int] = []
    original = MainScreen.on_session_events

    async def counting(self: MainScreen, message: SessionEvents) -> None:
        batches.append(len(message.events))
        await original(self, message)

    monkeypatch.setattr(MainScreen, "on_session_events", counting)
    app = FacilitairApp(Burst(collaboration(ScriptedProvider(Script())).spec, None), live_clock=False)  # type: ignore[arg-type]
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        assert batches == [len(tokens) + 4]
        assert "".join(tokens) in screen.pane("architect").text
