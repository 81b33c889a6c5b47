"""Tests for a function, from the two places the team may take them: the examples the task
itself states, and the asserts a tester agent writes.

The task's examples are the most trusted tests there are (the user wrote them), so they are
found by rule, not by a model: doctest lines (``>>> f(2)`` then ``4``) and the arrows, equals and
"should return" forms task writers use (``f(2) == 4``, ``f(2) ➞ 4``, ``f(2) -> 4``,
``f(2) should return 4``). Each becomes one ``assert``.
"""

from __future__ import annotations

import ast
import re

from .code_run import TestCase
from .python_code import code_blocks

# "f(args) <arrow> expected": the forms task writers use for an example's result.
# A lone "=" or "is" is left out: prose uses them for definitions ("f(n) = f(n-1) + 1").
_ARROW = re.compile(r"\s*(?:==|➞|->|=>|→|should\s+(?:return|be)|returns?)\s*:?\s*", re.IGNORECASE)
_LITERAL_NODES = (
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.UnaryOp,
    ast.USub,
    ast.UAdd,
    ast.Load,
)


def _expression(source: str) -> ast.expr | None:
    source = source.strip()
    if not source:
        return None
    try:
        return ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError):
        return None


def _literal(node: ast.AST) -> bool:
    """Only values: an example's expected result and arguments name no variable."""
    return all(
        isinstance(n, _LITERAL_NODES) or (isinstance(n, ast.Name) and n.id in {"True", "False", "None"})
        for n in ast.walk(node)
    )


def _example_call(node: ast.expr, name: str) -> bool:
    """``name(literal, ...)``, possibly inside a builtin like ``round(...)`` or ``sorted(...)``."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
    ours = [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == name]
    return bool(ours) and all(
        _literal(arg) for call in ours for arg in [*call.args, *(k.value for k in call.keywords)]
    )


def _without_comment(source: str) -> str:
    quote: str | None = None
    for index, char in enumerate(source):
        if quote:
            if char == quote and source[index - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return source[:index].rstrip()
    return source


def _calls(node: ast.expr, name: str) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(node)
    )


def _equality(call: str, expected: str) -> str:
    """``assert call == expected``, or a tolerance when a float is expected."""
    value = _expression(expected)
    if isinstance(value, ast.Constant) and isinstance(value.value, float):
        return f"assert abs(({call}) - ({expected})) <= 1e-6 * max(1.0, abs({expected}))"
    return f"assert ({call}) == ({expected})"


def _balanced_call(text: str, start: int) -> int | None:
    """The index just past the call whose "(" is at ``start``, or None when it never closes."""
    depth = 0
    quote: str | None = None
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _doctests(text: str, name: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(">>>"):
            continue
        call = _without_comment(stripped[3:].strip())
        # The output is the shortest run of the lines after the call that is a whole value (a
        # long list may take several lines; prose may follow without a blank line).
        expected_lines: list[str] = []
        for following in lines[index + 1 :]:
            out = following.strip()
            if not out or out.startswith(">>>") or out.startswith('"""') or out.startswith("'''"):
                break
            expected_lines.append(_without_comment(out))
            if _expression(" ".join(expected_lines)) is not None:
                pairs.append((call, " ".join(expected_lines)))
                break
    return pairs


def _inline_examples(text: str, name: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for match in re.finditer(rf"\b{re.escape(name)}\(", text):
        end = _balanced_call(text, match.end() - 1)
        if end is None:
            continue
        arrow = _ARROW.match(text, end)
        if arrow is None or not arrow.group().strip():
            continue
        rest = _without_comment(text[arrow.end() :].split("\n", 1)[0])
        # The expected value runs to the end of the line; a sentence's full stop or a comma before
        # the next example is cut off until what remains parses.
        for cut in range(len(rest), 0, -1):
            if cut < len(rest) and (rest[cut].isalnum() or rest[cut] in "_.'\""):
                continue  # never inside a number, a word or a string
            candidate = rest[:cut].strip().rstrip(".,;")
            value = _expression(candidate)
            # "f(x) -> 19 - 5 - 6 = 8" states a computation, not the value 19.
            goes_on = rest[cut:].lstrip()[:1] in set("+-*/%=<>([.^")
            if value is not None and _literal(value) and not goes_on:
                pairs.append((text[match.start() : end], candidate))
                break
    return pairs


def stated_examples(task: str, name: str) -> list[TestCase]:
    """The examples ``task`` states for function ``name``, each as an assert."""
    seen: set[str] = set()
    tests: list[TestCase] = []
    for call, expected in [*_doctests(task, name), *_inline_examples(task, name)]:
        call_tree, value = _expression(call), _expression(expected)
        if call_tree is None or value is None or not _example_call(call_tree, name) or not _literal(value):
            continue
        source = _equality(call, expected)
        if source in seen:
            continue
        seen.add(source)
        tests.append(TestCase(name=f"example {len(tests) + 1}", source=source, origin="task"))
    return tests


def _asserts(tree: ast.Module) -> list[ast.Assert]:
    """Module-level asserts, and those in test functions that take no arguments."""
    found: list[ast.Assert] = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            found.append(node)
        elif isinstance(node, ast.FunctionDef) and not node.args.args:
            found.extend(n for n in ast.walk(node) if isinstance(n, ast.Assert))
    return found


def same_test_key(source: str) -> str:
    """Two tests with this key are one test written twice (parentheses, spacing apart)."""
    try:
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return source.strip()


def written_tests(text: str, name: str, limit: int, skip: set[str] | None = None) -> list[TestCase]:
    """The asserts a tester wrote that call ``name`` (its first ``limit``), each a test of its
    own; ``skip``: sources already among the tests (the task's own examples)."""
    skip = {same_test_key(source) for source in skip or ()}
    tests: list[TestCase] = []
    blocks = code_blocks(text) or [text]
    for block in blocks:
        lines = block.splitlines()
        tree = None
        for end in range(len(lines), 0, -1):  # a cut answer still gives its complete asserts
            try:
                tree = ast.parse("\n".join(lines[:end]))
                break
            except (SyntaxError, ValueError):
                continue
        if tree is None:
            continue
        for node in _asserts(tree):
            if not _calls(node.test, name):
                continue
            source = ast.unparse(node)
            key = same_test_key(source)
            if key in skip:
                continue
            skip.add(key)
            tests.append(TestCase(name=f"test {len(tests) + 1}", source=source, origin="tester"))
            if len(tests) >= limit:
                return tests
    return tests
