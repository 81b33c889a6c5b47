"""The cache inspector (c): every cached solution, searchable, previewed, deletable.

It reads a ``CacheCatalog`` and nothing else, so the semantic cache plugs in without a change
here. Typing in the search box filters the table at once (task and context text); the preview
shows the highlighted solution's full output; Enter or o opens it read-only; d deletes it after
asking.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Markdown, Static

from facilitair_tui.library import CacheCatalog, CachedSolution, format_age
from facilitair_tui.summaries import clock, money
from facilitair_tui.tui.screens.confirm import ConfirmScreen
from facilitair_tui.tui.widgets.final_output import FinalOutput

STYLES = Path(__file__).resolve().parents[1] / "styles" / "library.tcss"

EMPTY_CACHE = (
    "The cache is empty. A solution is stored here when a session finishes, and a later task "
    "like it is answered from the cache."
)

Clock = Callable[[], datetime]
# Fixed widths, so the age, hits and savings stay in view next to the preview (long text is cut).
COLUMNS = (("Task", 24), ("Context", 16), ("Age", 10), ("Hits", 4), ("Saved", 7))


def utc_now() -> datetime:
    return datetime.now(UTC)


def context_summary(context: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in context.items()) or "—"


def saved(entry: CachedSolution) -> str:
    return "—" if entry.hits == 0 else money(entry.saved_usd)


class SolutionScreen(Screen[None]):
    """One cached solution's final output, read-only, in the same tabs as a finished session."""

    CSS_PATH = STYLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="solution.close", tooltip="Back to the cache inspector"),
    ]

    def __init__(self, solution: CachedSolution) -> None:
        super().__init__()
        self.solution = solution

    def compose(self) -> ComposeResult:
        yield Static(self.solution.task, id="solution-task", markup=False)
        yield FinalOutput(id="solution-output")
        yield Footer()

    async def on_mount(self) -> None:
        entry = self.solution
        line = (
            f"Cached solution: {context_summary(entry.context)}; the original run took "
            f"{clock(entry.duration_s)} and cost {money(entry.cost_usd)}; {entry.hits} hits"
        )
        await self.query_one(FinalOutput).show_document(entry.output, Content(line))

    def action_close(self) -> None:
        self.dismiss(None)


class CacheInspectorScreen(Screen[None]):
    CSS_PATH = STYLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="cache.search", tooltip="Type to filter by task and context"),
        Binding("o", "open", "Open", id="cache.open", tooltip="Show the highlighted solution's output"),
        Binding("d,delete", "delete", "Delete", id="cache.delete", tooltip="Remove the highlighted solution"),
        Binding("escape", "close", "Back", id="cache.close", tooltip="Back to the session"),
    ]

    def __init__(self, catalog: CacheCatalog, *, now: Clock = utc_now) -> None:
        super().__init__()
        self.catalog = catalog
        self._now = now
        self.shown: list[CachedSolution] = []

    def compose(self) -> ComposeResult:
        yield Static("Cached solutions", classes="library-title")
        yield Input(placeholder="Search tasks and context (/)", id="cache-search")
        with Horizontal(id="cache-body"):
            with Vertical(id="cache-list"):
                yield DataTable(id="cache-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="cache-empty", markup=False)
            with VerticalScroll(id="cache-preview"):
                yield Markdown(id="cache-preview-text")
        yield Footer()

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#cache-table", DataTable)

    @property
    def search(self) -> Input:
        return self.query_one("#cache-search", Input)

    @property
    def preview(self) -> Markdown:
        return self.query_one("#cache-preview-text", Markdown)

    @property
    def empty_note(self) -> Static:
        return self.query_one("#cache-empty", Static)

    def on_mount(self) -> None:
        table = self.table
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        self.refresh_rows()
        self.table.focus()

    def refresh_rows(self) -> None:
        query = self.search.value
        self.shown = self.catalog.list(query)
        table, now = self.table, self._now()
        table.clear()
        for entry in self.shown:
            table.add_row(
                entry.task,
                context_summary(entry.context),
                format_age(entry.created_at, now),
                str(entry.hits),
                saved(entry),
                key=entry.id,
            )
        if self.shown:
            note = ""
        elif query.strip():
            note = f"No cached solution matches “{query.strip()}”."
        else:
            note = EMPTY_CACHE
        self.empty_note.update(note)
        self.set_class(not self.shown, "-empty")
        self.refresh_bindings()
        self._show_preview(self.highlighted)

    @property
    def highlighted(self) -> CachedSolution | None:
        row = self.table.cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def _show_preview(self, entry: CachedSolution | None) -> None:
        if entry is None:
            self.preview.update("")
            return
        origin = ""
        if entry.imported:
            made = format_age(entry.created_at, self._now())
            origin = f"_Imported from a file (made {made}), not run on this machine._\n\n"
        self.preview.update(origin + entry.output)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "cache-search":
            self.refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "cache-search":
            self.table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_preview(self.highlighted)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open", "delete"):
            return bool(self.shown)
        return True

    def action_search(self) -> None:
        self.search.focus()

    def action_open(self) -> None:
        entry = self.highlighted
        if entry is not None:
            self.app.push_screen(SolutionScreen(entry))

    def action_delete(self) -> None:
        entry = self.highlighted
        if entry is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            if self.catalog.delete(entry.id):
                self.notify(entry.task, title="Removed from the cache", markup=False)
            else:
                self.notify("It was already gone.", title="Not in the cache", severity="warning")
            self.refresh_rows()

        self.app.push_screen(
            ConfirmScreen(
                "Delete this cached solution?",
                f"{entry.task}\nA later task like it will run the agents again.",
                yes="Delete",
                no="Keep",
            ),
            callback=confirmed,
        )

    def action_close(self) -> None:
        self.dismiss(None)
