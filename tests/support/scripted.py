"""Facts about the scripted test workflow (tests/data/scripted_workflow.toml) that tests share.

The prompt wording matched here is the engine's (facilitair_tui/core/prompts.py); keeping the
match in one place means a wording change touches one test helper, not every suite.
"""

from __future__ import annotations

from facilitair_tui.core.provider import ChatRequest

TITLES = ("Requirements", "Architecture", "Implementation", "Review")


def chunk_of(request: ChatRequest) -> int:
    """The 1-based chunk a request belongs to, read from its prompt."""
    text = request.messages[-1].content
    for index, title in enumerate(TITLES, start=1):
        if f"Current stage: {title}. " in text or f"Stage to merge: {title}. " in text:
            return index
    raise AssertionError(f"no chunk in prompt: {text!r}")
