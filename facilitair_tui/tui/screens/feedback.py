"""Feedback for the agents: the text, and when it applies (the next chunk, or now).

"Now" restarts the running chunk with the feedback and each agent's partial text in its prompt;
"next chunk" shapes every prompt from the next chunk on. An empty text is refused here with a
message, and nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, RadioButton, RadioSet, Static, TextArea

from facilitair_tui.core.events import FeedbackTarget

EMPTY_MESSAGE = "Write what the agents should change first; nothing was sent."


@dataclass(frozen=True)
class FeedbackRequest:
    text: str
    applies_to: FeedbackTarget


class FeedbackScreen(ModalScreen[FeedbackRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter,ctrl+s", "submit", "Send", id="feedback.send", tooltip="Send the feedback", priority=True
        ),
        Binding(
            "escape", "cancel", "Cancel", id="feedback.cancel", tooltip="Close without sending", priority=True
        ),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="feedback-dialog", classes="dialog"):
            yield Static("Feedback for the agents", classes="dialog-title")
            yield TextArea(id="feedback-text", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
            yield Static("", id="feedback-error", markup=False)
            with RadioSet(id="feedback-when"):
                yield RadioButton("Next chunk", value=True, id="when-next_chunk")
                yield RadioButton("Now (restart the current chunk)", id="when-now")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send (enter)", id="feedback-send", variant="primary")
                yield Button("Cancel (esc)", id="feedback-cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @property
    def applies_to(self) -> FeedbackTarget:
        return "now" if self.query_one("#when-now", RadioButton).value else "next_chunk"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "feedback-send":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        # Enter is a priority binding (the text area would take it as a new line), so a focused
        # button must still do what it says.
        if isinstance(self.focused, Button) and self.focused.id == "feedback-cancel":
            self.action_cancel()
            return
        text = self.query_one(TextArea).text.strip()
        if not text:
            error = self.query_one("#feedback-error", Static)
            error.update(EMPTY_MESSAGE)
            error.add_class("-visible")
            self.query_one(TextArea).focus()
            return
        self.dismiss(FeedbackRequest(text, self.applies_to))

    def action_cancel(self) -> None:
        self.dismiss(None)
