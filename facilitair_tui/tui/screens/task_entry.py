"""The task entry: what to build, the context it must fit, and which strategy runs it.

Start validates everything through ``session.prepare`` (the same checks as the CLI). A problem
(an empty task, a missing API key, a bad context value) is shown inline with its message and
nothing typed is lost. A valid form posts ``TaskEntryScreen.Started`` with the ready session;
the app opens the main screen on it.

Context profiles save the context fields under a name (``profiles.toml``) and fill them back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, TextArea

from facilitair_tui.core.context import KNOWN_FIELDS
from facilitair_tui.core.provider import ConfigurationError
from facilitair_tui.tui.context_profiles import ProfileError, load_profiles, save_profile
from facilitair_tui.tui.entry_options import EntryOptions

if TYPE_CHECKING:
    from facilitair_tui.session import Prepared

PrepareSession = Callable[..., "Prepared"]

FIELD_LABELS = {
    "language": ("Language", "python"),
    "frameworks": ("Frameworks", "fastapi, sqlalchemy"),
    "team_size": ("Team size", "3"),
    "security_level": ("Security level", "standard"),
    "compliance": ("Compliance", "GDPR"),
    "existing_stack": ("Existing stack", "postgres, docker"),
}


def _default_prepare(task: str, **options: object) -> Prepared:
    from facilitair_tui.session import prepare

    return prepare(task, **options)  # type: ignore[arg-type]


class TaskEntryScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "start",
            "Start",
            id="task_entry.start",
            tooltip="Check the form and start the collaboration",
            priority=True,
        ),
        Binding(
            "ctrl+o",
            "save_profile",
            "Save profile",
            id="task_entry.save_profile",
            tooltip="Save the context fields as a profile under the name given",
        ),
    ]
    CSS_PATH = Path(__file__).resolve().parents[1] / "styles" / "entry.tcss"

    class Started(Message):
        """The form was valid: here is the session, ready to run."""

        def __init__(self, prepared: Prepared) -> None:
            super().__init__()
            self.prepared = prepared

    def __init__(self, options: EntryOptions, *, prepare: PrepareSession | None = None) -> None:
        super().__init__()
        self.options = options
        self._prepare = prepare or _default_prepare
        # Context keys from the command line that have no field of their own: passed on as given.
        self._extra_context = {k: v for k, v in options.context.items() if k not in KNOWN_FIELDS}
        self._profiles: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="entry-form"):
            yield Label("What should the agents build?", classes="entry-label")
            yield TextArea(id="task", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
            with Grid(id="context-fields"):
                for name in KNOWN_FIELDS:
                    label, example = FIELD_LABELS[name]
                    with Vertical(classes="context-field"):
                        yield Label(label, classes="entry-label")
                        yield Input(
                            self.options.context.get(name, ""),
                            placeholder=f"e.g. {example}",
                            id=f"context-{name}",
                        )
            with Horizontal(id="entry-controls"):
                yield Select(
                    [(name, name) for name in self.options.strategies],
                    value=self.options.default_strategy,
                    allow_blank=False,
                    id="strategy",
                    tooltip="Which models the roles run on",
                )
                yield Select[str]([], prompt="Load profile", id="profile-select", tooltip="Fill the context")
                yield Input(placeholder="profile name", id="profile-name")
                yield Button("Save", id="save-profile", tooltip="Save the context fields as this profile")
                yield Button("Start", id="start", variant="primary", tooltip="Start (ctrl+s)")
            yield Static("", id="entry-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.task_area.focus()
        self._reload_profiles()

    # ------------------------------------------------------------------ typed access to children

    @property
    def task_area(self) -> TextArea:
        return self.query_one("#task", TextArea)

    @property
    def error_line(self) -> Static:
        return self.query_one("#entry-error", Static)

    @property
    def profile_select(self) -> Select[str]:
        return self.query_one("#profile-select", Select)

    def field(self, name: str) -> Input:
        return self.query_one(f"#context-{name}", Input)

    @property
    def context_fields(self) -> dict[str, str]:
        return {name: self.field(name).value.strip() for name in KNOWN_FIELDS}

    @property
    def strategy(self) -> str:
        value = self.query_one("#strategy", Select).value
        return value if isinstance(value, str) else self.options.default_strategy

    # ------------------------------------------------------------------ starting

    def action_start(self) -> None:
        context = {**self._extra_context, **{k: v for k, v in self.context_fields.items() if v}}
        try:
            prepared = self._prepare(
                self.task_area.text,
                context=[f"{key}={value}" for key, value in context.items()],
                strategy=self.strategy,
                model=self.options.model,
                workflow=self.options.workflow,
                max_tokens=self.options.max_tokens,
                budget_usd=self.options.budget_usd,
                no_cache=self.options.no_cache,
            )
        except ConfigurationError as exc:  # UsageError included: both are the user's to fix
            self.show_error(str(exc))
            return
        self.show_error("")
        self.post_message(self.Started(prepared))

    def show_error(self, message: str) -> None:
        self.error_line.update(message)
        self.error_line.set_class(bool(message), "-visible")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "save-profile":
            self.action_save_profile()

    # ------------------------------------------------------------------ profiles

    def _reload_profiles(self) -> None:
        try:
            self._profiles = load_profiles()
        except ProfileError as exc:
            self._profiles = {}
            self.notify(str(exc), title="Profiles", severity="error", timeout=10, markup=False)
        self.profile_select.set_options((name, name) for name in sorted(self._profiles))

    def action_save_profile(self) -> None:
        name = self.query_one("#profile-name", Input).value.strip()
        if not name:
            self.show_error("Give the profile a name first (the box next to Save); nothing was saved.")
            return
        try:
            path = save_profile(name, self.context_fields)
        except (ProfileError, OSError) as exc:
            self.notify(str(exc), title="Profile not saved", severity="error", timeout=10, markup=False)
            return
        self.show_error("")
        self.notify(f"Saved profile {name!r} in {path}", title="Profiles", markup=False)
        self._reload_profiles()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "profile-select" or not isinstance(event.value, str):
            return
        event.stop()
        self.fill_profile(event.value)

    def fill_profile(self, name: str) -> None:
        fields = self._profiles.get(name, {})
        for field_name in KNOWN_FIELDS:
            self.field(field_name).value = fields.get(field_name, "")
        self.query_one("#profile-name", Input).value = name
