"""The stats screen, driven by Pilot: opened with a, its tables, its charts, its periods."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from facilitair_tui.stats import Stats
from facilitair_tui.store import StoreError
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.entry_options import EntryOptions
from facilitair_tui.tui.screens.stats import EMPTY, StatsScreen
from tests.support.stats_store import HAIKU, LOCAL, MINI, fill_store

from .library_support import open_store, recorded_live_app
from .support import finished_live, wait_until


def app_with_store(tmp_path: Path) -> FacilitairApp:
    app = recorded_live_app(tmp_path)
    assert app.store is not None
    fill_store(app.store, time.time())
    return app


def title_of(screen: StatsScreen) -> str:
    return str(screen.query_one("#stats-title", Static).render())


async def read(pilot: Pilot[Any], screen: StatsScreen, words: str) -> None:
    """Until the screen shows the figures its worker thread read (its title says so)."""
    await wait_until(pilot, lambda: words in title_of(screen), f"the stats of {words!r}")


def column(table: DataTable[str], index: int) -> list[str]:
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def test_a_opens_the_stats_with_tables_and_charts_and_the_periods_change_them(tmp_path: Path) -> None:
    app = app_with_store(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        live = await finished_live(pilot, app)
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        # The last 7 days: the two API sessions and the live one just run (scripted models).
        await read(pilot, screen, "the last 7 days · 3 sessions")
        models = screen.query_one("#stats-models", DataTable)
        assert {MINI, HAIKU} <= set(column(models, 0)) and LOCAL not in column(models, 0)
        mini = column(models, 0).index(MINI)
        assert models.get_row_at(mini)[3] == "rate_limit 2, server 1"
        assert models.get_row_at(mini)[5] == "3.0 s / 5.0 s / 5.0 s"
        pairs = screen.query_one("#stats-pairs", DataTable)
        assert (MINI, HAIKU, "2", "3", "2", "75%") in [
            tuple(pairs.get_row_at(i)[:6]) for i in range(pairs.row_count)
        ]
        assert {plot.id for plot in screen.query(PlotextPlot)} == {
            "chart-cost", "chart-sessions", "chart-latency", "chart-roles",
        }  # fmt: skip
        drawn = app.export_screenshot()
        for title in ("Cost per day", "Sessions per day", "Latency p95 per model", "Cost per role"):
            assert title.replace(" ", "&#160;") in drawn or title in drawn, title

        await pilot.press("0")  # everything: the 30-day-old session too
        await read(pilot, screen, "every recorded session · 4 sessions")
        assert LOCAL in column(models, 0)
        await pilot.press("escape")
        assert app.screen is live


async def test_an_empty_store_says_how_it_fills(tmp_path: Path) -> None:
    app = FacilitairApp(
        entry=EntryOptions(strategies=("local",), default_strategy="local"),
        store=open_store(tmp_path / "sessions"),
        live_clock=False,
    )
    async with app.run_test(size=(100, 30)) as pilot:
        app.action_stats()  # from the task entry (where a letter is typed into the form)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        await read(pilot, screen, "0 sessions")
        assert screen.stats is not None and screen.stats.sessions == 0
        assert str(screen.query_one("#stats-empty", Static).render()) == EMPTY
        assert screen.has_class("-empty")
        await pilot.press("escape")
        assert not isinstance(app.screen, StatsScreen)


async def test_a_store_that_cannot_be_read_is_said_on_the_screen_and_escape_still_closes_it() -> None:
    def broken(since: float | None) -> Stats:
        raise StoreError("the session database x.db is damaged (file is not a database)")

    app = App[None]()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = StatsScreen(broken)
        await app.push_screen(screen)
        await read(pilot, screen, "cannot be read")
        assert screen.problem is not None and "is damaged" in screen.problem
        assert "is damaged" in str(screen.query_one("#stats-empty", Static).render())
        await pilot.press("escape")
        assert app.screen is not screen
