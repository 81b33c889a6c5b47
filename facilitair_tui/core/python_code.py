"""The Python in an answer: the function a task asks for, found in a model's text and made
runnable, and the tests a text states.

Models answer in Markdown, with prose, several code blocks, demo calls and ``print``s around the
function. ``extract_code`` keeps what defines it (imports, functions, classes, constants) so the
code can be loaded and tested without running the model's demo. The same extraction serves the
team and a single call, so neither gains from how its answer is read.
"""

from __future__ import annotations

import ast
import re

from .markdown_fences import fences

_KEPT = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
)
_PYTHON_WORDS = {"", "python", "py", "python3", "py3"}


def code_blocks(text: str) -> list[str]:
    """The bodies of the text's Python (or unlabelled) fenced blocks, in order."""
    lines = text.splitlines()
    return ["\n".join(f.body(lines)) for f in fences(lines) if f.language in _PYTHON_WORDS]


def _parses(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _defines(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name
        for node in tree.body
    )


def _longest_parsing_prefix(source: str) -> ast.Module | None:
    """The longest run of whole lines from the start that parses (an answer cut mid-line, or
    followed by prose, still gives its complete definitions)."""
    lines = source.splitlines()
    for end in range(len(lines), 0, -1):
        tree = _parses("\n".join(lines[:end]))
        if tree is not None and tree.body:
            return tree
    return None


def _unfenced_code(text: str) -> str:
    """An answer without fences: from its first line of code to the end."""
    lines = text.splitlines()
    start = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
    for index, line in enumerate(lines):
        if start.match(line):
            return "\n".join(lines[index:])
    return ""


def definitions(tree: ast.Module) -> str:
    """The module with only what defines things: no demo calls, prints or top-level tests."""
    kept: list[ast.stmt] = [node for node in tree.body if isinstance(node, _KEPT)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[])) if kept else ""


def extract_code(text: str, entry_point: str | None = None) -> str | None:
    """The runnable definitions of an answer, or None when it has no code that parses.

    With ``entry_point``, the block that defines it wins (the last such block: a model that
    corrects itself writes the fix after the mistake), with the imports of the other blocks
    added; without one, every block that parses, in order."""
    candidates = [*code_blocks(text)] or [_unfenced_code(text)]
    trees = [
        tree for tree in (_parses(c) or _longest_parsing_prefix(c) for c in candidates if c.strip()) if tree
    ]
    if not trees:
        return None
    if entry_point is not None:
        defining = [t for t in trees if _defines(t, entry_point)]
        if defining:
            chosen = defining[-1]
            imports = [
                node
                for tree in trees
                if tree is not chosen
                for node in tree.body
                if isinstance(node, ast.Import | ast.ImportFrom)
            ]
            body = [*imports, *chosen.body]
            return definitions(ast.Module(body=body, type_ignores=[])) or None
    joined = ast.Module(body=[node for tree in trees for node in tree.body], type_ignores=[])
    return definitions(joined) or None


def task_code(task: str) -> str:
    """The Python a task itself gives (a stub with its imports and helpers), when it parses."""
    for block in [*code_blocks(task), task]:
        tree = _parses(block)
        if tree is not None and any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
            return block
    return ""


def program(task: str, code: str) -> str:
    """What runs: the task's own code first (its imports and helper functions; its stub is then
    redefined by the answer), then the answer's."""
    given = task_code(task)
    return f"{given.rstrip()}\n\n\n{code.strip()}\n" if given else f"{code.strip()}\n"


def entry_point(task: str) -> str | None:
    """The function a task asks for: the last top-level function its code defines."""
    tree = _parses(task_code(task))
    if tree is None:
        return None
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return names[-1] if names else None
