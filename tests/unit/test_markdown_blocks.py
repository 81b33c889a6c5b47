"""The splitter behind the streaming panes: which text becomes a finished block, and when."""

from __future__ import annotations

import random

import pytest

from facilitair_tui.tui.markdown_blocks import MarkdownBlocks

DOCUMENT = """#### Chunk 1: Requirements

The API issues a token.
Second line of the paragraph.

1. **First** item
2. Second item

   More about the second item.

3. Third
- a bullet right after
Here is code:
```python
def f():

    return 1
```
After the code.


The last paragraph"""

BLOCKS = [
    "#### Chunk 1: Requirements",
    "The API issues a token.\nSecond line of the paragraph.",
    "1. **First** item\n2. Second item\n\n   More about the second item.\n\n3. Third\n- a bullet right after"
    "\nHere is code:",
    "```python\ndef f():\n\n    return 1\n```",
    "After the code.",
]


def feed_all(pieces: list[str]) -> tuple[list[str], str]:
    blocks = MarkdownBlocks()
    finished = [block for piece in pieces for block in blocks.feed(piece)]
    return finished, blocks.tail


def test_a_whole_document_splits_into_its_blocks_and_an_open_tail() -> None:
    finished, tail = feed_all([DOCUMENT])
    assert finished == BLOCKS
    assert tail == "The last paragraph"


@pytest.mark.parametrize("seed", range(40))
def test_the_blocks_do_not_depend_on_how_the_stream_was_cut(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(DOCUMENT)), rng.randint(1, 60)))
    pieces = [DOCUMENT[a:b] for a, b in zip([0, *cuts], [*cuts, len(DOCUMENT)], strict=True)]
    assert feed_all(pieces) == (BLOCKS, "The last paragraph")


def test_character_by_character_too() -> None:
    assert feed_all(list(DOCUMENT)) == (BLOCKS, "The last paragraph")


def test_a_blank_line_inside_a_fence_does_not_end_the_block() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("```\nline one\n\n") == []
    assert blocks.feed("line two\n") == []
    assert blocks.feed("```\n") == ["```\nline one\n\nline two\n```"]


def test_a_fence_closes_only_with_its_own_marker_and_length() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("````md\n```\nnested\n```\n") == []
    assert blocks.feed("````\n") == ["````md\n```\nnested\n```\n````"]


def test_a_paragraph_waits_for_the_next_line_to_begin() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("One.\n\n") == []  # the next line may still continue a list
    assert blocks.feed("T") == ["One."]
    assert blocks.tail == "T"


def test_a_list_waits_until_the_next_line_shows_it_is_not_an_item() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("1. one\n\n1") == []  # "1" may become "12. twelve"
    assert blocks.feed("2. two\n\nDone") == ["1. one\n\n12. two"]
    assert blocks.tail == "Done"


def test_leading_blank_lines_are_dropped_and_finish_ends_the_open_block() -> None:
    blocks = MarkdownBlocks()
    assert blocks.feed("\n\n\nHello") == []
    assert blocks.tail == "Hello"
    assert blocks.finish() == ["Hello"]
    assert blocks.tail == ""
    assert blocks.finish() == []
