"""The official check: the problem's test run in the sandbox on the final answer's code."""

from __future__ import annotations

from pathlib import Path

from facilitair_tui.evaluation.check import final_check
from facilitair_tui.evaluation.problems import load_problems
from facilitair_tui.sandbox import Sandbox
from tests.support.eval_problems import write_problems


def answer(body: str) -> str:
    return f"Here it is:\n```python\ndef mul(a, b):\n    return {body}\n```\n"


async def test_a_right_answer_passes_and_a_wrong_one_fails(tmp_path: Path) -> None:
    mul = load_problems(str(write_problems(tmp_path / "toy.jsonl")))[1]
    right = await final_check(Sandbox(), mul, answer("a * b"))
    assert (right.passed, right.status) == (True, "passed")
    wrong = await final_check(Sandbox(), mul, answer("a + b + 1"))
    assert (wrong.passed, wrong.status) == (False, "failed")
    assert wrong.message  # why, for eval_results.message


async def test_an_answer_without_code_or_whose_code_does_not_load(tmp_path: Path) -> None:
    mul = load_problems(str(write_problems(tmp_path / "toy.jsonl")))[1]
    none = await final_check(Sandbox(), mul, "I would multiply them.")
    assert (none.passed, none.status) == (False, "no code")
    missing_import = "```python\nimport no_such_module_here\n\n\ndef mul(a, b):\n    return a * b\n```"
    broken = await final_check(Sandbox(), mul, missing_import)
    assert (broken.passed, broken.status) == (False, "error")
    assert "no_such_module_here" in broken.message


async def test_humaneval_s_own_solution_passes_its_test() -> None:
    first = load_problems("humaneval")[0]
    solution = (
        "```python\ndef has_close_elements(numbers, threshold):\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n```"
    )
    assert (await final_check(Sandbox(), first, solution)).passed
