"""The trace waterfall: where a session's time went, as bars on one time axis.

Rows are the timeline's bars (``traces.timeline``): the session, its cache lookup, each chunk,
each agent and synthesis, each request to a model (the first, retries, fallbacks,
continuations), the code runs, and the waits, drawn as waits: reading upstream, a provider's queue
or rate limit, a retry's backoff (Retry-After), a budget decision, a pause. The highlighted bar's
model, tokens, cost and status show below the table.

A live session's timeline grows while the screen is open (it redraws twice a second when
something changed); a recorded one is built from the store's events. Nothing here measures: every
time comes from an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from facilitair_tui.summaries import clock, money
from facilitair_tui.traces.timeline import Bar, Timeline
from facilitair_tui.tui.screens.cache_inspector import STYLES

# The span names' column: a third of the screen, between these.
LABEL_WIDTH = 34
MIN_LABEL_WIDTH = 22
DURATION_WIDTH = 8
MIN_AXIS = 20
# What each kind of bar is drawn with, and its colour by status.
GLYPHS = {
    "session": "━",
    "chunk": "━",
    "cache": "▒",
    "agent": "█",
    "synthesis": "█",
    "attempt": "▆",
    "code_run": "▓",
    "wait": "░",
}
STATUS_STYLES = {
    "done": "green",
    "ok": "green",
    "hit": "cyan",
    "miss": "cyan",
    "ran": "green",
    "running": "bold cyan",
    "cut": "yellow",
    "failed": "red",
    "error": "red",
    "timeout": "red",
    "memory": "red",
    "cancelled": "yellow",
    "interrupted": "yellow",
    "stopped": "yellow",
    "waited": "dim yellow",
    "skipped": "dim",
}
KIND_STYLES = {"session": "bold", "chunk": "blue", "synthesis": "magenta"}
LEGEND = "█ agent  █ synthesis  ▆ model request  ░ wait  ▓ code run  ▒ cache  ━ session/chunk"


def bar_cells(start: float, end: float, total: float, width: int) -> tuple[int, int]:
    """Where a bar from ``start`` to ``end`` (of ``total`` seconds) falls on ``width`` cells:
    its first cell and how many it covers (at least one, so nothing that happened is invisible)."""
    if total <= 0 or width <= 0:
        return 0, min(1, width)
    first = min(width - 1, max(0, int(start / total * width)))
    last = min(width, max(first + 1, round(end / total * width)))
    return first, last - first


def axis(total: float, width: int) -> Text:
    """Tick labels at the start, the quarters and the end of the session's time."""
    line = [" "] * width
    for quarter in range(5):
        label = clock(total * quarter / 4) if total >= 60 else f"{total * quarter / 4:.1f}s"
        at = min(width - len(label), int(width * quarter / 4))
        if quarter == 4:
            at = width - len(label)
        if at < 0 or any(c != " " for c in line[max(0, at - 1) : at + len(label)]):
            continue
        line[at : at + len(label)] = label
    return Text("".join(line), style="dim")


def bar_text(bar: Bar, total: float, now: float, width: int) -> Text:
    end = bar.end if bar.end is not None else now
    first, length = bar_cells(bar.start, end, total, width)
    style = KIND_STYLES.get(bar.kind) if bar.kind in ("session", "chunk") else None
    style = style or STATUS_STYLES.get(bar.status, "white")
    if bar.kind == "synthesis" and bar.status == "done":
        style = "magenta"
    text = Text(" " * first)
    text.append(GLYPHS[bar.kind] * length, style=style)
    text.append(" " * (width - first - length))
    return text


def label_text(depth: int, bar: Bar, width: int = LABEL_WIDTH) -> Text:
    indent = "  " * depth
    room = width - len(indent)
    label = bar.label if len(bar.label) <= room else bar.label[: room - 1] + "…"
    style = "dim italic" if bar.kind == "wait" else KIND_STYLES.get(bar.kind, "")
    return Text(indent + label, style=style)


