"""What ``facilitair eval report`` and the quality bench say about the runs in the store: each run's
figures, and the team against one call over the problems both answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from facilitair_tui.store.evals import EvalResult, EvalRun


@dataclass(frozen=True)
class Comparison:
    team_run: str
    single_run: str
    problems: int  # answered by both runs
    team_passed: int
    single_passed: int
    team_tokens: int  # input and output
    single_tokens: int

    @property
    def team_pass_at_1(self) -> float:
        return self.team_passed / self.problems

    @property
    def single_pass_at_1(self) -> float:
        return self.single_passed / self.problems

    @property
    def points(self) -> float:
        """The team's pass@1 minus the single call's, in percentage points."""
        return 100 * (self.team_passed - self.single_passed) / self.problems

    @property
    def token_ratio(self) -> float | None:
        """The team's tokens per the single call's, over the same problems."""
        return self.team_tokens / self.single_tokens if self.single_tokens else None


def tokens(results: Sequence[EvalResult]) -> int:
    return sum(r.input_tokens + r.output_tokens for r in results)


def model_label(run: EvalRun) -> str:
    """How a run's models were chosen: the one model, else the strategy, else the default."""
    params = run.params
    if params.model:
        return params.model
    return f"strategy {params.strategy}" if params.strategy else "default strategy"


def comparable(team: EvalRun, single: EvalRun) -> bool:
    """The same problems file, workflow and models: only the way of answering differs."""
    a, b = team.params, single.params
    return (a.source_hash, a.workflow, a.strategy, a.model) == (
        b.source_hash,
        b.workflow,
        b.strategy,
        b.model,
    )


def compare(team: EvalRun, single: EvalRun) -> Comparison | None:
    """The two runs over the problems both have answered; None when they share none."""
    shared = {r.task_id for r in team.results} & {r.task_id for r in single.results}
    if not shared:
        return None
    t = [r for r in team.results if r.task_id in shared]
    s = [r for r in single.results if r.task_id in shared]
    return Comparison(
        team_run=team.id,
        single_run=single.id,
        problems=len(shared),
        team_passed=sum(1 for r in t if r.passed),
        single_passed=sum(1 for r in s if r.passed),
        team_tokens=tokens(t),
        single_tokens=tokens(s),
    )


def comparisons(runs: Sequence[EvalRun]) -> list[Comparison]:
    """Each team run against the newest comparable single run that shares problems with it."""
    out = []
    singles = sorted((r for r in runs if r.params.mode == "single"), key=lambda r: r.created, reverse=True)
    for team in (r for r in runs if r.params.mode == "team"):
        for single in singles:
            found = compare(team, single) if comparable(team, single) else None
            if found is not None:
                out.append(found)
                break
    return out
