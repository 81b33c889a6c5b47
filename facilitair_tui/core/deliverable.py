"""What a session delivers: one coherent document, and the files to write (code, tests, README).

Built from the session's syntheses alone (no I/O, no model): the stages' merged texts, the code
blocks in them named as files (``code_blocks``, ``stage_files``), the tests under ``tests/``, the
review's open points (``deliverable_layout`` lays them out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .deliverable_layout import document, readme
from .session_result import SessionResult
from .stage_files import CodeFile, collect


@dataclass(frozen=True)
class Deliverable:
    document: str  # the session's output: one Markdown document
    files: dict[str, str]  # relative POSIX path -> content: the code, the tests and README.md
    code_files: tuple[CodeFile, ...]
    complete: bool


def build_deliverable(result: SessionResult, *, notes: Sequence[str] = ()) -> Deliverable:
    """The document and the files of ``result``; ``notes`` go under the document's title."""
    collected = collect(result)
    files = {f.path: f.content for f in collected.files}
    files["README.md"] = readme(result, collected)
    return Deliverable(
        document=document(result, collected, notes),
        files=files,
        code_files=tuple(collected.files),
        complete=result.complete,
    )
