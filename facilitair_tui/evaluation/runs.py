"""An eval run: each problem answered (by the team or one call), checked, and kept in the session
store at once, so a run stopped part way (Ctrl-C, a kill, a crash) goes on where it stopped when
the same eval is started again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from facilitair_tui.config import load_settings
from facilitair_tui.core.code_run import CodeRunner
from facilitair_tui.store import SessionStore
from facilitair_tui.store.evals import EvalParams, EvalResult

from .attempts import (
    BUDGET,
    DONE,
    STOPPED,
    Attempt,
    Setup,
    Stop,
    Traced,
    check_setup,
    single_attempt,
    team_attempt,
)
from .check import final_check
from .problems import HUMANEVAL, Problem, source_hash

MODES = ("team", "single")


@dataclass(frozen=True)
class Progress:
    result: EvalResult
    done: int
    total: int
    passed: int
    eta_s: float | None  # from this run's mean time per problem; None before there is one
    resumed: bool  # the result was kept from an earlier, interrupted start of this run


@dataclass(frozen=True)
class Summary:
    run_id: str
    mode: str
    total: int  # the run's problems
    problems: int  # those answered and checked so far (all of them unless it stopped)
    passed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_s: float
    stopped: str | None = None  # None: finished; "stopped" (Ctrl-C) or "stopped at the budget"

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.problems if self.problems else 0.0


def summarize(
    run_id: str, mode: str, total: int, results: Sequence[EvalResult], stopped: str | None = None
) -> Summary:
    costs = [r.cost_usd for r in results]
    return Summary(
        run_id=run_id,
        mode=mode,
        total=total,
        problems=len(results),
        passed=sum(1 for r in results if r.passed),
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cost_usd=None if not costs or None in costs else sum(c for c in costs if c is not None),
        duration_s=sum(r.duration_s for r in results),
        stopped=stopped,
    )


def params_for(source: str, mode: str, setup: Setup, limit: int | None) -> EvalParams:
    """What identifies a run: an unfinished run with the same is continued. The source is known
    by its text (a changed file is another run) and shown by its absolute path."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    shown = HUMANEVAL if source.lower() == HUMANEVAL else str(Path(source).resolve())
    workflow = setup.workflow
    if Path(workflow).is_file():  # a workflow file, wherever the eval is started from
        workflow = str(Path(workflow).resolve())
    return EvalParams(
        shown, source_hash(source), mode, workflow, setup.strategy, setup.model, setup.seed, limit
    )


async def run_eval(
    store: SessionStore,
    problems: Sequence[Problem],
    params: EvalParams,
    setup: Setup,
    *,
    fresh: bool = False,
    runner: CodeRunner | None = None,
    stop: Stop | None = None,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    warn: Callable[[str], None] = lambda problem: None,
    traced: Traced | None = None,
) -> Summary:
    """Answer and check every problem not already done in this run (``fresh``: a new run); the
    run's summary. ``runner`` runs the official checks (the sandbox by default); ``stop`` ends the
    run part way, dropping the problem under way; ``warn`` hears of problems recording a session;
    ``traced`` wraps each team session's recorder (tracing, when the front end turned it on).
    Raises ConfigurationError or UsageError before any problem runs when the setup cannot run."""
    if not problems:
        raise ValueError("an eval needs at least one problem")
    setup = replace(setup, settings=setup.settings or load_settings())
    check_setup(problems[0], setup)
    if runner is None:
        from facilitair_tui.sandbox import Sandbox

        runner = Sandbox()
    stop = stop or Stop()
    runs = store.evals
    run_id, _ = runs.start(params, len(problems), fresh=fresh)
    known = {r.task_id: r for r in runs.results(run_id)}
    if not known.keys() <= {p.task_id for p in problems}:
        # The same parameters, other problems (a sample picked another way): not this run.
        run_id, _ = runs.start(params, len(problems), fresh=True)
        known = {}
    results: list[EvalResult] = []
    spent, ran = 0.0, 0
    stopped: str | None = None
    for position, problem in enumerate(problems):
        result = known.get(problem.task_id)
        resumed = result is not None
        if result is None:
            if stop.requested:
                stopped = STOPPED
                break
            started = time.perf_counter()
            if params.mode == "team":
                attempt = await team_attempt(problem, setup, store, stop, warn, traced)
            else:
                attempt = await single_attempt(problem, setup, stop)
            if attempt.status in (STOPPED, BUDGET):  # not an answer: it runs again on resume
                stopped = attempt.status
                break
            result = await _checked(runner, problem, position, attempt)
            runs.record(run_id, result)  # committed now: a kill after this loses nothing
            spent += time.perf_counter() - started
            ran += 1
        results.append(result)
        eta = _eta(spent, ran, results, len(problems) - len(results))
        passed = sum(1 for r in results if r.passed)
        on_progress(Progress(result, len(results), len(problems), passed, eta, resumed))
    if stopped is None:
        runs.finish(run_id)
    return summarize(run_id, params.mode, len(problems), results, stopped)


async def _checked(runner: CodeRunner, problem: Problem, position: int, attempt: Attempt) -> EvalResult:
    check = await final_check(runner, problem, attempt.answer_text)
    status, message = check.status, check.message
    if attempt.status != DONE:  # a failed call or session: say so beside what its answer gave
        what = "session" if attempt.session_id else "call"
        status = f"{status} ({what} {attempt.status})"
        message = "; ".join(m for m in (attempt.error, message) if m)
    return EvalResult(
        task_id=problem.task_id,
        position=position,
        passed=check.passed,
        status=status,
        input_tokens=attempt.input_tokens,
        output_tokens=attempt.output_tokens,
        cost_usd=attempt.cost_usd,
        duration_s=round(attempt.duration_s, 3),
        session_id=attempt.session_id,
        message=message[:500],
    )


def _eta(spent: float, ran: int, results: Sequence[EvalResult], left: int) -> float | None:
    """The time left: this start's mean wall time per problem (answer and check); before this
    start has finished one, the mean answer time of the results kept from before."""
    if not left:
        return 0.0
    if ran:
        return spent / ran * left
    if results:
        return sum(r.duration_s for r in results) / len(results) * left
    return None
