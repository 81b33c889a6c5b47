"""How the cache inspector and the history look (pytest-textual-snapshot), at 100x30.

Fixed datetimes and an injected ``now`` keep every age the same on every run. Update the
baselines with ``pytest tests/ui/test_library_snapshots.py --snapshot-update`` and look at the
report before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from facilitair_tui.library import MemoryCacheCatalog
from facilitair_tui.tui.screens.cache_inspector import CacheInspectorScreen
from facilitair_tui.tui.screens.history import HistoryScreen

from .library_support import (
    NOW,
    ScreenApp,
    fixed_now,
    open_store,
    recorded_session,
    seeded_solutions,
    write_recording,
)

SnapCompare = Callable[..., bool]


async def _settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def test_cache_inspector_with_three_solutions(snap_compare: SnapCompare) -> None:
    catalog = MemoryCacheCatalog(seeded_solutions())
    app = ScreenApp(lambda: CacheInspectorScreen(catalog, now=fixed_now))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)


def test_history_with_two_sessions(snap_compare: SnapCompare, tmp_path: Path) -> None:
    history = open_store(tmp_path)
    write_recording(
        history,
        recorded_session("done-one", "Build a REST API for a todo list", finished=True, cost=0.0123),
        NOW - timedelta(days=1),
    )
    write_recording(
        history,
        recorded_session("cut-short", "Write a URL shortener", finished=False, cost=0.004),
        NOW - timedelta(minutes=20),
    )
    app = ScreenApp(lambda: HistoryScreen(history, now=fixed_now, live_clock=False))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)
