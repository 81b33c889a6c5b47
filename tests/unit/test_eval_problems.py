"""Eval problems: HumanEval from its wheel, a user's JSONL with errors that name the line and the
field, the choice of problems, and the task text (which never holds the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facilitair_tui.core.provider import UsageError
from facilitair_tui.evaluation.problems import (
    Problem,
    load_problems,
    select,
    source_hash,
    task_text,
)
from tests.support.eval_problems import MARK, write_problems


def test_humaneval_is_read_offline_from_its_wheel() -> None:
    problems = load_problems("humaneval")
    assert len(problems) == 164
    assert [p.task_id for p in problems[:2]] == ["HumanEval/0", "HumanEval/1"]
    assert len({p.task_id for p in problems}) == 164
    for p in problems:
        assert p.prompt.strip() and p.test.strip() and p.entry_point.isidentifier()
        assert f"def {p.entry_point}(" in p.prompt and "def check(" in p.test
    assert load_problems("HumanEval") == problems


def test_a_jsonl_file_of_the_same_form(tmp_path: Path) -> None:
    problems = load_problems(str(write_problems(tmp_path / "toy.jsonl")))
    assert [p.task_id for p in problems] == ["Toy/add", "Toy/mul", "Toy/neg"]
    assert problems[0].entry_point == "add" and MARK in problems[0].test


GOOD = {"task_id": "t/1", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass\n"}


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([GOOD, {k: v for k, v in GOOD.items() if k != "test"}], ("line 2", "missing field 'test'")),
        ([{**GOOD, "prompt": 3}], ("line 1", "field 'prompt' must be a non-empty string")),
        ([{**GOOD, "entry_point": "  "}], ("line 1", "field 'entry_point' must be a non-empty string")),
        ([{**GOOD, "entry_point": "f(x)"}], ("line 1", "'f(x)' is not a Python name")),
        ([GOOD, GOOD], ("line 2", "task_id 't/1' appears twice")),
        (["[1, 2]"], ("line 1", "expected a JSON object")),
        (["{not json"], ("line 1", "not JSON")),
        ([], ("has no problems",)),
    ],
    ids=["missing", "not-a-string", "blank", "not-a-name", "twice", "not-an-object", "not-json", "empty"],
)
def test_a_bad_file_is_named_with_its_line_and_field(
    tmp_path: Path, lines: list[object], says: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.jsonl"
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n\n", encoding="utf-8")  # blank lines are skipped, and counted
    with pytest.raises(UsageError) as raised:
        load_problems(str(path))
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    for fragment in says:
        assert fragment in message


def test_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.jsonl does not exist"):
        load_problems(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UsageError, match="is a directory"):
        load_problems(str(tmp_path))


def test_select_takes_the_first_n_or_a_seeded_sample() -> None:
    problems = load_problems("humaneval")
    assert select(problems, 3, None) == problems[:3]
    assert select(problems, None, None) == problems
    sample = select(problems, 5, 7)
    assert len({p.task_id for p in sample}) == 5 and sample != problems[:5]
    assert select(problems, 5, 7) == sample  # stable
    assert select(problems, 10, 7)[:5] == sample  # a longer sample begins with the shorter
    assert select(problems, 5, 8) != sample
    assert sorted(p.task_id for p in select(problems, None, 7)) == sorted(p.task_id for p in problems)
    with pytest.raises(UsageError, match="at least 1"):
        select(problems, 0, None)


def test_the_task_text_has_the_prompt_and_never_the_test() -> None:
    for problem in load_problems("humaneval"):
        text = task_text(problem)
        assert problem.prompt.strip() in text and problem.test.strip() not in text
        assert "def check(" not in text
    toy = Problem("t", "def f(x):\n    pass\n", "f", f"# {MARK}\ndef check(c): pass\n")
    assert task_text(toy) == (
        "Complete the following Python function so that it does what its docstring says.\n"
        "```python\ndef f(x):\n    pass\n```"
    )


def test_the_source_is_known_by_its_text(tmp_path: Path) -> None:
    first = write_problems(tmp_path / "toy.jsonl")
    moved = tmp_path / "elsewhere.jsonl"
    moved.write_bytes(first.read_bytes())
    assert source_hash(str(first)) == source_hash(str(moved))
    changed = write_problems(tmp_path / "changed.jsonl", count=2)
    assert source_hash(str(changed)) != source_hash(str(first))
    assert source_hash("humaneval") == source_hash("HumanEval")
