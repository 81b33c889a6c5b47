"""The workspace: every agent's live pane, the synthesis, the status line and, at the end, the output.

Data flows one way. A worker iterates ``collaboration.events()`` and posts the events in batches
(``SessionEvents``: at most one per half frame, so a burst of tokens is one UI update);
the screen folds each batch into a ``SessionView`` and calls its widgets' methods. Besides the
events, the screen only reads the collaboration's workflow (roles, titles, who reads whom) and
task, and uses its plain controls (pause, resume, feedback, stop).

Pausing stops the visible flow at once: the engine holds the events it produces while paused,
and the screen also holds the batches it had not applied yet. On resume, the held batches are
applied first, then the engine's (in the order they happened): nothing is lost.

The source can also be a ``Replay`` of a recorded session: the same events through the same
path, without stop and feedback (the screen says "replay"). A live session's events are also
given to the ``recorder`` as they arrive, so the history can replay them later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Container
from textual.content import Content
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from facilitair_tui.core import events as ev
from facilitair_tui.core.budget import BudgetChoice
from facilitair_tui.core.orchestrator import Collaboration
from facilitair_tui.library import EventSink
from facilitair_tui.replay import Replay, speed_label
from facilitair_tui.summaries import cache_summary, code_run_note, finished_summary
from facilitair_tui.traces.settings import NOT_SENT
from facilitair_tui.traces.timeline import Timeline
from facilitair_tui.tui.command_palette import SessionCommands
from facilitair_tui.tui.messages import SessionCrashed, SessionEvents
from facilitair_tui.tui.screens.budget import BudgetScreen
from facilitair_tui.tui.screens.confirm import ConfirmScreen
from facilitair_tui.tui.screens.error import ErrorScreen
from facilitair_tui.tui.screens.feedback import FeedbackRequest, FeedbackScreen
from facilitair_tui.tui.screens.write_files import WRITE_WHEN_ENDED, FilesWritten, WriteFilesScreen
from facilitair_tui.tui.session_view import SessionView, Verbosity, next_verbosity
from facilitair_tui.tui.widgets.agent_pane import AgentPane
from facilitair_tui.tui.widgets.final_output import FinalOutput
from facilitair_tui.tui.widgets.session_header import SessionHeader
from facilitair_tui.tui.widgets.status_bar import StatusBar
from facilitair_tui.tui.widgets.synthesis_panel import SynthesisPanel

Layout = Literal["wide", "narrow"]

# Terminals at least this wide show the agents side by side; narrower ones show one tab at a time.
WIDE_MIN_WIDTH = 120
# Events are applied in batches at most this often: half a frame (Textual draws at most 60 per
# second), so under a stream every frame has new text to show and a batch never waits a frame.
FRAME_S = 0.008
# How long quitting waits for a stopped session to close before leaving anyway.
STOP_TIMEOUT_S = 5.0
SYNTHESIS_TAB = "tab-synthesis"
SESSION_FAILED_FIX = (
    "Each error above says what to change (a key, a model, a server to start). What the agents "
    "wrote is kept: o shows the output, the panes keep their text. Fix it, quit with q and run "
    "the task again."
)

_FINISH_SEVERITY: dict[ev.SessionStatus, SeverityLevel] = {
    "done": "information",
    "stopped": "warning",
    "failed": "error",
}


class _StreamEnded(Exception):
    """The event source ended without session_finished."""


def budget_decision_text(decision: ev.BudgetDecision) -> str:
    if decision.choice == "cheaper":
        return f"Switched to {(decision.strategy or 'cheaper models').upper()} for the rest of the session."
    if decision.choice == "continue":
        return "Going on past the budget for this chunk."
    return "Stopped at the budget."


def layout_for(width: int) -> Layout:
    return "wide" if width >= WIDE_MIN_WIDTH else "narrow"


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p",
            "toggle_pause",
            "Pause/Resume",
            id="pause",
            tooltip="Pause (no new model call starts, the text stops) or resume (everything held follows)",
        ),
        Binding(
            "v",
            "cycle_verbosity",
            "Verbosity",
            id="verbosity",
            tooltip="Cycle: every token, each agent's latest paragraph, the synthesis only",
        ),
        Binding("f", "feedback", "Feedback", id="feedback", tooltip="Tell the agents what to change"),
        Binding("s", "stop", "Stop", id="stop", tooltip="Stop the session and keep the partial output"),
        Binding(
            "o",
            "toggle_output",
            "Output/Agents",
            id="toggle_output",
            tooltip="Switch between the final output and the agents' panes",
        ),
        Binding(
            "w",
            "write_files",
            "Write files",
            id="write_files",
            tooltip="Write the session's code, tests and a README to a directory (once it has ended)",
        ),
        Binding("escape", "close_replay", "Back", id="replay.back", tooltip="End the replay and go back"),
        Binding(
            "r",
            "run_fresh",
            "Run fresh",
            id="run_fresh",
            tooltip="This answer came from the cache: run the agents on the task instead",
        ),
    ]
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {SessionCommands}

    class RunFresh(Message):
        """The user wants the agents to run on a task the cache answered."""

    current_layout: reactive[Layout] = reactive("wide")
    verbosity: reactive[Verbosity] = reactive("all")

    def __init__(
        self,
        collaboration: Collaboration | Replay,
        *,
        live_clock: bool = True,
        recorder: EventSink | None = None,
    ) -> None:
        super().__init__()
        self.collaboration = collaboration
        self.replaying = isinstance(collaboration, Replay)
        # Replays are recordings already: only a live session is recorded.
        self._recorder = None if self.replaying else recorder
        self._recording_problem: str | None = None
        self._replay_ended = False
        self.view = SessionView.for_workflow(collaboration.workflow)
        # The session's bars on a time axis, for the waterfall (built from the same events).
        self.timeline = Timeline()
        # Elapsed times come from event t. With the live clock on, a running session's "now"
        # also advances between events (once a second); tests turn it off to stay deterministic.
        self._live_clock = live_clock
        self._event_wall = time.monotonic()
        self._holding = False
        self._held: list[ev.Event] = []
        self._crashed = False
        self.session_worker: Worker[ev.SessionFinished | None] | None = None

    # ------------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        view = self.view
        titles = {name: agent.title for name, agent in view.agents.items()}
        source = self.collaboration
        if isinstance(source, Replay):
            yield Static(self._replay_banner(source), id="replay-banner", markup=False)
        yield Static("", id="cache-banner", markup=False)
        task = source.task if isinstance(source, Replay) else source.spec.task
        yield SessionHeader(task, titles, id="session-header")
        tabs = [
            Tab(Content(f"{view.agents[name].icon} {view.agents[name].title}"), id=f"tab-{name}")
            for name in view.roles
        ]
        yield Tabs(*tabs, Tab("Synthesis", id=SYNTHESIS_TAB), id="agent-tabs")
        with Container(id="workspace"):
            for name in view.roles:
                yield AgentPane(view.agents[name], id=f"pane-{name}", classes="pane")
            yield SynthesisPanel(view.agents[view.synthesizer], titles, id="synthesis", classes="pane")
        yield FinalOutput(id="final-output")
        yield StatusBar(id="status-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.current_layout = layout_for(self.app.size.width)
        self._show_tab(f"tab-{self.view.roles[0]}")
        self._refresh_state()
        if self._live_clock:
            self.set_interval(1.0, self._tick)
        self.session_worker = self.run_session()

    # ------------------------------------------------------------------ typed access to children

    def pane(self, agent: str) -> AgentPane:
        return self.query_one(f"#pane-{agent}", AgentPane)

    @property
    def panes(self) -> list[AgentPane]:
        return [self.pane(name) for name in self.view.roles]

    @property
    def synthesis_panel(self) -> SynthesisPanel:
        return self.query_one("#synthesis", SynthesisPanel)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one("#status-bar", StatusBar)

    @property
    def header(self) -> SessionHeader:
        return self.query_one("#session-header", SessionHeader)

    @property
    def final_output(self) -> FinalOutput:
        return self.query_one("#final-output", FinalOutput)

    @property
    def agent_tabs(self) -> Tabs:
        return self.query_one("#agent-tabs", Tabs)

    def _target(self, agent: str) -> AgentPane | SynthesisPanel | None:
        if agent == self.view.synthesizer:
            return self.synthesis_panel
        return self.pane(agent) if agent in self.view.agents else None

    @property
    def session_running(self) -> bool:
        return not self.view.finished and not self._crashed and not self._replay_ended

    # ------------------------------------------------------------------ the session worker

    @work(exclusive=True, exit_on_error=False, group="session", name="session")
    async def run_session(self) -> ev.SessionFinished | None:
        """Drive the collaboration; post its events, a frame's worth at a time. Touches no widget."""
        queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(queue), name="session-events")
        loop = asyncio.get_running_loop()
        posted = -FRAME_S  # when the last batch was posted
        try:
            while True:
                try:
                    batch = [await self._next_event(queue, pump)]
                except _StreamEnded:
                    if not self.replaying:
                        raise RuntimeError("the event stream ended without session_finished") from None
                    return None  # an interrupted recording: it simply ends
                # At most one batch per frame: an event that comes after a quiet frame goes at
                # once; under a stream, the rest of the frame's events join it.
                wait = posted + FRAME_S - loop.time()
                if wait > 0 and not isinstance(batch[0], ev.SessionFinished):
                    await asyncio.sleep(wait)
                while not queue.empty() and not isinstance(batch[-1], ev.SessionFinished):
                    batch.append(queue.get_nowait())
                posted = loop.time()
                self.post_message(SessionEvents(batch))
                final = batch[-1]
                if isinstance(final, ev.SessionFinished):
                    return final
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, queue: asyncio.Queue[ev.Event]) -> None:
        async for event in self.collaboration.events():
            await self._record(event)
            queue.put_nowait(event)

    async def _record(self, event: ev.Event) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        try:
            await recorder.record_async(event)  # the screen stays live while a barrier waits
        except Exception as exc:  # recording must never take the session down
            # The session goes on; only its recording (for the history) ends here.
            self._recorder = None
            self.notify(
                f"{exc}. The session goes on, but the history will not have it.",
                title="Recording stopped",
                severity="warning",
                markup=False,
            )
            return
        problem = recorder.problem
        if problem != self._recording_problem:
            self._recording_problem = problem
            if problem:
                title = "Traces not sent" if NOT_SENT in problem else "Saving the session is behind"
                self.notify(problem, title=title, severity="warning", markup=False)

    @staticmethod
    async def _next_event(queue: asyncio.Queue[ev.Event], pump: asyncio.Task[None]) -> ev.Event:
        if not queue.empty():
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, pump}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        pump.result()  # the stream failed: raise its error in the worker
        raise _StreamEnded("the event stream ended without a session_finished event")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        replay_ended = self.replaying and event.state == WorkerState.SUCCESS and event.worker.result is None
        if event.worker is self.session_worker and replay_ended:
            self._replay_ended = True
            self._refresh_state()
            self.refresh_bindings()
            self.notify(
                "The recording ends here: the session was interrupted or the replay was ended.",
                title="Replay ended",
                markup=False,
            )
        if event.worker is self.session_worker and event.state == WorkerState.ERROR:
            error = event.worker.error
            assert error is not None
            self._crashed = True
            self.view.state = "failed"
            self._refresh_state()
            self.refresh_bindings()
            self.post_message(SessionCrashed(error))

    async def stop_and_wait(self) -> ev.SessionFinished | None:
        """Stop the session and wait (a bounded time) for its closing event."""
        self.collaboration.stop()
        worker = self.session_worker
        if worker is None:
            return None
        with contextlib.suppress(WorkerFailed, WorkerCancelled, TimeoutError):
            return await asyncio.wait_for(worker.wait(), STOP_TIMEOUT_S)
        return None

    # ------------------------------------------------------------------ applying events

    async def on_session_events(self, message: SessionEvents) -> None:
        for event in message.events:
            if not self._holding:
                self._held.append(event)
            elif isinstance(event, ev.Resumed):
                # The engine resumed (the user, or stop() resuming held agents so they can end).
                self._holding = self.view.held = False
                self._held.append(event)
            elif isinstance(event, (ev.Paused, ev.Feedback, ev.BudgetExceeded, ev.BudgetDecision)):
                # Control events describe the pause or the user's own request: never held back.
                await self._apply([event])
            else:
                self._held.append(event)
        if not self._holding and self._held:
            batch, self._held = self._held, []
            await self._apply(batch)

    async def _apply(self, batch: list[ev.Event]) -> None:
        view = self.view
        timeline = self.timeline
        for event in batch:
            timeline.add(event)
            restarted = isinstance(event, ev.AgentStarted) and view.is_restart(event)
            view.apply(event)
            if isinstance(event, ev.Token):
                target = self._target(event.agent)
                if target is not None:
                    target.add_text(event.text)
            elif isinstance(event, ev.SessionStarted):
                self.header.show_session(event.task, view.strategy, event.models)
            elif isinstance(event, ev.CacheChecked):
                self._show_cache(event)
            elif isinstance(event, ev.ChunkStarted):
                for pane in self.panes:
                    pane.start_chunk(event.chunk, event.title)
                self.synthesis_panel.start_chunk(event.chunk, event.title)
            elif isinstance(event, ev.AgentStarted) and restarted:
                target = self._target(event.agent)
                if target is not None:
                    target.add_note("restarted with your feedback")
            elif isinstance(event, ev.Synthesis):
                await self.synthesis_panel.show_synthesis(
                    event,
                    view.title_of(event.chunk),
                    view.total_chunks,
                    view.chunk_costs.get(event.chunk, 0.0),
                )
            elif isinstance(event, ev.CodeRun):
                target = self._target(event.agent)
                if target is not None:
                    target.add_note(code_run_note(event, view.agents[event.agent].title))
            elif isinstance(event, ev.Error):
                self._show_error(event)
            elif isinstance(event, ev.BudgetExceeded):
                self._ask_budget(event)
            elif isinstance(event, ev.BudgetDecision):
                if event.choice == "cheaper":
                    self.header.show_session(view.task, view.strategy, view.models)
                self.notify(budget_decision_text(event), title="Budget", markup=False)
            elif isinstance(event, ev.Feedback):
                when = "now: the chunk restarts" if event.applies_to == "now" else f"from chunk {event.chunk}"
                self.notify(event.text, title=f"Feedback sent, applies {when}", markup=False)
        self._event_wall = time.monotonic()
        for pane in self.panes:
            pane.flush()
        self.synthesis_panel.flush()
        self._refresh_state()
        # Last, once every pane shows its final state: the output is awaited (it renders).
        if isinstance(batch[-1], ev.SessionFinished):
            await self._finish(batch[-1])

    def _show_cache(self, event: ev.CacheChecked) -> None:
        if not event.hit:
            if event.decision == "offer" and not self.replaying:
                self.notify(cache_summary(event), title="Running fresh", markup=False)
            return  # a miss changes nothing on screen: the agents start as usual
        line = f"⚡ {cache_summary(event)}"
        if not self.replaying:
            line += "  ·  r: run the agents instead"
        self.query_one("#cache-banner", Static).update(line)
        self.add_class("-from-cache")
        self.refresh_bindings()

    def _ask_budget(self, alert: ev.BudgetExceeded) -> None:
        collaboration = self.collaboration
        if isinstance(collaboration, Replay) or not collaboration.awaiting_budget:
            return  # a replay shows what happened; the decision follows as its own event

        def decided(choice: BudgetChoice | None) -> None:
            if choice is not None and collaboration.awaiting_budget:
                collaboration.decide_budget(choice)

        self.app.push_screen(BudgetScreen(alert), callback=decided)

    def _show_error(self, event: ev.Error) -> None:
        target = self._target(event.agent) if event.agent else None
        if target is not None:
            target.add_note(f"⚠ {event.message}")
        if not event.recoverable and not self.replaying:
            # The session ends: say why, with every agent's own error (each names its fix).
            agents = self.view.agents
            causes = [
                f"• {agents[e.agent].title if e.agent in agents else e.agent}: {e.message}"
                for e in self.view.errors
                if e.agent and e.chunk == event.chunk
            ]
            detail = "\n".join([event.message, *causes])
            self.app.push_screen(ErrorScreen("The session cannot go on", detail, SESSION_FAILED_FIX))
        elif target is None or not event.recoverable:
            title = "The session cannot go on" if not event.recoverable else "Problem"
            self.notify(event.message, title=title, severity="error", timeout=15, markup=False)

    async def _finish(self, event: ev.SessionFinished) -> None:
        await self.final_output.show(event)
        self.add_class("-finished", "-show-output")
        self.notify(
            finished_summary(event),
            title="Session finished",
            severity=_FINISH_SEVERITY[event.status],
            markup=False,
        )
        self.refresh_bindings()

    # ------------------------------------------------------------------ drawing state

    def _now(self) -> float:
        if self._live_clock and self.session_running:
            return self.view.now + (time.monotonic() - self._event_wall)
        return self.view.now

    def _refresh_state(self) -> None:
        view, now = self.view, self._now()
        for pane in self.panes:
            pane.show_state(view.agents[pane.agent_name], view.status(pane.agent_name), now)
        synthesizer = view.agents[view.synthesizer]
        self.synthesis_panel.show_state(synthesizer, view.status(view.synthesizer), now)
        self.status_bar.show(view, now, self.verbosity)

    def _tick(self) -> None:
        if self.session_running:
            self._refresh_state()

    # ------------------------------------------------------------------ layout and verbosity

    def on_resize(self, event: events.Resize) -> None:
        self.current_layout = layout_for(event.size.width)

    def watch_current_layout(self, layout: Layout) -> None:
        self.set_class(layout == "wide", "-wide")
        self.set_class(layout == "narrow", "-narrow")

    def watch_verbosity(self, previous: Verbosity, verbosity: Verbosity) -> None:
        for name in ("all", "filtered", "synthesis"):
            self.set_class(verbosity == name, f"-verbosity-{name}")
        for pane in self.panes:
            pane.verbosity = verbosity
        # The first call comes while the screen mounts (previous == verbosity), when the
        # tabs may not be mounted yet: touch them only when the synthesis-only view flips.
        if (previous == "synthesis") != (verbosity == "synthesis"):
            tabs = self.agent_tabs
            for name in self.view.roles:
                if verbosity == "synthesis":
                    tabs.hide(f"tab-{name}")
                else:
                    tabs.show(f"tab-{name}")
        if verbosity == "synthesis":
            tabs.active = SYNTHESIS_TAB
            self._show_tab(SYNTHESIS_TAB)
        self._refresh_state()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tabs.id == "agent-tabs" and event.tab.id is not None:
            self._show_tab(event.tab.id)

    def _show_tab(self, tab_id: str) -> None:
        """Narrow layout: the pane of the active tab is the one shown."""
        target = "synthesis" if tab_id == SYNTHESIS_TAB else f"pane-{tab_id.removeprefix('tab-')}"
        for child in self.query_one("#workspace", Container).children:
            child.set_class(child.id == target, "-current")

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides a key from the footer: the session controls while it runs, the output
        # switch once it is over (the help screen still lists them all).
        if action in ("feedback", "stop"):
            return self.session_running and not self.replaying
        if action == "toggle_pause":
            return self.session_running
        if action == "close_replay":
            return self.replaying
        if action == "run_fresh":
            return self.has_class("-from-cache") and not self.replaying
        if action == "toggle_output":
            return self.view.finished
        return True

    def action_run_fresh(self) -> None:
        self.post_message(self.RunFresh())

    def action_toggle_pause(self) -> None:
        collaboration = self.collaboration
        if collaboration.paused:
            collaboration.resume()
            if self._holding:
                self._holding = False
                # Applied in the screen's own message order, so held batches go before newer ones.
                self.post_message(SessionEvents([]))
        else:
            collaboration.pause()
            self._holding = collaboration.paused
        # Shown in this frame, with the text already stopped; not a frame later with the
        # engine's own "paused" event.
        self.view.held = self._holding
        self._refresh_state()

    def action_cycle_verbosity(self) -> None:
        self.verbosity = next_verbosity(self.verbosity)

    def action_feedback(self) -> None:
        self.app.push_screen(FeedbackScreen(), callback=self._send_feedback)

    def _send_feedback(self, request: FeedbackRequest | None) -> None:
        if request is None or isinstance(self.collaboration, Replay):
            return
        try:
            self.collaboration.inject_feedback(request.text, request.applies_to)
        except (ValueError, RuntimeError) as exc:
            self.notify(str(exc), title="Feedback not sent", severity="warning", markup=False)

    def action_stop(self) -> None:
        self.app.push_screen(
            ConfirmScreen(
                "Stop the session?",
                "Every agent stops now. What they wrote so far is kept in the output.",
                yes="Stop",
                no="Keep going",
            ),
            callback=self._stop_confirmed,
        )

    def _stop_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and self.session_running:
            self.collaboration.stop()

    def action_toggle_output(self) -> None:
        self.toggle_class("-show-output")

    def action_write_files(self) -> None:
        if self.session_running:
            self.notify(WRITE_WHEN_ENDED, title="Not yet", severity="warning", markup=False)
            return
        view = self.view
        # No closing event: the worker failed, or a recording ends before the session did.
        ended = view.final.status if view.final else "failed" if self._crashed else "interrupted"
        screen = WriteFilesScreen.for_session(view.result(ended), Path.cwd())
        self.app.push_screen(screen, callback=self._files_written)

    def _files_written(self, written: FilesWritten | None) -> None:
        if written is not None:
            self.notify(written.names, title=written.title, markup=False)

    @staticmethod
    def _replay_banner(replay: Replay) -> str:
        return (
            f"▶ Replay of a recorded session at {speed_label(replay.speed)}: p pauses, "
            "Esc goes back; stop and feedback belong to live sessions"
        )

    def action_close_replay(self) -> None:
        if self.replaying:
            self.collaboration.stop()
            self.dismiss(None)
