"""The stats screen: what the recorded sessions cost and how the models did (``facilitair stats``
in the app), with the trends drawn as terminal charts (textual-plotext).

It reads the session store through the function it is given (``read``), in a thread: a store of
many sessions takes a moment to sum up, and the app keeps drawing meanwhile. The figures and what
they mean are ``facilitair_tui.stats``'s. ``1``, ``7``, ``3`` and ``0`` pick the period: a day,
a week, 30 days or everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from facilitair_tui.stats import Stats, failure_words, ms, share
from facilitair_tui.store import StoreError
from facilitair_tui.summaries import money
from facilitair_tui.tui.screens.cache_inspector import STYLES

ReadStats = Callable[[float | None], Stats]
# Key -> (days, words); None days: every session.
PERIODS: dict[str, tuple[int | None, str]] = {
    "1": (1, "the last 24 hours"),
    "7": (7, "the last 7 days"),
    "3": (30, "the last 30 days"),
    "0": (None, "every recorded session"),
}
EMPTY = "No sessions in this period. Every session you run is recorded; 0 shows them all."


class StatsScreen(Screen[None]):
    CSS_PATH = STYLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "period('1')", "24 h", id="stats.day", tooltip="Sessions of the last 24 hours"),
        Binding("7", "period('7')", "7 days", id="stats.week", tooltip="Sessions of the last 7 days"),
        Binding("3", "period('3')", "30 days", id="stats.month", tooltip="Sessions of the last 30 days"),
        Binding("0", "period('0')", "All", id="stats.all", tooltip="Every recorded session"),
        Binding("escape", "close", "Back", id="stats.close", tooltip="Back to where you were"),
    ]

    def __init__(
        self, read: ReadStats, *, period: str = "7", now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__()
        self._read = read
        self._now = now or (lambda: datetime.now().astimezone())
        self.period = period
        self.stats: Stats | None = None  # the figures on screen; None until the first read ends
        self.problem: str | None = None  # why the latest read failed

    def compose(self) -> ComposeResult:
        yield Static("", id="stats-title", classes="library-title", markup=False)
        with VerticalScroll(id="stats-body"):
            yield Static("", id="stats-empty", markup=False)
            yield Static("Models", classes="stats-heading")
            yield DataTable(id="stats-models", cursor_type="row", zebra_stripes=True)
            yield Static("Model pairs (coder, reviewer)", classes="stats-heading")
            yield DataTable(id="stats-pairs", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="stats-charts"):
                yield PlotextPlot(id="chart-cost")
                yield PlotextPlot(id="chart-sessions")
            with Horizontal(classes="stats-charts"):
                yield PlotextPlot(id="chart-latency")
                yield PlotextPlot(id="chart-roles")
        yield Footer()

    def on_mount(self) -> None:
        models = self.query_one("#stats-models", DataTable)
        models.add_columns(
            "model", "calls", "requests", "failures", "first token p50 / p95", "latency p50 / p95 / p99",
            "tokens/s", "cost",
        )  # fmt: skip
        pairs = self.query_one("#stats-pairs", DataTable)
        pairs.add_columns(
            "coder", "reviewer", "sessions", "debated", "review findings", "tests passed", "cost/session"
        )
        self.refresh_stats()
        models.focus()

    def action_period(self, key: str) -> None:
        self.period = key
        self.refresh_stats()

    def action_close(self) -> None:
        self.dismiss(None)

    def refresh_stats(self) -> None:
        """Read the period's figures in a thread; the tables and charts change when they come."""
        days, words = PERIODS[self.period]
        since = None if days is None else (self._now() - timedelta(days=days)).timestamp()
        self.query_one("#stats-title", Static).update(f"Stats · {words} · reading the sessions…")
        self._read_stats(since, words)

    # Exclusive: a period picked while the last one is still being read replaces it, and the
    # stale read's figures are dropped (a thread cannot be stopped, only ignored).
    @work(thread=True, exclusive=True, group="stats-read", exit_on_error=False)
    def _read_stats(self, since: float | None, words: str) -> None:
        try:
            stats: Stats | str = self._read(since)
        except StoreError as exc:  # damaged or locked: said on the screen, the app goes on
            stats = str(exc)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, stats, words)

    def _show(self, stats: Stats | str, words: str) -> None:
        if isinstance(stats, str):
            self.problem = stats
            self.query_one("#stats-title", Static).update(f"Stats · {words} · the sessions cannot be read")
            self.query_one("#stats-empty", Static).update(f"Cannot read the session store: {stats}")
            self.add_class("-empty")
            return
        self.problem = None
        self.stats = stats
        count = f"{stats.sessions} session{'' if stats.sessions == 1 else 's'}"
        title = f"Stats · {words} · {count} · {money(stats.cost_usd)}"
        self.query_one("#stats-title", Static).update(title)
        self.query_one("#stats-empty", Static).update("" if stats.sessions else EMPTY)
        self.set_class(not stats.sessions, "-empty")
        self._fill_tables(stats)
        self._draw_charts(stats)

    def _fill_tables(self, stats: Stats) -> None:
        models = self.query_one("#stats-models", DataTable)
        models.clear()
        for m in stats.models:
            models.add_row(
                m.model,
                str(m.calls),
                str(m.requests) if m.requests else "—",
                failure_words(m.failures),
                f"{ms(m.first_token_ms.get('p50'))} / {ms(m.first_token_ms.get('p95'))}",
                " / ".join(ms(m.latency_ms.get(p)) for p in ("p50", "p95", "p99")),
                "—" if m.tokens_per_s is None else f"{m.tokens_per_s:,.1f}",
                money(m.cost_usd),
            )
        pairs = self.query_one("#stats-pairs", DataTable)
        pairs.clear()
        for p in stats.pairs:
            pairs.add_row(
                p.coder,
                p.reviewer,
                str(p.sessions),
                str(p.debated_points),
                str(p.review_findings),
                share(p.test_pass_rate),
                money(p.cost_per_session_usd),
            )

    def _draw_charts(self, stats: Stats) -> None:
        days = [d["day"][5:] for d in stats.days]  # MM-DD
        timed = [m for m in stats.models if m.latency_ms.get("p95") is not None]
        charts = {
            "#chart-cost": ("Cost per day ($)", days, [d["cost_usd"] or 0.0 for d in stats.days]),
            "#chart-sessions": ("Sessions per day", days, [float(d["sessions"]) for d in stats.days]),
            "#chart-latency": (
                "Latency p95 per model (s)",
                [_short(m.model) for m in timed],
                [(m.latency_ms["p95"] or 0.0) / 1000 for m in timed],
            ),
            "#chart-roles": (
                "Cost per role ($)",
                [r["role"] for r in stats.roles],
                [r["cost_usd"] or 0.0 for r in stats.roles],
            ),
        }
        for selector, (title, labels, values) in charts.items():
            _bars(self.query_one(selector, PlotextPlot), title, labels, values)


def _short(model: str) -> str:
    """A model's name without its provider, cut to fit under a bar."""
    name = model.partition(":")[2] or model
    return name if len(name) <= 16 else name[:15] + "…"


def _bars(widget: PlotextPlot, title: str, labels: list[str], values: list[float]) -> None:
    plt = widget.plt
    plt.clear_figure()
    plt.title(title)
    if labels:
        plt.bar(labels, values)
    widget.refresh()
