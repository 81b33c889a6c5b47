"""Facts about the scripted test workflow (tests/data/scripted_workflow.toml) that tests share.

The prompt wording matched here is the engine's (facilitair_tui/core/prompts.py); keeping the
match in one place means a wording change touches one test helper, not every suite.
"""

from __future__ import annotations

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration
from facilitair_tui.core.provider import ChatRequest
from facilitair_tui.store import SessionStore

TITLES = ("Requirements", "Architecture", "Implementation", "Review")


def chunk_of(request: ChatRequest) -> int:
    """The 1-based chunk a request belongs to, read from its prompt (an agent's system message
    names the stage, the synthesizer's request names the stage to merge)."""
    for message in reversed(request.messages):  # the latest first: a worked example comes before
        for index, title in enumerate(TITLES, start=1):
            markers = (f"Current stage: {title}. ", f"Stage to merge: {title}. ")
            if any(marker in message.content for marker in markers):
                return index
    raise AssertionError(f"no chunk in prompt: {request.messages!r}")


async def record_cut(store: SessionStore, collaboration: Collaboration, chunks_done: int) -> str:
    """Run a whole session but record it only to the end of chunk ``chunks_done``, then let go
    of it without ``session_finished``: what a crash after that chunk leaves in the store."""
    recorder = store.recorder(collaboration.spec, collaboration.session_id)
    syntheses = 0
    async for event in collaboration.events():
        if syntheses < chunks_done:
            recorder.record(event)
        syntheses += isinstance(event, ev.Synthesis)
    recorder.close()
    return collaboration.session_id
