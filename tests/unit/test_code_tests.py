"""Tests from the task's own words, tests from a tester's answer, and the code in an answer."""

from __future__ import annotations

from facilitair_tui.core.code_tests import stated_examples, written_tests
from facilitair_tui.core.python_code import entry_point, extract_code, program

TASK = '''```python
from typing import List


def helper(x: int) -> int:
    return x


def pick(values: List[int], n: int) -> List[int]:
    """Return the n largest values, largest first.
    >>> pick([3, 1, 2], 2)
    [3, 2]
    >>> pick([], 1)  # nothing to pick
    []
    For example: pick([5, 4], 1) should return [5]. And pick([1], 1) ➞ [1]
    pick(values, n) == sorted(values)[:n] is how it is defined for a sorted list.
    >>> round(pick_ratio(2.5), 1)
    0.5
    """
```'''


def test_examples_in_doctest_and_prose_become_asserts() -> None:
    sources = [t.source for t in stated_examples(TASK, "pick")]
    assert sources == [
        "assert (pick([3, 1, 2], 2)) == ([3, 2])",
        "assert (pick([], 1)) == ([])",
        "assert (pick([5, 4], 1)) == ([5])",
        "assert (pick([1], 1)) == ([1])",
    ]
    assert all(t.origin == "task" for t in stated_examples(TASK, "pick"))


def test_a_definition_with_variables_is_not_an_example() -> None:
    task = "f(n) = f(n - 1) + f(n - 2).\n>>> f(n)\nf(n - 1)\n>>> f(3)\n2"
    assert [t.source for t in stated_examples(task, "f")] == ["assert (f(3)) == (2)"]


def test_a_float_result_is_compared_with_a_tolerance() -> None:
    (test,) = stated_examples(">>> half(1)\n0.5", "half")
    assert "1e-6" in test.source


def test_a_testers_asserts_are_kept_once_and_only_those_that_call_the_function() -> None:
    answer = (
        "Here are tests:\n```python\nassert pick([3, 1, 2], 2) == [3, 2]\nassert pick([9], 1) == [9]\n"
        "assert helper(1) == 1\n\ndef test_more():\n    assert pick([2, 8], 1) == [8]\n"
        "assert pick([7, 7], 1) == [7]\nassert pick(\n```"
    )
    known = {t.source for t in stated_examples(TASK, "pick")}
    sources = [t.source for t in written_tests(answer, "pick", 10, known)]
    assert sources == [
        "assert pick([9], 1) == [9]",
        "assert pick([2, 8], 1) == [8]",
        "assert pick([7, 7], 1) == [7]",
    ]
    assert len(written_tests(answer, "pick", 1, known)) == 1


def test_the_block_that_defines_the_function_wins_and_demo_code_is_left_out() -> None:
    answer = (
        "First try:\n```python\ndef pick(values, n):\n    return values\n```\nBetter:\n"
        "```python\nimport heapq\n\ndef pick(values, n):\n    return heapq.nlargest(n, values)\n\n"
        "print(pick([1, 2], 1))\nassert pick([1], 1) == [1]\n```\n```python\nfrom math import inf\n```"
    )
    code = extract_code(answer, "pick")
    assert code is not None
    assert "nlargest" in code and "print" not in code and "assert" not in code
    assert "from math import inf" in code


def test_an_answer_cut_mid_line_keeps_its_complete_definitions() -> None:
    answer = (
        "```python\ndef pick(values, n):\n    return sorted(values)[::-1][:n]\n\n"
        "def other(x):\n    return (x +"
    )
    code = extract_code(answer, "pick")
    assert code is not None and "sorted(values)" in code


def test_no_code_is_none() -> None:
    assert extract_code("I cannot help with that.", "pick") is None


def test_the_program_runs_the_tasks_own_code_first() -> None:
    code = "def pick(values, n):\n    return values[:n]"
    text = program(TASK, code)
    assert text.index("from typing import List") < text.index("return values[:n]")
    assert "def helper" in text
    assert entry_point(TASK) == "pick"
