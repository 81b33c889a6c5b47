"""An eval run: each problem answered (by the team or one call), checked, and kept in the store
at once, so a run stopped part way goes on where it stopped when started again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from facilitair_tui.sandbox import Sandbox
from facilitair_tui.store import SessionStore
from facilitair_tui.store.evals import EvalParams, EvalResult

from .attempts import Setup, check_setup, single_attempt, team_attempt
from .check import final_check
from .problems import Problem


@dataclass(frozen=True)
class Progress:
    result: EvalResult
    done: int
    total: int
    passed: int
    eta_s: float | None  # from this run's mean time per problem; None before the first
    resumed: bool  # the result was kept from an earlier, interrupted start of this run


@dataclass(frozen=True)
class Summary:
    run_id: str
    mode: str
    problems: int
    passed: int
    input_tokens: int
    output_tokens: int
    duration_s: float

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.problems if self.problems else 0.0


def summarize(run_id: str, mode: str, results: list[EvalResult]) -> Summary:
    return Summary(
        run_id,
        mode,
        len(results),
        sum(1 for r in results if r.passed),
        sum(r.input_tokens for r in results),
        sum(r.output_tokens for r in results),
        sum(r.duration_s for r in results),
    )


async def run_eval(
    store: SessionStore,
    problems: list[Problem],
    params: EvalParams,
    setup: Setup,
    *,
    fresh: bool = False,
    on_progress: Callable[[Progress], None] = lambda progress: None,
) -> Summary:
    """Answer and check every problem not already done in this run; the run's summary."""
    check_setup(problems[0], setup)
    runs = store.evals
    run_id, _ = runs.start(params, len(problems), fresh=fresh)
    known = {r.task_id: r for r in runs.results(run_id)}
    results: list[EvalResult] = []
    runner = Sandbox()
    spent = 0.0
    ran = 0
    for position, problem in enumerate(problems):
        result = known.get(problem.task_id)
        resumed = result is not None
        if result is None:
            if params.mode == "team":
                attempt = await team_attempt(problem, setup, store)
            else:
                attempt = await single_attempt(problem, setup)
            started = time.perf_counter()
            check = await final_check(runner, problem, attempt.answer)
            result = EvalResult(
                task_id=problem.task_id,
                position=position,
                passed=check.passed,
                status=check.status if attempt.status == "done" else f"{check.status} ({attempt.status})",
                input_tokens=attempt.input_tokens,
                output_tokens=attempt.output_tokens,
                cost_usd=attempt.cost_usd,
                duration_s=round(attempt.duration_s, 3),
                session_id=attempt.session_id,
                message=check.message[:500],
            )
            runs.record(run_id, result)
            spent += attempt.duration_s + (time.perf_counter() - started)
            ran += 1
        results.append(result)
        left = len(problems) - len(results)
        eta = spent / ran * left if ran else None
        passed = sum(1 for r in results if r.passed)
        on_progress(Progress(result, len(results), len(problems), passed, eta, resumed))
    runs.finish(run_id)
    return summarize(run_id, params.mode, results)
