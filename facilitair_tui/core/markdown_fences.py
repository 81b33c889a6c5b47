"""Fenced code blocks in a model's Markdown, found the CommonMark way and nothing more.

A fence opens with three or more backticks or tildes, up to three spaces in; a backtick fence's
info string has no backtick. It closes with a run of the same character at least as long and
nothing after it; a fence never closed runs to the end of the text (a model cut at its token
limit leaves one open). Lines inside a fence are never Markdown structure: not a heading, not a
section of the synthesis format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}(?=[^`]*$)|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced block: the indexes of its opening and closing lines (``closing`` is the number
    of lines when it is never closed), its info string as written (``python app.py``) and how
    far in its opening line starts (CommonMark takes as much off each of its lines)."""

    opening: int
    closing: int
    info: str
    indent: int = 0
    closed: bool = True

    @property
    def language(self) -> str:
        """The info string's first word, lowercased: ``python`` in "```Python app.py"."""
        words = self.info.split()
        return words[0].lower() if words else ""

    def body(self, lines: Sequence[str]) -> list[str]:
        """The block's lines, without the fences and without the opening line's indentation."""
        inner = lines[self.opening + 1 : self.closing]
        if not self.indent:
            return list(inner)
        return [_outdent(line, self.indent) for line in inner]


def _outdent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def fences(lines: Sequence[str]) -> Iterator[Fence]:
    """Every fenced block of ``lines``, in order (a fence inside a fence is its content)."""
    index = 0
    while index < len(lines):
        opened = _FENCE_OPEN.match(lines[index])
        if opened is None:
            index += 1
            continue
        marker = opened.group(2)
        closing = index + 1
        while closing < len(lines):
            closed = _FENCE_CLOSE.match(lines[closing])
            if closed and closed.group(1)[0] == marker[0] and len(closed.group(1)) >= len(marker):
                break
            closing += 1
        yield Fence(
            opening=index,
            closing=closing,
            info=opened.group(3).strip(),
            indent=len(opened.group(1)),
            closed=closing < len(lines),
        )
        index = closing + 1


def fenced_lines(lines: Sequence[str], found: Sequence[Fence]) -> list[bool]:
    """For each line, whether it belongs to one of the fences ``found`` (its fence lines too)."""
    inside = [False] * len(lines)
    for fence in found:
        for index in range(fence.opening, min(fence.closing + 1, len(lines))):
            inside[index] = True
    return inside
