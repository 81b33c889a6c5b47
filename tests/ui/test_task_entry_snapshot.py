"""How the task entry looks at 80x24 (pytest-textual-snapshot), with an empty FACILITAIR_HOME.

Update the baseline with ``pytest tests/ui/test_task_entry_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.entry_options import EntryOptions

SnapCompare = Callable[..., bool]


def test_task_entry_80x24(snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    entry = EntryOptions(
        strategies=("local", "balanced", "quality"),
        default_strategy="local",
        context={"language": "python", "frameworks": "fastapi"},
    )
    app = FacilitairApp(entry=entry, live_clock=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press(*"Build", "space", *"a", "space", *"todo", "space", *"API")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
