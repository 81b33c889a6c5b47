"""Eval runs in the session store: each problem's result is committed as soon as it is known, so
a run that is interrupted (Ctrl-C, a kill, a crash) goes on where it stopped when the same eval
is started again."""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass

from .tables import Tables


@dataclass(frozen=True)
class EvalParams:
    """What makes two evals the same run: a run with these, unfinished, is continued."""

    source: str
    source_hash: str
    mode: str  # "team" or "single"
    workflow: str
    strategy: str | None
    model: str | None
    seed: int | None
    limit: int | None


@dataclass(frozen=True)
class EvalResult:
    task_id: str
    position: int  # the problem's place in the run
    passed: bool
    status: str  # "passed", "failed", or why it could not be checked
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_s: float
    session_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class EvalRun:
    id: str
    created: float
    params: EvalParams
    total: int
    finished_at: float | None
    results: tuple[EvalResult, ...]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)


_RUN_COLUMNS = (
    "id, created, source, source_hash, mode, workflow, strategy, model, seed, limit_n, total, finished_at"
)
_RESULT_COLUMNS = (
    "task_id, position, passed, status, input_tokens, output_tokens, cost_usd, duration_s, session_id, "
    "message"
)


class EvalRuns(Tables):
    """The eval tables of one store's connection (``Tables``)."""

    def start(self, params: EvalParams, total: int, *, fresh: bool = False) -> tuple[str, bool]:
        """The run to record into and whether it continues an unfinished one with ``params``."""
        with self._sql() as conn:
            return self._start(conn, params, total, fresh)

    @staticmethod
    def _start(conn: sqlite3.Connection, params: EvalParams, total: int, fresh: bool) -> tuple[str, bool]:
        if not fresh:
            row = conn.execute(
                "SELECT id FROM eval_runs WHERE finished_at IS NULL AND source_hash = ? AND mode = ? "
                "AND workflow = ? AND strategy IS ? AND model IS ? AND seed IS ? AND limit_n IS ? "
                "AND total = ? ORDER BY created DESC LIMIT 1",
                (
                    params.source_hash,
                    params.mode,
                    params.workflow,
                    params.strategy,
                    params.model,
                    params.seed,
                    params.limit,
                    total,
                ),
            ).fetchone()
            if row is not None:
                return str(row[0]), True
        run_id = uuid.uuid4().hex[:16]
        conn.execute(
            f"INSERT INTO eval_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                run_id,
                time.time(),
                params.source,
                params.source_hash,
                params.mode,
                params.workflow,
                params.strategy,
                params.model,
                params.seed,
                params.limit,
                total,
            ),
        )
        return run_id, False

    def record(self, run_id: str, result: EvalResult) -> None:
        with self._sql() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO eval_results (run_id, {_RESULT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    result.task_id,
                    result.position,
                    int(result.passed),
                    result.status,
                    result.input_tokens,
                    result.output_tokens,
                    result.cost_usd,
                    result.duration_s,
                    result.session_id,
                    result.message,
                ),
            )

    def finish(self, run_id: str) -> None:
        with self._sql() as conn:
            conn.execute("UPDATE eval_runs SET finished_at = ? WHERE id = ?", (time.time(), run_id))

    def results(self, run_id: str) -> tuple[EvalResult, ...]:
        with self._sql() as conn:
            rows = conn.execute(
                f"SELECT {_RESULT_COLUMNS} FROM eval_results WHERE run_id = ? ORDER BY position", (run_id,)
            ).fetchall()
        return tuple(
            EvalResult(
                task_id=row[0],
                position=row[1],
                passed=bool(row[2]),
                status=row[3],
                input_tokens=row[4],
                output_tokens=row[5],
                cost_usd=row[6],
                duration_s=row[7],
                session_id=row[8],
                message=row[9],
            )
            for row in rows
        )

    def runs(self) -> list[EvalRun]:
        with self._sql() as conn:
            rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM eval_runs ORDER BY created").fetchall()
        return [
            EvalRun(
                id=row[0],
                created=row[1],
                params=EvalParams(*row[2:10]),
                total=row[10],
                finished_at=row[11],
                results=self.results(row[0]),
            )
            for row in rows
        ]
