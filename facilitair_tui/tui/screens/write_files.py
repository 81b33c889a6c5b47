"""Write the session's files: where to (a directory, ``./<task>`` by default), what goes there,
and, when the directory already has files, whether the deliverable's own may be replaced.

Writing is the shared writer's (``deliverable_files``): nothing outside the directory, nothing
half-written, nothing of the user's removed. A problem is shown here, with what to do, and the
dialog stays open; it closes with what was written where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from facilitair_tui.core.deliverable import Deliverable, build_deliverable
from facilitair_tui.core.deliverable_layout import describe
from facilitair_tui.core.session_result import SessionResult
from facilitair_tui.deliverable_files import (
    DeliverableWriteError,
    DirectoryNotEmpty,
    has_entries,
    write_deliverable,
)

NOT_EMPTY = "{directory} already has files: tick the box to replace the session's own files there "
NOT_EMPTY += "(nothing else is touched), or choose another directory."
NO_DIRECTORY = "Give the directory to write the files to."


WRITE_WHEN_ENDED = (
    "The files are written once the session has ended: wait for it, or stop it (s) to write what "
    "it has so far."
)


@dataclass(frozen=True)
class FilesWritten:
    directory: Path
    paths: list[Path]

    @property
    def title(self) -> str:
        count = f"{len(self.paths)} file" + ("" if len(self.paths) == 1 else "s")
        return f"Wrote {count} to {self.directory}"

    @property
    def names(self) -> str:
        return ", ".join(str(path.relative_to(self.directory)) for path in self.paths)


def default_directory(task: str, cwd: Path) -> Path:
    """``cwd``/a name made of the task's first words: "Build a URL shortener" -> build-a-url-shortener."""
    words = re.findall(r"[a-z0-9]+", task.lower())[:6]
    return cwd / ("-".join(words)[:48].strip("-") or "facilitair-output")


class WriteFilesScreen(ModalScreen[FilesWritten | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="write_files.cancel", tooltip="Close without writing"),
    ]

    def __init__(self, deliverable: Deliverable, directory: Path) -> None:
        super().__init__()
        self.deliverable = deliverable
        self.directory = directory

    @classmethod
    def for_session(cls, result: SessionResult, cwd: Path) -> WriteFilesScreen:
        """The dialog for ``result``'s deliverable, offering a directory named after its task."""
        return cls(build_deliverable(result), default_directory(result.task, cwd))

    def compose(self) -> ComposeResult:
        deliverable = self.deliverable
        with Vertical(id="write-files-dialog", classes="dialog"):
            yield Static("Write the session's files", classes="dialog-title")
            if not deliverable.complete:
                yield Static(
                    "The session did not finish: what it has is written, and its README says so.",
                    classes="dialog-detail",
                )
            yield Label("Directory (created if it does not exist)")
            yield Input(str(self.directory), id="write-dir")
            with VerticalScroll(id="write-files-list"):
                for file in deliverable.code_files:
                    yield Static(f"{file.path}  {describe(file)}", classes="write-file", markup=False)
                yield Static("README.md  what was built, how to run the tests, the open points", markup=False)
            yield Checkbox("Replace the session's files in this directory", id="write-force")
            yield Static("", id="write-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Write (enter)", id="write-run", variant="primary")
                yield Button("Cancel (esc)", id="write-cancel")

    def on_mount(self) -> None:
        self._show_overwrite()
        self.query_one("#write-dir", Input).focus()

    @property
    def target(self) -> Path | None:
        value = self.query_one("#write-dir", Input).value.strip()
        return Path(value).expanduser() if value else None

    def _show_overwrite(self) -> None:
        target = self.target
        try:
            in_use = target is not None and has_entries(target)
        except OSError:  # unreadable: writing will say why
            in_use = False
        self.query_one("#write-force", Checkbox).set_class(in_use, "-visible")

    def _error(self, message: str) -> None:
        error = self.query_one("#write-error", Static)
        error.update(message)
        error.set_class(bool(message), "-visible")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._show_overwrite()
        self._error("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "write-run":
            self.action_write()
        else:
            self.action_cancel()

    def action_write(self) -> None:
        target = self.target
        if target is None:
            self._error(NO_DIRECTORY)
            return
        force = self.query_one("#write-force", Checkbox).value
        try:
            written = write_deliverable(self.deliverable.files, target, force=force)
        except DirectoryNotEmpty:
            self._show_overwrite()
            self._error(NOT_EMPTY.format(directory=target))
            return
        except DeliverableWriteError as exc:
            self._error(f"{exc}.")
            return
        self.dismiss(FilesWritten(target, written))

    def action_cancel(self) -> None:
        self.dismiss(None)
