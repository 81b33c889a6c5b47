"""The line under the workspace: cost, tokens, elapsed time, session state and verbosity."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from facilitair_tui.summaries import clock
from facilitair_tui.tui.session_view import SessionView, Verbosity

_STATE_STYLES = {
    "running": "bold $accent",
    "paused": "bold $warning",
    "budget": "bold $warning",
    "done": "bold $success",
    "stopped": "bold $warning",
    "failed": "bold $error",
}


def status_line(view: SessionView, now: float, verbosity: Verbosity) -> Content:
    # A total is only known when every call's cost is: one unknown price makes it unknown.
    cost = _money(view.cost_usd)
    # Once a call of the current chunk has finished (before, there is nothing to say).
    chunk_cost = _money(view.chunk_costs[view.chunk]) if view.chunk in view.chunk_costs else None
    elapsed = view.final.duration_s if view.final is not None else now
    # State first: on a narrow terminal the end of the line is what gets cut.
    state = view.shown_state
    label = "waiting for your budget decision" if state == "budget" else state
    return Content.assemble(
        (label, _STATE_STYLES.get(state, "dim")),
        ("  verbosity ", "dim"),
        verbosity,
        "  ",
        clock(elapsed),
        "  ",
        f"{view.input_tokens:,} in / {view.live_output_tokens():,} out",
        (" tokens", "dim"),
        ("  cost ", "dim"),
        cost,
        *((("  this chunk ", "dim"), chunk_cost) if chunk_cost is not None else ()),
    )


def _money(cost: float | None) -> str:
    return "unknown" if cost is None else f"${cost:.4f}"


class StatusBar(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._cache = ""

    def show(self, view: SessionView, now: float, verbosity: Verbosity) -> None:
        line = status_line(view, now, verbosity)
        if line.markup != self._cache:  # Content's == compares the text only
            self._cache = line.markup
            self.update(line, layout=False)  # one line high: its size never changes
