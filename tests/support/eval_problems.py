"""Toy eval problems and a model that answers them the way a small one would, for ``facilitair
eval`` tests on the local OpenAI-compatible test server (never a real model).

``add`` is answered right at once, ``mul`` wrong until a repair prompt says which example failed,
``neg`` always wrong, ``sub`` right at once: one call passes ``add`` and ``sub``, the team also
``mul``. Each problem's official test carries ``MARK``, which must never reach any prompt.

The prompt wording matched here is the code workflow's (facilitair_tui/core/code_prompts.py);
keeping the match in one place means a wording change touches one helper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.openai_sse_server import Script
from tests.support.team_session import deltas, last_prompt

MARK = "OFFICIAL-TEST-NEVER-SHOWN"

# name, stated examples (in the docstring), the official test's cases
PROBLEMS: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("add", [("2, 3", "5")], [("2, 3", "5"), ("-1, 1", "0")]),
    ("mul", [("2, 4", "8")], [("2, 4", "8"), ("3, 3", "9")]),
    ("neg", [("2", "-2")], [("2", "-2"), ("0", "0")]),
    ("sub", [("5, 3", "2")], [("5, 3", "2"), ("0, 1", "-1")]),
]
FIRST = {"add": "a + b", "mul": "a + b + 1", "neg": "a", "sub": "a - b"}
REPAIRED = {"add": "a + b", "mul": "a * b", "neg": "a", "sub": "a - b"}


def _args(name: str) -> str:
    return "a" if name == "neg" else "a, b"


def problem(name: str, examples: list[tuple[str, str]], checks: list[tuple[str, str]]) -> dict[str, str]:
    doc = "\n".join(f"    >>> {name}({call})\n    {out}" for call, out in examples)
    prompt = f'def {name}({_args(name)}):\n    """Compute it.\n{doc}\n    """\n'
    asserts = "\n".join(f"    assert candidate({call}) == {out}" for call, out in checks)
    test = f"# {MARK}\n\ndef check(candidate):\n{asserts}\n"
    return {"task_id": f"Toy/{name}", "prompt": prompt, "entry_point": name, "test": test}


def write_problems(path: Path, count: int = 3) -> Path:
    """The first ``count`` toy problems as a JSONL file at ``path``."""
    path.write_text("".join(json.dumps(problem(*p)) + "\n" for p in PROBLEMS[:count]), encoding="utf-8")
    return path


def asked_about(body: Any) -> str:
    """The toy problem a request is about."""
    sent = json.dumps(body["messages"])
    return next(name for name, *_ in PROBLEMS if f"def {name}(" in sent)


def answer(body: Any) -> Script:
    """The server's answer to one request: a tester's asserts, a coder's first answer or its repair."""
    prompt = last_prompt(body)
    name = asked_about(body)
    if "Do not write" in prompt:  # the tester
        call = "1" if _args(name) == "a" else "1, 1"
        return Script(deltas=deltas(f"```python\nassert {name}({call}) is not None\n```"))
    body_text = REPAIRED[name] if "I ran your function on tests" in prompt else FIRST[name]
    return Script(deltas=deltas(f"```python\ndef {name}({_args(name)}):\n    return {body_text}\n```"))
