"""What today's sessions cost, for the daily budget: one small JSON file in the data directory.

``{"2026-11-21": 0.4312, ...}`` in US dollars, by local date; only the last 31 days are kept.
Sessions whose cost is unknown add nothing (the budget guard says so while they run). The file
is private to the user; a missing or unreadable one counts as nothing spent (and is replaced).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from .. import paths

KEEP_DAYS = 31


def spend_file() -> Path:
    return paths.data_dir() / "spend.json"


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(k, str) and isinstance(v, int | float)}


def spent_today(today: date | None = None) -> float:
    return _read(spend_file()).get((today or date.today()).isoformat(), 0.0)


def record(cost_usd: float | None, today: date | None = None) -> None:
    """Add a finished session's cost to today's total."""
    if not cost_usd:
        return
    path = spend_file()
    paths.ensure_private_dir(path.parent)
    data = _read(path)
    day = (today or date.today()).isoformat()
    data[day] = round(data.get(day, 0.0) + cost_usd, 8)
    kept = dict(sorted(data.items())[-KEEP_DAYS:])
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(kept, out)
    os.replace(temporary, path)