def detail_lines(bar: Bar, now: float) -> list[str]:
    """What the highlighted bar says: when, how long, and its model, tokens, cost and status."""
    a: dict[str, Any] = bar.attrs
    end = bar.end if bar.end is not None else now
    running = " (running)" if bar.end is None else ""
    lines = [f"{bar.label}  ·  {bar.status}{running}"]
    lines.append(f"from {bar.start:.2f}s to {end:.2f}s: {end - bar.start:.2f}s")
    if bar.kind == "wait":
        lines.append(
            {
                "upstream": "waiting for the agents it reads to write enough to start from",
                "queue": "waiting for the provider: a concurrency slot, the requests-per-minute limit, "
                "or a place in the embedded engine's batch",
                "retry": "waiting before the next attempt (backoff; at least the server's Retry-After)",
                "budget": "waiting for your decision at the budget limit",
                "paused": "paused by you",
            }.get(str(bar.wait), "waiting")
        )
    if "model" in a:
        model = str(a["model"])
        answered = a.get("response_model")
        if answered and answered != a.get("request_model"):
            model += f" (answered by {answered})"
        lines.append(f"model {model}")
    if "input_tokens" in a:
        cached = int(a.get("cached_input_tokens") or 0)
        reused = f" ({cached:,} cached)" if cached else ""
        estimated = " (estimated)" if a.get("usage_estimated") else ""
        written = int(a.get("output_tokens") or 0)
        lines.append(
            f"tokens {int(a['input_tokens']):,} in{reused} / {written:,} out{estimated}"
            f"  ·  {money(a.get('cost_usd'))}"
        )
    facts = []
    if a.get("attempt_kind"):
        facts.append(f"attempt {a.get('attempt')} ({a['attempt_kind']})")
    if a.get("first_token_ms") is not None:
        facts.append(f"first token after {float(a['first_token_ms']):,.0f} ms")
    if a.get("stop_reason"):
        facts.append(f"stopped: {a['stop_reason']}")
    if a.get("reads"):
        facts.append(f"reads {', '.join(a['reads'])}")
    if "passed" in a and bar.kind == "code_run":
        facts.append(f"{a['passed']} passed, {a['failed']} failed")
    if bar.kind == "chunk" and a.get("confidence") is not None:
        facts.append(
            f"{a.get('agreed', 0)} agreed, {a.get('debated', 0)} debated, confidence {a['confidence']:.0%}"
        )
    if facts:
        lines.append("  ·  ".join(facts))
    if a.get("error"):
        lines.append(f"failed ({a['error']}): {a.get('message', '')}")
    return lines


class WaterfallScreen(Screen[None]):
    CSS_PATH = STYLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="waterfall.close", tooltip="Back to where you were"),
    ]

    def __init__(self, timeline: Timeline | Callable[[], Timeline], *, title: str = "") -> None:
        """``timeline``: a recorded session's, or (a live one) the screen's own, which grows."""
        super().__init__()
        self._timeline = timeline
        self._title = title
        self._drawn: tuple[int, float, int] | None = None
        self._bars: list[Bar] = []

    @property
    def timeline(self) -> Timeline:
        return self._timeline() if callable(self._timeline) else self._timeline

    def compose(self) -> ComposeResult:
        yield Static("", id="waterfall-title", classes="library-title", markup=False)
        yield DataTable(id="waterfall-table", cursor_type="row", zebra_stripes=False)
        yield Static(LEGEND, id="waterfall-legend", markup=False)
        yield Static("", id="waterfall-detail", markup=False)
        yield Footer()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#waterfall-table", DataTable)

    def on_mount(self) -> None:
        self.redraw()
        self.table.focus()
        self.set_interval(0.5, self._redraw_if_changed)

    def on_resize(self, event: events.Resize) -> None:
        self.redraw()

    def _redraw_if_changed(self) -> None:
        timeline = self.timeline
        if self._drawn != (len(timeline.bars), timeline.now, self.size.width):
            self.redraw()

    def _label_width(self) -> int:
        return max(MIN_LABEL_WIDTH, min(LABEL_WIDTH, self.size.width // 3))

    def _axis_width(self) -> int:
        return max(MIN_AXIS, self.size.width - self._label_width() - DURATION_WIDTH - 8)

    def redraw(self) -> None:
        timeline = self.timeline
        table, width = self.table, self._axis_width()
        row = table.cursor_row
        now = timeline.now
        total = max(timeline.end(), now, 1e-3)
        table.clear(columns=True)
        labels = self._label_width()
        table.add_column("span", width=labels)
        table.add_column(axis(total, width), width=width)
        table.add_column(Text("took", justify="right"), width=DURATION_WIDTH)
        self._bars = []
        for depth, bar in timeline.rows():
            took = Text(f"{bar.duration(now):.2f}s", justify="right")
            table.add_row(label_text(depth, bar, labels), bar_text(bar, total, now, width), took)
            self._bars.append(bar)
        if self._bars:
            table.move_cursor(row=min(row, len(self._bars) - 1))
        self._drawn = (len(timeline.bars), now, self.size.width)
        self._show_title(total)
        self._show_detail()

    def _show_title(self, total: float) -> None:
        session = self.timeline.bars.get("session")
        attrs = session.attrs if session is not None else {}
        parts = [f"Trace · {self._title or (session.label if session else 'no session yet')}"]
        parts.append(f"{total:.1f}s")
        if "output_tokens" in attrs:
            parts.append(f"{int(attrs.get('input_tokens', 0)):,} in / {int(attrs['output_tokens']):,} out")
            parts.append(money(attrs.get("cost_usd")))
        self.query_one("#waterfall-title", Static).update("  ·  ".join(parts))

    def _show_detail(self) -> None:
        detail = self.query_one("#waterfall-detail", Static)
        row = self.table.cursor_row
        if not self._bars or not 0 <= row < len(self._bars):
            detail.update("Nothing recorded yet: the bars appear as the session runs.")
            return
        detail.update("\n".join(detail_lines(self._bars[row], self.timeline.now)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def action_close(self) -> None:
        self.dismiss(None)
