"""The official check of an answer, run in the sandbox once the answer is final. Its test is
never part of any prompt: only this module reads ``Problem.test``."""

from __future__ import annotations

from dataclasses import dataclass

from facilitair_tui.core.code_run import CodeRunner, RunLimits, TestCase
from facilitair_tui.core.python_code import extract_code, program

from .problems import Problem, task_text

# HumanEval's checks take well under a second on a right answer; 15 s is for a slow shared machine,
# and the whole run has a few more for the interpreter to start and the code to load.
CHECK_LIMITS = RunLimits(timeout_s=20.0, test_timeout_s=15.0, memory_mb=1024)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    status: str  # "passed", "failed", "no code", or the run's status ("timeout", "memory", "error")
    message: str = ""


async def final_check(runner: CodeRunner, problem: Problem, answer_text: str) -> CheckResult:
    """Run the problem's official test on the code of ``answer_text`` (the final answer)."""
    code = extract_code(answer_text, problem.entry_point)
    if code is None:
        return CheckResult(False, "no code", "the answer has no Python code that parses")
    check = TestCase(
        name="official", source=f"{problem.test}\n\ncheck({problem.entry_point})\n", origin="hidden"
    )
    report = await runner.run(program(task_text(problem), code), [check], limits=CHECK_LIMITS)
    if report.status != "ran":
        return CheckResult(False, report.status, report.outcomes[0].message if report.outcomes else "")
    outcome = report.outcomes[0]
    return CheckResult(outcome.passed, "passed" if outcome.passed else "failed", outcome.message)
