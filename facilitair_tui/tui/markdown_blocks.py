"""Split a growing Markdown text into finished blocks and the block still being written.

A streaming pane re-renders only its open block; every finished block is rendered once. A block
ends at a blank line (outside a code fence) once the next line shows it is not a continuation,
or at the line that closes a code fence. In a list, a blank line does not end the block when the
next line is indented (an item's next paragraph, or code under it) or is another item: a loose
list stays one block, so it is numbered and indented as one list.

Work is proportional to the new text: each complete line is looked at once.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r" {0,3}([-*+]|\d{1,9}[.)])(\s|$)")
# A line begun so far that may still turn into a list item ("1", "12.", "-").
_LIST_PREFIX = re.compile(r" {0,3}([-*+]|\d{1,9}[.)]?)")


class MarkdownBlocks:
    """Feed text in pieces; finished blocks come back from ``feed``, the open one is ``tail``."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pending = ""  # the open block: complete lines, then the line being written
        self._scanned = 0  # offset in _pending of the first line not looked at yet
        self._content = False  # the open block has a non-blank line
        self._is_list = False  # the open block started with a list item
        self._blank_at = -1  # offset of the blank line that may end the open block, or -1
        self._fence: str | None = None  # the marker of the open code fence

    @property
    def tail(self) -> str:
        """The block being written (may be empty)."""
        return self._pending

    def feed(self, text: str) -> list[str]:
        """Add ``text``; return the blocks it finished, in order, without their trailing newlines."""
        self._pending += text
        finished: list[str] = []
        while True:
            end = self._pending.find("\n", self._scanned)
            if end < 0:
                break
            line = self._pending[self._scanned : end]
            self._line(line, self._scanned, end + 1, finished)
        begun = self._pending[self._scanned :]
        if self._blank_at >= 0 and begun and not (self._is_list and _LIST_PREFIX.fullmatch(begun)):
            # The next line has begun: its first characters say whether the block goes on.
            self._after_blank(begun, self._scanned, finished)
        return finished

    def finish(self) -> list[str]:
        """End the open block (the stream ended): return it as a finished block, if it has text."""
        block = self._pending.strip("\n")
        self._reset()
        return [block] if block.strip() else []

    # ------------------------------------------------------------------ internals

    def _line(self, line: str, start: int, end: int, finished: list[str]) -> None:
        """Look at the complete line ``_pending[start:end]``."""
        self._scanned = end
        if self._fence is not None:
            stripped = line.strip()
            if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]):
                self._fence = None
                self._cut(end, end, finished)
            return
        if not line.strip():
            if not self._content:
                self._cut(end, end, finished, emit=False)  # leading blank lines are dropped
            elif self._blank_at < 0:
                self._blank_at = start
            return
        if self._blank_at >= 0 and self._after_blank(line, start, finished):
            return
        fence = _FENCE.match(line)
        if fence is not None:
            if self._content:  # a paragraph right above the fence is a block of its own
                self._cut(start, start, finished)
            self._fence = fence.group(1)[0] * len(fence.group(1))
            self._content = True
            return
        if not self._content:
            self._is_list = _LIST_ITEM.match(line) is not None
        self._content = True

    def _after_blank(self, line: str, start: int, finished: list[str]) -> bool:
        """A non-blank line begins after a blank one: end the block before it unless it continues.

        Returns True when it did: the line is then the first of the open block, not scanned yet."""
        continues = self._is_list and (line[:1] in (" ", "\t") or _LIST_ITEM.match(line) is not None)
        blank_at, self._blank_at = self._blank_at, -1
        if continues:
            return False
        self._cut(blank_at, start, finished)
        self._scanned = 0
        return True

    def _cut(self, block_end: int, rest_start: int, finished: list[str], *, emit: bool = True) -> None:
        """Finish the block ``_pending[:block_end]``; the open block restarts at ``rest_start``."""
        block = self._pending[:block_end].rstrip("\n")
        if emit and block.strip():
            finished.append(block)
        self._pending = self._pending[rest_start:]
        self._scanned = max(0, self._scanned - rest_start)
        self._content = False
        self._is_list = False
        self._blank_at = -1
