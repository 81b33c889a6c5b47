"""Reading the output document in tests: a "## Title" section's text, whatever comes first in it."""

from __future__ import annotations


def section(document: str, title: str) -> str:
    """The text under ``## title`` up to the next level-two heading ("" when there is none)."""
    marker = f"\n## {title}\n"
    start = document.find(marker)
    if start < 0:
        return ""
    body = document[start + len(marker) :]
    end = body.find("\n## ")
    return body if end < 0 else body[:end]
