"""Asking before the agents' code runs: the code, its tests, and what the sandbox isolates.

``RunApproval`` is what a session asks (``core.code_run.ApproveRun``); it shows
``RunCodeScreen`` on the app it belongs to. "a" turns auto-run on for the rest of the app's run,
so the next runs go without asking; the config file's ``[sandbox] run = "auto"`` does that from
the start.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from facilitair_tui.core.code_run import RunRequest

PREVIEW_LINES = 14
ISOLATION = (
    "The sandbox runs it in a separate process with time and memory limits, its own temporary "
    "directory, no API keys in its environment and no network where the system allows it. It "
    "can still read your files."
)

Answer = str  # "run", "skip" or "always"


class RunCodeScreen(ModalScreen[Answer]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer('run')", "Run", id="run_code.yes", tooltip="Run this code in the sandbox"),
        Binding(
            "a", "answer('always')", "Always", id="run_code.always", tooltip="Run this and every later run"
        ),
        Binding("n,escape", "answer('skip')", "Skip", id="run_code.no", tooltip="Do not run it"),
    ]

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        request = self.request
        lines = request.code.strip().splitlines()
        preview = "\n".join(lines[:PREVIEW_LINES])
        if len(lines) > PREVIEW_LINES:
            preview += f"\n… {len(lines) - PREVIEW_LINES} more lines"
        tests = f"{len(request.tests)} tests" if request.tests else "no tests (it is only loaded)"
        with Vertical(id="run-code-dialog", classes="dialog"):
            yield Static(
                f"Run the {request.agent}'s code from chunk {request.chunk} ({tests})?",
                classes="dialog-title",
                markup=False,
            )
            yield Static(preview, id="run-code-preview", classes="dialog-detail", markup=False)
            yield Static(ISOLATION, classes="dialog-detail", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run (y)", id="run-code-yes", variant="warning")
                yield Button("Always (a)", id="run-code-always")
                yield Button("Skip (n)", id="run-code-no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#run-code-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        answers = {"run-code-yes": "run", "run-code-always": "always"}
        self.dismiss(answers.get(event.button.id or "", "skip"))

    def action_answer(self, answer: Answer) -> None:
        self.dismiss(answer)


class RunApproval:
    """Asks on ``app`` before each run, unless auto-run is on."""

    def __init__(self, *, auto: bool = False) -> None:
        self.app: App[Any] | None = None
        self.auto = auto

    async def __call__(self, request: RunRequest) -> bool:
        if self.auto:
            return True
        app = self.app
        if app is None:
            return False
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def settle(answer: Answer | None) -> None:
            if not answered.done():
                answered.set_result(answer or "skip")

        app.push_screen(RunCodeScreen(request), settle)
        answer = await answered
        self.auto = answer == "always"
        return answer in ("run", "always")
