"""The Textual front end: one collaboration, watched and steered live.

``FacilitairApp`` gets a ready ``Collaboration`` (or a factory for one) and never calls a
provider: it consumes the collaboration's events and uses its plain controls. Every key is a
``Binding`` with an id, so a keymap (``{"pause": "space"}``) can move it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from .core import events as ev
from .core.orchestrator import Collaboration
from .messages import SessionCrashed
from .screens.confirm import ConfirmScreen
from .screens.error import ErrorScreen
from .screens.help import HelpScreen, binding_rows
from .screens.main import MainScreen

CollaborationSource = Collaboration | Callable[[], Collaboration]

CRASH_FIX = (
    "The agents were stopped; what they wrote is still in the panes. Quit with q and run the task "
    "again. If it happens again, report it with the message above."
)


class FacilitairApp(App[ev.SessionFinished | None]):
    TITLE = "Facilitair"
    CSS_PATH = Path(__file__).resolve().parent.parent / "styles" / "app.tcss"
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
        collaboration: CollaborationSource,
        *,
        keymap: Mapping[str, str] | None = None,
        live_clock: bool = True,
    ) -> None:
        super().__init__()
        self._collaboration_source = collaboration
        self._live_clock = live_clock
        self.keymap: dict[str, str] = dict(keymap or {})
        self.set_keymap(self.keymap)

    def on_mount(self) -> None:
        source = self._collaboration_source
        collaboration = source if isinstance(source, Collaboration) else source()
        self.push_screen(MainScreen(collaboration, live_clock=self._live_clock))

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
