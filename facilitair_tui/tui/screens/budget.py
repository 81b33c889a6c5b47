"""The budget guard's question: the next chunk could pass a budget; go on, switch, or stop.

The session waits (no model call starts) until one of the three is chosen; there is no way out
of this dialog without an answer, so the session never goes past a budget unasked.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from facilitair_tui.core import events as ev
from facilitair_tui.core.budget import BudgetChoice
from facilitair_tui.summaries import budget_question


class BudgetScreen(ModalScreen[BudgetChoice]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "choose('continue')", "Continue", id="budget.continue", tooltip="Go on past the budget"),
        Binding(
            "x", "choose('cheaper')", "Cheaper", id="budget.cheaper", tooltip="Switch to the cheaper strategy"
        ),
        Binding(
            "s", "choose('stop')", "Stop", id="budget.stop", tooltip="Stop the session, keeping its output"
        ),
    ]

    def __init__(self, alert: ev.BudgetExceeded) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        with Vertical(id="budget-dialog", classes="dialog"):
            yield Static("The next chunk could pass the budget", classes="dialog-title", markup=False)
            yield Static(
                budget_question(alert).removeprefix("💰 ") + ".", classes="dialog-detail", markup=False
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Continue (c)", id="budget-continue", variant="warning")
                if alert.cheaper is not None:
                    yield Button(
                        f"Switch to {alert.cheaper.upper()} (x)", id="budget-cheaper", variant="primary"
                    )
                yield Button("Stop (s)", id="budget-stop", variant="error")

    def on_mount(self) -> None:
        # After the first refresh: pushed while the main screen applies events, the buttons are
        # mounted only then.
        self.call_after_refresh(self._focus_default)

    def _focus_default(self) -> None:
        default = "#budget-cheaper" if self.alert.cheaper is not None else "#budget-stop"
        self.query_one(default, Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        assert event.button.id is not None
        self.action_choose(event.button.id.removeprefix("budget-"))

    def action_choose(self, choice: str) -> None:
        if choice == "cheaper" and self.alert.cheaper is None:
            self.notify("No cheaper strategy can run here.", severity="warning", markup=False)
            return
        if choice in ("continue", "cheaper", "stop"):
            self.dismiss(choice)  # type: ignore[arg-type]
