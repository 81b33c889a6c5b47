"""The streaming Markdown view: what it shows, how it follows, and that scrolling back still works."""

from __future__ import annotations

from textual.app import App, ComposeResult

from facilitair_tui.tui.widgets import stream_view
from facilitair_tui.tui.widgets.stream_view import StreamView


class ViewApp(App[None]):
    CSS = "StreamView { height: 1fr; scrollbar-gutter: stable; }"

    def compose(self) -> ComposeResult:
        yield StreamView()


def shown(view: StreamView) -> list[str]:
    """The text of the lines drawn now (what the user sees, without styles)."""
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


def paragraphs(count: int, start: int = 0) -> str:
    return "".join(f"Paragraph {n} says **something** useful.\n\n" for n in range(start, start + count))


async def test_markdown_is_rendered_block_by_block_as_it_arrives() -> None:
    app = ViewApp()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(StreamView)
        for piece in (
            "#### Chunk 1: Plan\n\nThe plan is **simple**",
            ": one `step`.\n\n```py\n",
            "x = 1\n```\n",
        ):
            view.append(piece)
        await pilot.pause()
        lines = shown(view)
        assert "Chunk 1: Plan" in lines[0]
        assert "The plan is simple: one step." in lines
        assert any(line.strip() == "x = 1" for line in lines)
        assert not any("**" in line or "```" in line for line in lines)
        assert (
            view.source == "#### Chunk 1: Plan\n\nThe plan is **simple**: one `step`.\n\n```py\nx = 1\n```\n"
        )


async def test_it_follows_the_end_until_the_user_scrolls_back_and_again_once_at_the_bottom() -> None:
    app = ViewApp()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(StreamView)
        view.append(paragraphs(30))
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0
        assert not view.has_class("-scrolled-back")

        view.scroll_home(animate=False)
        await pilot.pause()
        view.append(paragraphs(5, start=30))
        await pilot.pause()
        assert view.scroll_y == 0  # the reader stays where they are
        assert view.has_class("-scrolled-back")  # and the scroll bar shows

        view.scroll_end(animate=False)
        await pilot.pause()
        view.append(paragraphs(5, start=35))
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        assert "Paragraph 39 says something useful." in shown(view)


async def test_blocks_dropped_from_the_render_cache_render_again_when_scrolled_back() -> None:
    app = ViewApp()
    async with app.run_test(size=(60, 12)) as pilot:
        view = app.query_one(StreamView)
        view.append(paragraphs(stream_view.RENDERED_BLOCKS * 2))
        await pilot.pause()
        view.scroll_home(animate=False)
        await pilot.pause()
        assert shown(view)[0] == "Paragraph 0 says something useful."
        assert shown(view)[2] == "Paragraph 1 says something useful."


async def test_a_narrower_view_wraps_the_same_text_on_more_lines() -> None:
    app = ViewApp()
    async with app.run_test(size=(80, 12)) as pilot:
        view = app.query_one(StreamView)
        view.append("word " * 60 + "\n\nnext")
        await pilot.pause()
        wide = view.line_count
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert view.line_count > wide
        assert view.virtual_size.height == view.line_count
