"""What the stats are computed from, read from the session store's tables as they are.

Nothing here is recorded for the stats: sessions, agent executions and syntheses are the rows the
recorder writes anyway, and each model request is its recorded ``model_attempt`` event (sessions
recorded before those existed simply have none). ``facilitair_tui.stats`` does the arithmetic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from facilitair_tui.core import events as ev

from .tables import Tables


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    started_at: float  # epoch seconds
    status: str
    models: dict[str, str]  # role -> "provider:model"
    cost_usd: float | None  # None: a call's price is unknown
    from_cache: bool


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    session_id: str
    chunk: int
    agent: str
    model: str
    status: str
    output_tokens: int
    input_tokens: int
    latency_ms: float | None
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Recorded:
    """Every row the stats read, of the sessions started since a moment."""

    sessions: list[SessionRow]
    executions: list[ExecutionRow]
    attempts: list[ev.ModelAttempt]
    # session id -> the debated points of each of its syntheses (each point's positions by agent)
    debated: dict[str, list[list[dict[str, Any]]]]
    code_runs: list[ev.CodeRun]


class Analytics(Tables):
    """Read-only queries on one store's connection (``Tables``)."""

    def since(self, started_after: float | None) -> Recorded:
        """The sessions started at or after ``started_after`` (epoch seconds; None: all)."""
        after = float("-inf") if started_after is None else started_after
        chosen = "SELECT id FROM sessions WHERE started_at >= ?"
        with self._sql() as sql:
            sessions = [
                SessionRow(sid, started, status, json.loads(models), cost, bool(from_cache))
                for sid, started, status, models, cost, from_cache in sql.execute(
                    "SELECT id, started_at, status, models,"
                    " CASE WHEN cost_unknown THEN NULL ELSE cost_usd END, from_cache"
                    " FROM sessions WHERE started_at >= ? ORDER BY started_at",
                    (after,),
                )
            ]
            executions = [
                ExecutionRow(*row)
                for row in sql.execute(
                    "SELECT session_id, chunk, agent, model, status, coalesce(output_tokens, 0),"
                    " coalesce(input_tokens, 0), latency_ms, cost_usd FROM agent_executions"
                    f" WHERE session_id IN ({chosen}) ORDER BY session_id, id",
                    (after,),
                )
            ]
            events = sql.execute(
                "SELECT body FROM events WHERE type IN ('model_attempt', 'code_run')"
                f" AND session_id IN ({chosen}) ORDER BY session_id, seq",
                (after,),
            ).fetchall()
            debated: dict[str, list[list[dict[str, Any]]]] = {}
            for sid, points in sql.execute(
                f"SELECT session_id, debated FROM syntheses WHERE session_id IN ({chosen}) ORDER BY chunk",
                (after,),
            ):
                debated.setdefault(sid, []).append(json.loads(points))
        decoded = [ev.from_json(body) for (body,) in events]
        return Recorded(
            sessions,
            executions,
            [e for e in decoded if isinstance(e, ev.ModelAttempt)],
            debated,
            [e for e in decoded if isinstance(e, ev.CodeRun)],
        )
