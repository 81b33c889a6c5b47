"""The Textual front end: one collaboration, watched and steered live.

``FacilitairApp`` gets a ready ``Collaboration`` (or a factory for one) and never calls a
provider: it consumes the collaboration's events and uses its plain controls. Every key is a
``Binding`` with an id, so a keymap (``{"pause": "space"}``) can move it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration
from facilitair_tui.core.provider import ConfigurationError
from facilitair_tui.library import (
    CacheCatalog,
    ContinueRequest,
    EmptyCacheCatalog,
    EventSink,
    NoSessionHistory,
    SessionHistory,
)
from facilitair_tui.stats import read as read_stats
from facilitair_tui.tui.entry_options import EntryOptions, missing_model
from facilitair_tui.tui.keymap import unknown_binding_ids
from facilitair_tui.tui.messages import SessionCrashed
from facilitair_tui.tui.screens.cache_inspector import CacheInspectorScreen, Clock, utc_now
from facilitair_tui.tui.screens.confirm import ConfirmScreen
from facilitair_tui.tui.screens.error import ErrorScreen
from facilitair_tui.tui.screens.first_run import FirstRunScreen
from facilitair_tui.tui.screens.help import HelpScreen, binding_rows
from facilitair_tui.tui.screens.history import HistoryScreen
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.screens.stats import StatsScreen
from facilitair_tui.tui.screens.task_entry import PrepareSession, TaskEntryScreen
from facilitair_tui.tui.screens.waterfall import WaterfallScreen

if TYPE_CHECKING:
    from facilitair_tui.session import Prepared
    from facilitair_tui.store import SessionStore, StoredSession

CollaborationSource = Collaboration | Callable[[], Collaboration]
# Prepares a session that continues a recorded one (``session.prepare_continuation``).
PrepareContinuation = Callable[..., "Prepared"]

CRASH_FIX = (
    "The agents were stopped; what they wrote is still in the panes. Quit with q and run the task "
    "again. If it happens again, report it with the message above."
)


# Middle-generation collections between two full ones (Python's default: 10).
FULL_GC_EVERY = 100


def tune_gc_for_streaming() -> None:
    """Keep the garbage collector's full passes out of the way of frames while tokens stream.

    A full collection walks every tracked object: with Textual, Rich and the SDKs loaded that is
    ~90k objects and a pause of tens of milliseconds, a dropped frame or two. What start-up built
    (modules, classes, the app) is frozen: never walked again, it lives as long as the process
    anyway. Full passes are also made ten times rarer (young generations are collected as usual,
    so most garbage still goes at once). Called once by the entry point, just before the app
    runs; not by the app, since test runs create many apps in one process.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


