"""The files a session's stages wrote: each stage's code blocks named (``code_blocks``), the
latest version of each file kept, and each stage's text with its file blocks turned into pointers.

A later stage's version of a file replaces an earlier one (the review gives the final fixes);
only a name a model wrote replaces a file, never a generated one. Python tests go under
``tests/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from . import events as ev
from .code_blocks import CodeBlock, code_blocks, is_python_test, safe_path, where_tests_go
from .session_result import SessionResult, Stage


@dataclass(frozen=True, slots=True)
class CodeFile:
    path: str
    content: str
    language: str
    stage: str  # the title of the stage its final version comes from
    earlier: tuple[str, ...] = ()  # titles of the stages whose versions it replaced
    test: bool = False
    unfinished: bool = False  # its block was never closed: the model was cut writing it

    @property
    def lines(self) -> int:
        return len(self.content.splitlines())


@dataclass(frozen=True, slots=True)
class StageText:
    """A finished stage: its synthesis and its text with each file block replaced by a pointer."""

    stage: Stage
    synthesis: ev.Synthesis
    text: str


@dataclass(frozen=True)
class Collected:
    """The files of a session and its stages' texts, before they are laid out."""

    files: list[CodeFile]
    stages: list[StageText]


_IMPORTED = re.compile(r"^\s*(?:from\s+(\w+)(?:\.\w+)*\s+import|import\s+(\w+))", re.M)


def _unique(candidate: str, taken: set[str], fallback_stem: str) -> str:
    if candidate not in taken:
        return candidate
    path = PurePosixPath(candidate)
    stem = fallback_stem or path.stem
    number = 2
    while (name := str(path.with_name(f"{stem}_{number}{path.suffix}"))) in taken:
        number += 1
    return name


def _clashes(path: str, taken: Iterable[str]) -> bool:
    """A file named like a directory of another (``app`` and ``app/main.py``) cannot be written."""
    for other in taken:
        if other != path and (other.startswith(f"{path}/") or path.startswith(f"{other}/")):
            return True
    return False


def _generated_name(block: CodeBlock, files: Mapping[str, CodeFile]) -> str:
    taken = set(files)
    if block.language == "python" and is_python_test("module.py", block.content):
        stems = {PurePosixPath(p).stem for p, f in files.items() if not f.test and p.endswith(".py")}
        imported = [a or b for a, b in _IMPORTED.findall(block.content)]
        subject = next((name for name in imported if name in stems), "main")
        return _unique(f"tests/test_{subject}.py", taken, f"test_{subject}")
    stem, extension = block.generated_stem, block.extension
    name = f"{stem}.{extension}" if extension else stem
    return _unique(name, taken, "module" if extension else stem)


def collect(result: SessionResult) -> Collected:
    """Every file the session's stages wrote (the latest version of each) and their texts."""
    files: dict[str, CodeFile] = {}
    # Where each file's latest version is: (chunk, the line its block starts on).
    latest: dict[str, tuple[int, int]] = {}
    placed: list[tuple[Stage, ev.Synthesis, list[str], dict[int, tuple[CodeBlock, str]]]] = []
    for stage, synthesis in result.finished():
        lines, blocks = code_blocks(synthesis.text)
        named: dict[int, tuple[CodeBlock, str]] = {}
        for block in (b for b in blocks if b.is_file):
            path = block.path
            if path is not None and block.language == "python" and is_python_test(path, block.content):
                path = safe_path(where_tests_go(path))
            if path is None or _clashes(path, files):
                path = _generated_name(block, files)
            earlier = files.get(path)
            history = () if earlier is None else (*earlier.earlier, earlier.stage)
            files[path] = CodeFile(
                path=path,
                content=block.content,
                language=block.language,
                stage=stage.title,
                earlier=tuple(dict.fromkeys(title for title in history if title != stage.title)),
                test=block.language == "python" and is_python_test(path, block.content),
                unfinished=not block.fence.closed,
            )
            latest[path] = (stage.number, block.first_line)
            named[block.first_line] = (block, path)
        placed.append((stage, synthesis, lines, named))
    texts = []
    for stage, synthesis, lines, named in placed:
        pointers = {
            start: (block.fence.closing, _pointer(path, files[path], latest[path] == (stage.number, start)))
            for start, (block, path) in named.items()
        }
        texts.append(StageText(stage, synthesis, _with_pointers(lines, pointers)))
    return Collected(list(files.values()), texts)


def _pointer(path: str, final: CodeFile, is_latest: bool) -> str:
    if is_latest:
        return f"→ `{path}`"
    return f"→ `{path}` (an earlier version; the file has the one from {final.stage})"


def _with_pointers(lines: list[str], pointers: Mapping[int, tuple[int, str]]) -> str:
    """``lines`` with each file's block (from its first line to its closing fence) a pointer."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index in pointers:
            closing, pointer = pointers[index]
            out.append(pointer)
            index = closing + 1
            continue
        out.append(lines[index])
        index += 1
    return "\n".join(out).strip()
