"""The prompts of the code workflow: the coder's first answer, the tester's tests, a repair.

The coder's first prompt is also what ``facilitair eval --single`` sends: one call to the same
model with the same prompt, so the eval compares the team with exactly what it starts from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .code_run import RunReport, TestOutcome
from .provider import ChatMessage
from .workflow import Role

MAX_FAILURES_SHOWN = 5
MAX_OUTPUT_SHOWN = 1_200

_ORIGIN_WORDS = {
    "task": "an example the task states",
    "tester": "a test the tester wrote",
    "hidden": "a check",
}


def _task_part(task: str, context: Mapping[str, str], feedback: Sequence[str]) -> str:
    parts = [task.strip()]
    if context:
        parts.append("Context:\n" + "\n".join(f"- {key}: {value}" for key, value in context.items()))
    if feedback:
        parts.append("The user's feedback:\n" + "\n".join(f"- {text}" for text in feedback))
    return "\n\n".join(parts)


def coder_messages(
    role: Role, task: str, context: Mapping[str, str] | None = None, feedback: Sequence[str] = ()
) -> tuple[ChatMessage, ...]:
    request = (
        f"{_task_part(task, context or {}, feedback)}\n\n"
        "Reply with the complete function, with its imports, in one ```python code block."
    )
    return (ChatMessage("system", role.system_prompt.strip()), ChatMessage("user", request))


# The tester's worked example, shown as an earlier exchange: a small model asked for tests of a
# function whose stub it can see writes the function instead; shown one exchange where the answer
# is asserts only, it answers the same way.
_EXAMPLE_TASK = '''Complete the following Python function.
```python
def count_vowels(word: str) -> int:
    """Return how many vowels (a, e, i, o, u, either case) the word has.
    >>> count_vowels("Banana")
    3
    """
```'''
_EXAMPLE_TESTS = """```python
assert count_vowels("Banana") == 3
assert count_vowels("") == 0
assert count_vowels("rhythm") == 0
assert count_vowels("AEIOU") == 5
assert count_vowels("queue") == 4
```"""


def _tester_request(task: str, name: str) -> str:
    return (
        f"{task}\n\n"
        f"Do not write `{name}`. Write at most six tests for it as assert statements, one per line, "
        "in one ```python code block: first the examples the task states, then edge cases it "
        "implies, each comparing the result with the exact value the task requires."
    )


def tester_messages(
    role: Role, task: str, name: str, context: Mapping[str, str] | None = None, feedback: Sequence[str] = ()
) -> tuple[ChatMessage, ...]:
    return (
        ChatMessage("system", role.system_prompt.strip()),
        ChatMessage("user", _tester_request(_EXAMPLE_TASK, "count_vowels")),
        ChatMessage("assistant", _EXAMPLE_TESTS),
        ChatMessage("user", _tester_request(_task_part(task, context or {}, feedback), name)),
    )


def _failure_line(outcome: TestOutcome, source: str) -> str:
    why = outcome.message.strip().splitlines()[-1] if outcome.message.strip() else "failed"
    return f"- `{source}` ({_ORIGIN_WORDS.get(outcome.origin, 'a test')}): {why}"


def failures_text(report: RunReport, sources: Mapping[str, str]) -> str:
    """What went wrong in a run, for the coder: the failing tests (the task's own first) and
    the output when the code did not load or finish."""
    failing = sorted((o for o in report.outcomes if not o.passed), key=lambda o: o.origin != "task")
    lines = [_failure_line(o, sources.get(o.name, o.name)) for o in failing[:MAX_FAILURES_SHOWN]]
    if len(failing) > MAX_FAILURES_SHOWN:
        lines.append(f"- and {len(failing) - MAX_FAILURES_SHOWN} more")
    text = "\n".join(lines)
    if report.status != "ran" and report.output.strip():
        output = report.output.strip()[-MAX_OUTPUT_SHOWN:]
        text += f"\n\nThe run ended with status {report.status}:\n```\n{output}\n```"
    return text


def repair_messages(
    role: Role,
    task: str,
    code: str,
    report: RunReport,
    sources: Mapping[str, str],
    context: Mapping[str, str] | None = None,
    feedback: Sequence[str] = (),
) -> tuple[ChatMessage, ...]:
    """The coder's first prompt, its answer so far, and what the tests said about it."""
    first = coder_messages(role, task, context, feedback)
    request = (
        "I ran your function on tests and some failed:\n"
        f"{failures_text(report, sources)}\n\n"
        "Find the mistake and fix the function. The task's own examples are always right; a "
        "tester's test may be wrong, so follow the task where they disagree. Reply with the "
        "complete corrected function, with its imports, in one ```python code block."
    )
    return (*first, ChatMessage("assistant", f"```python\n{code.strip()}\n```"), ChatMessage("user", request))
