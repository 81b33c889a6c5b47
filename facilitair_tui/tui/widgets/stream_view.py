"""A scrolling view of streamed Markdown whose cost per update does not grow with what it holds.

Textual's ``Markdown`` widget re-parses its whole document on every append and mounts a widget
per block, so a pane that has shown a long answer gets slower with every token. This view splits
the text into blocks as it arrives (``MarkdownBlocks``). A finished block is rendered once, with
Rich's Markdown (highlighted code included), to learn its height; only the open block is rendered
again when text arrives. Drawing is the Line API: a frame crops the lines it shows.

Rendered lines are kept only for the blocks drawn lately (an LRU): a long session holds its
blocks' text and heights, not hundreds of thousands of rendered segments, so memory and the
garbage collector's pauses do not grow with the answer. Scrolling back renders a block again.

It follows the end of the text while the user is at the bottom, and stays where they are once
they scroll up. The scroll bar shows only then (or under the mouse): while the view follows a
stream it would move every frame, and drawing it cost as much as the text. A width change (a
resize) renders every block again to learn the new heights.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from facilitair_tui.tui.markdown_blocks import MarkdownBlocks

DARK_CODE_THEME = "monokai"
LIGHT_CODE_THEME = "friendly"
# Rendered blocks kept; a screenful is a handful of blocks, scrolling back renders again.
RENDERED_BLOCKS = 32


def _is_bare_blank(line: list[Segment], style: Style) -> bool:
    """A line of spaces on the view's own background (not, say, a code block's padding)."""
    return all(
        not segment.text.strip() and (segment.style is None or segment.style.bgcolor == style.bgcolor)
        for segment in line
    )


class StreamView(ScrollView, can_focus=True):
    """Append Markdown text in pieces; it shows as rendered Markdown, blocks one blank line apart."""

    ALLOW_SELECT = False

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._source: list[str] = []
        self._blocks = MarkdownBlocks()
        self._finished: list[str] = []  # the finished blocks' sources
        self._starts: list[int] = []  # the line each finished block starts at (its separator)
        self._height = 0  # lines of the finished blocks, separators included
        self._tail: list[Strip] = []  # the open block, rendered
        self._rendered: LRUCache[int, list[Strip]] = LRUCache(RENDERED_BLOCKS)
        self._width = 0  # the width blocks were measured at; 0 while the view has no size
        self._code_theme = DARK_CODE_THEME
        self._style: Style | None = None  # the widget's own style, computed once per style change

    @property
    def source(self) -> str:
        """Every piece appended so far."""
        return "".join(self._source)

    @property
    def line_count(self) -> int:
        return self._height + len(self._tail)

    def append(self, text: str) -> None:
        if not text:
            return
        self._source.append(text)
        finished = self._blocks.feed(text)
        width = self._render_width()
        if width != self._width:
            self._finished += finished
            self._measure_all(width)
        elif width:
            for block in finished:
                self._add_finished(block)
            self._tail = self._render_markdown(self._blocks.tail, separated=bool(self._finished))
        else:
            self._finished += finished
        self._update_size()

    # ------------------------------------------------------------------ rendering

    def _render_width(self) -> int:
        return max(0, self.scrollable_content_region.width)

    def _render_markdown(self, block: str, *, separated: bool) -> list[Strip]:
        """A block's lines at the current width, after a blank line when ``separated``: padded to
        the width and in the view's own style, ready to draw as they are."""
        if not block.strip():
            return []
        renderable = RichMarkdown(block, code_theme=self._code_theme, hyperlinks=False)
        console = self.app.console
        options = console.options.update_width(self._width)
        style = self._base_style()
        lines = console.render_lines(renderable, options, style=style, pad=True)
        while lines and _is_bare_blank(lines[0], style):  # Rich opens a list with a blank line
            del lines[0]
        strips = [Strip(line, self._width) for line in lines]
        return [Strip.blank(self._width, style), *strips] if separated else strips

    def _base_style(self) -> Style:
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def _add_finished(self, block: str) -> None:
        index = len(self._finished)
        self._finished.append(block)
        lines = self._render_markdown(block, separated=index > 0)
        self._rendered[index] = lines
        self._starts.append(self._height)
        self._height += len(lines)

    def _measure_all(self, width: int) -> None:
        """Render every block at ``width`` (0: forget them until the view has a size)."""
        self._width = width
        self._rendered.clear()
        self._tail = []
        heights = []
        if width:
            for index, block in enumerate(self._finished):
                lines = self._render_markdown(block, separated=index > 0)
                self._rendered[index] = lines
                heights.append(len(lines))
            self._tail = self._render_markdown(self._blocks.tail, separated=bool(self._finished))
        self._starts = [0, *accumulate(heights)][: len(heights)]
        self._height = sum(heights)

    def _block_lines(self, index: int) -> list[Strip]:
        lines = self._rendered.get(index)
        if lines is None:
            lines = self._render_markdown(self._finished[index], separated=index > 0)
            self._rendered[index] = lines
        return lines

    def _update_size(self) -> None:
        following = self.is_vertical_scroll_end
        self.virtual_size = Size(self._width, self.line_count)
        if following:
            if self.allow_vertical_scroll:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
            else:  # the text just overflowed: scrolling is allowed once the layout knows it
                self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.set_class(not self.is_vertical_scroll_end, "-scrolled-back")

    def on_resize(self) -> None:
        width = self._render_width()
        if width != self._width:
            self._measure_all(width)
            self._update_size()

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._theme_changed, init=True)

    def _theme_changed(self) -> None:
        theme = DARK_CODE_THEME if self.app.current_theme.dark else LIGHT_CODE_THEME
        if theme != self._code_theme:
            self._code_theme = theme
            self._measure_all(self._width)
            self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self._style is not None and self.rich_style != self._style:
            # Lines carry the style: render again (the tail now, finished blocks when drawn).
            self._style = None
            self._rendered.clear()
            if self._width:
                self._tail = self._render_markdown(self._blocks.tail, separated=bool(self._finished))
            self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index < self._height:
            block = bisect_right(self._starts, index) - 1
            strip = self._block_lines(block)[index - self._starts[block]]
        elif index - self._height < len(self._tail):
            strip = self._tail[index - self._height]
        else:
            return Strip.blank(width, self._base_style())
        if scroll_x == 0 and strip.cell_length == width:
            return strip
        return strip.crop_extend(scroll_x, scroll_x + width, self._base_style())
