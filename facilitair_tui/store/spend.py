"""What today's sessions cost, for the daily budget, counted from the session store.

The store has every model call's cost within a batch (~50 ms) of the call's end, so sessions
that run at once see each other's spend before their next chunk, and nothing is counted twice
or lost the way a separate tally file can lose it (two sessions rewriting it at once). A day is
the local date. A call whose price is unknown adds nothing; the budget guard says so while it
runs. A store that cannot be read gives ``None``: the spend is unknown, never $0.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date, datetime
from pathlib import Path

_SPENT_SINCE = """
SELECT coalesce(sum(e.cost_usd), 0.0)
FROM agent_executions AS e JOIN sessions AS s ON s.id = e.session_id
WHERE s.started_at + coalesce(e.finished_t, e.started_t) >= ? AND e.session_id != ?
"""


def local_midnight(now: float | None = None) -> float:
    """Unix time of the start of the local day that contains ``now``."""
    day = date.fromtimestamp(time.time() if now is None else now)
    return datetime(day.year, day.month, day.day).timestamp()


def spent_today(database: Path, exclude: str = "", *, now: float | None = None) -> float | None:
    """Dollars spent since local midnight by every session except ``exclude`` (the one asking,
    which counts its own spend as it goes); ``None`` when the database cannot be read."""
    if not database.exists():
        return 0.0
    try:
        # Read-only: the budget guard asks before every chunk and must never write or migrate.
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(_SPENT_SINCE, (local_midnight(now), exclude)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return float(row[0])