class FacilitairApp(App[ev.SessionFinished | None]):
    TITLE = "Facilitair"
    CSS_PATH = Path(__file__).resolve().parent / "styles" / "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="help", tooltip="List every key and what it does"),
        Binding(
            "q",
            "request_quit",
            "Quit",
            id="quit",
            tooltip="Quit (asks first while the session runs, and stops it cleanly)",
        ),
        # Textual's own quit key, made to ask first too (kept out of the footer: q is there).
        Binding("ctrl+q", "request_quit", "Quit", id="quit_ctrl_q", tooltip="Quit, like q", show=False),
        # After quit, so a narrow footer cuts these rather than the way out.
        Binding(
            "c", "cache_inspector", "Cache", id="cache", tooltip="Browse, search and delete cached solutions"
        ),
        Binding("h", "history", "History", id="history", tooltip="Past sessions; replay one"),
        Binding(
            "a",
            "stats",
            "Stats",
            id="stats",
            tooltip="What the sessions cost and how the models did: latency, failures, model pairs, charts",
        ),
        Binding(
            "t",
            "waterfall",
            "Trace",
            id="waterfall",
            tooltip="Where the session's time went: chunks, agents, model requests and waits on a time axis",
        ),
        Binding(
            "ctrl+p",
            "command_palette",
            "Commands",
            id="command_palette",
            tooltip="Find any command by name",
            show=False,  # the footer shows the palette key on its own, at the right
            priority=True,
        ),
    ]

    def __init__(
        self,
        collaboration: CollaborationSource | None = None,
        *,
        entry: EntryOptions | None = None,
        prepare: PrepareSession | None = None,
        keymap: Mapping[str, str] | None = None,
        live_clock: bool = True,
        store: SessionStore | None = None,
        catalog: CacheCatalog | None = None,
        history: SessionHistory | None = None,
        prepare_continuation: PrepareContinuation | None = None,
        now: Clock = utc_now,
        prepared: Prepared | None = None,
        notes: Sequence[str] = (),
        traced: Callable[[EventSink], EventSink] | None = None,
    ) -> None:
        """Run ``collaboration`` at once, or (without one) open the task entry with ``entry``.

        Live sessions are recorded in ``store``, which is also the history (``history`` replaces
        it as the history, for tests); without a store nothing is recorded. ``traced`` wraps each
        live session's recorder so that what it records is traced too (when tracing is on)."""
        super().__init__()
        if collaboration is None and entry is None:
            raise ValueError("FacilitairApp needs a collaboration or the task entry's options")
        self._collaboration_source = collaboration
        self._entry = entry
        self._prepare = prepare
        self._live_clock = live_clock
        self.store = store
        self.history: SessionHistory = history or store or NoSessionHistory()
        self._prepare_continuation = prepare_continuation
        self.catalog: CacheCatalog = catalog or EmptyCacheCatalog()
        self._now = now
        # The session the task entry prepared; the caller closes it (``close_session``) after the run.
        self.prepared: Prepared | None = prepared
        self._notes = list(notes)
        self._traced = traced
        self.keymap: dict[str, str] = dict(keymap or {})
        self.set_keymap(self.keymap)

    def on_mount(self) -> None:
        for note in self._notes:
            self.notify(note, title="Note", severity="warning", timeout=10, markup=False)
        unknown = unknown_binding_ids(self.keymap)
        if unknown:
            self.notify(
                f"[keys] in the config file names no binding: {', '.join(unknown)}. "
                "The README lists the binding ids.",
                title="Unknown key binding",
                severity="warning",
                timeout=10,
                markup=False,
            )
        source = self._collaboration_source
        if source is None:
            assert self._entry is not None
            self._open_task_entry(self._entry)
            return
        collaboration = source if isinstance(source, Collaboration) else source()
        self.push_screen(self._live_screen(collaboration))

    def _live_screen(self, collaboration: Collaboration) -> MainScreen:
        recorder: EventSink | None = None
        if self.store is not None:
            recorder = self.store.recorder(collaboration.spec, collaboration.session_id)
            if self._traced is not None:
                recorder = self._traced(recorder)
        return MainScreen(collaboration, live_clock=self._live_clock, recorder=recorder)

    def _open_task_entry(self, entry: EntryOptions) -> None:
        self.push_screen(TaskEntryScreen(entry, prepare=self._prepare))
        model = missing_model(entry.models_of(entry.default_strategy))
        if model is not None:
            self.push_screen(FirstRunScreen(model, entry.default_strategy))

    def on_task_entry_screen_started(self, message: TaskEntryScreen.Started) -> None:
        self.prepared = message.prepared
        self.switch_screen(self._live_screen(message.prepared.collaboration))

    async def on_main_screen_run_fresh(self, message: MainScreen.RunFresh) -> None:
        """The session was served from the cache and the user wants the agents to run: the same
        request again, without the cache."""
        old = self.prepared
        if old is None:
            return
        from facilitair_tui.session import prepare as default_prepare

        prepare = self._prepare or default_prepare
        try:
            fresh = prepare(old.collaboration.spec.task, **{**old.request, "no_cache": True})
        except ConfigurationError as exc:  # UsageError included
            self.notify(str(exc), title="Cannot run it fresh", severity="error", markup=False)
            return
        old.collaboration.stop()
        await old.aclose()
        self.prepared = fresh
        self.switch_screen(self._live_screen(fresh.collaboration))

    async def on_history_screen_continue(self, message: HistoryScreen.Continue) -> None:
        """Resume or fork a recorded session: a new live session reusing its finished chunks."""
        request = message.request
        main = self.main_screen
        if main is not None and main.session_running and not main.replaying:
            self.notify(
                "A session is running. Stop it (s) first, then continue the recorded one.",
                title="One session at a time",
                severity="warning",
                markup=False,
            )
            return
        try:
            prepared = self._continue(request)
        except ConfigurationError as exc:  # UsageError included
            self.notify(str(exc), title="Cannot continue this session", severity="error", markup=False)
            return
        old = self.prepared
        if old is not None:
            await old.aclose()
        self.prepared = prepared
        while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        screen = self._live_screen(prepared.collaboration)
        if isinstance(self.screen, MainScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def _continue(self, request: ContinueRequest) -> Prepared:
        if self.store is None:
            raise ConfigurationError("sessions are not recorded here, so none can be continued")
        from facilitair_tui.store import StoreError

        try:
            stored: StoredSession = self.store.load(request.session_id)
        except StoreError as exc:
            raise ConfigurationError(str(exc)) from None
        if self._prepare_continuation is None:
            from facilitair_tui.session import prepare_continuation

            self._prepare_continuation = prepare_continuation
        return self._prepare_continuation(
            stored, at_chunk=request.at_chunk, feedback=request.feedback, strategy=request.strategy
        )

    async def close_session(self) -> None:
        if self.prepared is not None:
            await self.prepared.aclose()

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    # ------------------------------------------------------------------ actions

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        nodes = {"screen": self.main_screen or self.screen, "app": self}
        self.push_screen(HelpScreen(binding_rows(self, nodes, self.keymap)))

    def action_cache_inspector(self) -> None:
        if not isinstance(self.screen, CacheInspectorScreen):
            self.push_screen(CacheInspectorScreen(self.catalog, now=self._now))

    def action_stats(self) -> None:
        if isinstance(self.screen, StatsScreen):
            return
        self.push_screen(StatsScreen(functools.partial(read_stats, self.store)))

    def action_waterfall(self) -> None:
        # The session on screen (a replay over the live one is the one asked about).
        main = self.screen if isinstance(self.screen, MainScreen) else self.main_screen
        if main is None or isinstance(self.screen, WaterfallScreen):
            return
        self.push_screen(WaterfallScreen(lambda: main.timeline))

    def action_history(self) -> None:
        if isinstance(self.screen, HistoryScreen):
            return
        main = self.main_screen
        workflows = [main.collaboration.workflow] if main is not None else []
        self.push_screen(
            HistoryScreen(self.history, workflows=workflows, now=self._now, live_clock=self._live_clock)
        )

    def action_request_quit(self) -> None:
        main = self.main_screen
        if main is None or not main.session_running:
            self.exit(main.view.final if main is not None else None)
            return
        self.push_screen(
            ConfirmScreen(
                "Quit while the session is running?",
                "The session is stopped first; its partial output is kept in the closing event.",
                yes="Stop and quit",
                no="Keep going",
            ),
            callback=self._quit_confirmed,
        )

    async def action_quit(self) -> None:
        """Textual's own quit (the palette's "Quit" command) asks first too."""
        self.action_request_quit()

    async def _quit_confirmed(self, confirmed: bool | None) -> None:
        main = self.main_screen
        if not confirmed or main is None:
            return
        final = await main.stop_and_wait()
        self.exit(final)

    # ------------------------------------------------------------------ worker failures

    def on_session_crashed(self, message: SessionCrashed) -> None:
        """The session worker failed: say what happened and what to do; the app stays up."""
        error = message.error
        if isinstance(error, asyncio.CancelledError):  # pragma: no cover - cancelling is not failing
            return
        self.push_screen(
            ErrorScreen("The session stopped unexpectedly", f"{type(error).__name__}: {error}", CRASH_FIX)
        )
