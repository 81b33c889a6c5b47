"""Fork a recorded session: after which chunk to branch, and what to change.

The chunks up to the one picked are reused as recorded (no model is called for them); the rest
runs with the new feedback (it replaces the recorded feedback for those chunks) and, if one is
named, another strategy. A chunk number outside the finished ones is refused here, with a message.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from facilitair_tui.library import ContinueRequest, SessionSummary


class ForkScreen(ModalScreen[ContinueRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "cancel", "Cancel", id="fork.cancel", tooltip="Close without forking", priority=True
        ),
    ]

    def __init__(self, session: SessionSummary) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        done = self.session.chunks_done
        with Vertical(id="fork-dialog", classes="dialog"):
            yield Static(f"Fork: {self.session.task}", classes="dialog-title", markup=False)
            yield Label(f"Reuse chunks 1 to (0–{done}); the chunks after it run again")
            yield Input(str(done), id="fork-chunk", type="integer")
            yield Label("Feedback for the first chunk that runs (empty: keep the recorded feedback)")
            yield Input(id="fork-feedback", placeholder="e.g. use PostgreSQL, not SQLite")
            yield Label("Strategy for the chunks that run (empty: the same models)")
            yield Input(id="fork-strategy", placeholder="e.g. fast, balanced, local")
            yield Static("", id="fork-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Fork (enter)", id="fork-run", variant="primary")
                yield Button("Cancel (esc)", id="fork-cancel")

    def on_mount(self) -> None:
        self.query_one("#fork-feedback", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "fork-run":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        done = self.session.chunks_done
        text = self.query_one("#fork-chunk", Input).value.strip()
        if not text.isdigit() or not 0 <= int(text) <= done:
            error = self.query_one("#fork-error", Static)
            error.update(f"The chunk must be a number from 0 to {done} (the finished chunks).")
            error.add_class("-visible")
            self.query_one("#fork-chunk", Input).focus()
            return
        feedback = self.query_one("#fork-feedback", Input).value.strip()
        strategy = self.query_one("#fork-strategy", Input).value.strip()
        self.dismiss(
            ContinueRequest(
                self.session.id,
                at_chunk=int(text),
                feedback=[feedback] if feedback else None,
                strategy=strategy or None,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
