"""App-wide messages. Widgets' private messages live in the widgets as nested classes."""

from __future__ import annotations

from textual.message import Message

from facilitair_tui.core import events as ev


class SessionEvents(Message):
    """A batch of session events, in order: everything that arrived within one frame."""

    def __init__(self, events: list[ev.Event]) -> None:
        super().__init__()
        self.events = events


class SessionCrashed(Message):
    """The worker that drives the session failed: a bug, not a model failure (those are events)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
