"""Splitting the final output into the Code / Architecture / Review notes tabs."""

from __future__ import annotations

from facilitair_tui.tui.widgets.final_output import split_output

DONE = """## Requirements

- short links

## Architecture

A service and SQLite.

## Implementation

```python
## not a heading: inside code
print("hi")
```

## Review

Looks fine."""


def test_sections_go_to_their_tabs() -> None:
    sections = split_output(DONE)
    assert sections.matched
    code = sections.text("output-code")
    assert code.startswith("## Implementation") and "## not a heading: inside code" in code
    assert 'print("hi")' in code and "Looks fine" not in code
    architecture = sections.text("output-architecture")
    assert "## Requirements" in architecture and "## Architecture" in architecture
    assert architecture.index("Requirements") < architecture.index("A service")
    assert sections.text("output-review") == "## Review\n\nLooks fine."


def test_an_interrupted_section_goes_where_its_stage_goes() -> None:
    output = "## Requirements\n\nok\n\n## Architecture (interrupted)\n\n### Architect (unfinished)\n\nhalf"
    sections = split_output(output)
    assert "## Architecture (interrupted)" in sections.text("output-architecture")
    assert "half" in sections.text("output-architecture")
    assert sections.text("output-code") == ""


def test_nothing_matches_when_there_are_no_known_sections() -> None:
    assert not split_output("just some text\n\n## Something else\n\nmore").matched
    assert not split_output("").matched


def test_the_deliverables_own_sections_go_to_their_tabs() -> None:
    document = (
        "# Task\n\n## Context\n\n- language: python\n\n## Requirements\n\nshort links\n\n"
        "## Implementation\n\n→ `app.py`\n\n## Code\n\n### `app.py`\n\n```python\n## not a heading\n```\n\n"
        "## Tests\n\n### `tests/test_app.py`\n\n```python\ndef test_x(): ...\n```\n\n"
        "## Review\n\nfixed\n\n## Open points\n\n- caching"
    )
    sections = split_output(document)
    code = sections.text("output-code")
    assert code.index("## Implementation") < code.index("## Code") < code.index("## Tests")
    assert "## not a heading" in code and "def test_x" in code
    assert sections.text("output-review") == "## Review\n\nfixed\n\n## Open points\n\n- caching"
    assert "Context" not in sections.text("output-architecture")  # the full tab has it
