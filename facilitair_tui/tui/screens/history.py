"""The session history (h): past sessions, newest first, with their resumes and forks under them.

It reads a ``SessionHistory`` (the session store) and nothing else. Enter replays the highlighted
session through the main screen, exactly the path a live run takes, at the speed picked with 1,
4 or i. ``r`` resumes an interrupted, stopped or failed session from its last finished chunk;
``f`` forks one after a chunk, with other feedback or another strategy. Both post ``Continue``:
the app prepares the new session (the screen never touches a provider).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Static

from facilitair_tui.core.workflow import Workflow, packaged_workflows
from facilitair_tui.library import (
    ContinueRequest,
    SessionHistory,
    SessionSummary,
    branch_label,
    branches,
    format_age,
)
from facilitair_tui.replay import INSTANT, SPEEDS, Replay, ReplayError, replay_workflow, speed_label
from facilitair_tui.summaries import clock, money
from facilitair_tui.traces.timeline import Timeline
from facilitair_tui.tui.screens.cache_inspector import STYLES, Clock, utc_now
from facilitair_tui.tui.screens.fork import ForkScreen
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.screens.waterfall import WaterfallScreen

NO_SESSIONS = "No recorded sessions yet. Every session you run is recorded here from its first event."
RESUME_NOTE = "r resumes it from its last finished chunk; f forks it"


def chunks_text(summary: SessionSummary) -> str:
    return f"{summary.chunks_done}/{summary.chunks_total}" if summary.chunks_total else "—"


class HistoryScreen(Screen[None]):
    CSS_PATH = STYLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "replay", "Replay", id="history.replay", tooltip="Replay the highlighted session"),
        Binding("1", "speed('1x')", "1x", id="history.speed_1x", tooltip="Replay at the recorded pace"),
        Binding("4", "speed('4x')", "4x", id="history.speed_4x", tooltip="Replay four times faster"),
        Binding("i", "speed('instant')", "Instant", id="history.speed_instant", tooltip="Replay at once"),
        Binding(
            "r", "resume", "Resume", id="history.resume", tooltip="Continue from the last finished chunk"
        ),
        Binding(
            "f", "fork", "Fork", id="history.fork", tooltip="Branch off after a chunk with other feedback"
        ),
        Binding(
            "t",
            "waterfall",
            "Trace",
            id="history.waterfall",
            tooltip="The highlighted session's trace waterfall: where its time went",
        ),
        Binding("escape", "close", "Back", id="history.close", tooltip="Back to the session"),
    ]

    speed: reactive[float] = reactive(1.0)

    class Continue(Message):
        """Resume or fork a recorded session (the app prepares and runs it)."""

        def __init__(self, request: ContinueRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(
        self,
        history: SessionHistory,
        *,
        workflows: Iterable[Workflow] = (),
        now: Clock = utc_now,
        live_clock: bool = True,
    ) -> None:
        super().__init__()
        self.history = history
        self.workflows = list(workflows)
        self._now = now
        self._live_clock = live_clock
        self.sessions: list[SessionSummary] = []

    def compose(self) -> ComposeResult:
        yield Static("Session history", classes="library-title")
        yield Static("", id="history-speed")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-empty", markup=False)
        with Horizontal(id="history-detail"):
            yield Static("", id="history-note", markup=False)
            yield Button("Resume (r)", id="history-resume", tooltip=RESUME_NOTE)
        yield Footer()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#history-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns("When", "Task", "Status", "Cost", "Duration", "Chunks")
        self.refresh_rows()
        self.table.focus()

    def refresh_rows(self) -> None:
        self.sessions = self.history.list()
        table, now = self.table, self._now()
        table.clear()
        tree = branches(self.sessions)
        self.sessions = [session for _, session in tree]
        for depth, session in tree:
            task = session.task or "(no task recorded)"
            if depth:
                task = f"{'  ' * (depth - 1)}└ {branch_label(session)}"
            table.add_row(
                format_age(session.started_at, now),
                task,
                session.status,
                money(session.cost_usd),
                clock(session.duration_s),
                chunks_text(session),
                key=session.id,
            )
        self.query_one("#history-empty", Static).update("" if self.sessions else NO_SESSIONS)
        self.set_class(not self.sessions, "-empty")
        self._show_detail(self.highlighted)
        self.refresh_bindings()

    @property
    def highlighted(self) -> SessionSummary | None:
        row = self.table.cursor_row
        return self.sessions[row] if 0 <= row < len(self.sessions) else None

    def _show_detail(self, session: SessionSummary | None) -> None:
        lines = []
        if session is not None:
            lines.append(
                f"{session.id}: {session.status}, {chunks_text(session)} chunks, {money(session.cost_usd)}"
            )
            if session.parent_id:
                lines.append(f"{branch_label(session)} (its cost counts only the chunks it ran)")
            if session.note:
                lines.append(f"⚠ {session.note}")
        resumable = session is not None and session.resumable
        if resumable:
            lines.append(f"It ended before its last chunk: {RESUME_NOTE}.")
        self.query_one("#history-note", Static).update("\n".join(lines))
        self.query_one("#history-resume", Button).display = resumable

    def watch_speed(self, speed: float) -> None:
        choices = []
        for label, value in SPEEDS.items():
            key = "i" if value == INSTANT else label.removesuffix("x")
            text = f"{label} ({key})"
            choices.append(f"[b reverse] {text} [/]" if value == speed else f" {text} ")
        self.query_one("#history-speed", Static).update(
            Content.from_markup("Enter replays at: " + " ".join(choices))
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(self.highlighted)
        self.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_replay()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        session = self.highlighted
        if action == "replay":
            return session is not None
        if action == "resume":
            return session is not None and session.resumable
        if action == "fork":
            return session is not None and session.status != "running"
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "history-resume":
            event.stop()
            self.action_resume()

    def action_resume(self) -> None:
        session = self.highlighted
        if session is not None and session.resumable:
            self.post_message(self.Continue(ContinueRequest(session.id)))

    def action_fork(self) -> None:
        session = self.highlighted
        if session is None:
            return

        def forked(request: ContinueRequest | None) -> None:
            if request is not None:
                self.post_message(self.Continue(request))

        self.app.push_screen(ForkScreen(session), callback=forked)

    def action_speed(self, label: str) -> None:
        self.speed = SPEEDS[label]

    def action_replay(self) -> None:
        session = self.highlighted
        if session is None:
            return
        try:
            events = self.history.events(session.id)
            # The workflow it ran gives the panes their titles and icons; else they are rebuilt.
            known = [*self.workflows, *packaged_workflows()]
            replay = Replay(events, replay_workflow(events, known), speed=self.speed)
        except (KeyError, ReplayError) as exc:
            self.notify(
                f"{exc}. Pick another session.",
                title="This session cannot be replayed",
                severity="error",
                markup=False,
            )
            return
        self.notify(f"{session.task} at {speed_label(self.speed)}", title="Replay", markup=False)
        self.app.push_screen(MainScreen(replay, live_clock=self._live_clock))

    def action_waterfall(self) -> None:
        session = self.highlighted
        if session is None:
            return
        try:
            events = self.history.events(session.id)
        except KeyError as exc:
            self.notify(f"{exc}. Pick another session.", title="No trace", severity="error", markup=False)
            return
        self.app.push_screen(WaterfallScreen(Timeline.of(events), title=session.task))

    def action_close(self) -> None:
        self.dismiss(None)
