"""Scripted sessions for the UI tests: deterministic scripts, a fake clock, and a gate.

The scripted workflow runs every role on ``scripted:<role>``, so ``request.model`` names the
role. ``GatedProvider`` plays the same scripts but can stop a call after some deltas until the
test opens the gate: that is how a test holds a session mid-run without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.pilot import Pilot

from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ChatRequest, StreamItem, TextDelta
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import Call, Reply, ScriptedProvider, SingleProviderResolver
from tests.support.scripted import chunk_of

if TYPE_CHECKING:  # the app imports Textual's whole front end
    from facilitair_tui.tui.app import FacilitairApp
    from facilitair_tui.tui.screens.main import MainScreen

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
ROLES = ("architect", "coder", "reviewer")
SYNTH = "synthesizer"
TASK = "Build a URL shortener with a REST API"


def agent_deltas(agent: str, chunk: int, n: int = 6) -> list[str]:
    """Words an agent streams: "architect-1.0 ", "architect-1.1 ", ..."""
    return [f"{agent}-{chunk}.{i} " for i in range(n)]


def synthesis_reply(chunk: int) -> str:
    return (
        "AGREED:\n"
        f"- short codes of 7 characters (chunk {chunk})\n"
        "- store links in SQLite\n"
        "DEBATED:\n"
        f"- caching | architect: add Redis | coder: no cache yet\n"
        "CONFIDENCE: 0.8\n"
        "MERGED:\n"
        f"Merged plan of chunk {chunk}: **short codes**, SQLite, no cache yet."
    )


@dataclass
class Script:
    """Each (agent, chunk) streams its default reply unless ``replies`` overrides it."""

    replies: dict[tuple[str, int], Reply] = field(default_factory=dict)
    failing: dict[str, Reply] = field(default_factory=dict)  # an agent's reply in every chunk

    def reply(self, agent: str, chunk: int) -> Reply:
        if (agent, chunk) in self.replies:
            return self.replies[agent, chunk]
        if agent in self.failing:
            return self.failing[agent]
        if agent == SYNTH:
            return Reply(synthesis_reply(chunk).splitlines(keepends=True))
        return Reply(agent_deltas(agent, chunk))

    def text(self, agent: str, chunk: int) -> str:
        return "".join(self.reply(agent, chunk).deltas)

    def __call__(self, request: ChatRequest) -> Reply:
        return self.reply(request.model, chunk_of(request))


class FakeClock:
    """Advances a fixed step per reading, so every event time is a pure function of the run."""

    def __init__(self, step: float = 0.25) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


Hold = Callable[[ChatRequest], int | None]


class GatedProvider:
    """The scripted provider, except that a call ``hold`` picks stops after that many deltas
    until ``gate`` is set. ``held`` counts the calls waiting at the gate right now."""

    name = "scripted"

    def __init__(self, script: Script, hold: Hold) -> None:
        self.inner = ScriptedProvider(script)
        self.gate = asyncio.Event()
        self.held = 0
        self._hold = hold

    @property
    def calls(self) -> list[Call]:
        return self.inner.calls

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        limit = self._hold(request)
        items = aiter(self.inner.stream(request))
        count = 0
        while True:
            if limit is not None and count >= limit and not self.gate.is_set():
                self.held += 1
                try:
                    await self.gate.wait()
                finally:
                    self.held -= 1
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            if isinstance(item, TextDelta):
                count += 1
            yield item

    async def aclose(self) -> None:
        return None


def hold_at(limits: dict[tuple[str, int], int]) -> Hold:
    """Hold (agent, chunk) after N deltas; every other call runs freely."""
    return lambda request: limits.get((request.model, chunk_of(request)))


def hold_from_chunk(chunk: int) -> Hold:
    """Every call of ``chunk`` and later waits at the gate before its first delta."""
    return lambda request: 0 if chunk_of(request) >= chunk else None


def collaboration(
    provider: ScriptedProvider | GatedProvider, *, clock: FakeClock | None = None, session_id: str = "ui-test"
) -> Collaboration:
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", session_id=session_id)
    # One attempt per call: a scripted failure shows at once (the gateway's retries have their own tests).
    return Collaboration(spec, SingleProviderResolver(provider), clock=clock or FakeClock(), retry=NO_RETRY)


async def wait_until(
    pilot: Pilot[object], condition: Callable[[], bool], what: str, attempts: int = 400
) -> None:
    """Let the app run until ``condition`` holds; fail (saying what) if it never does.

    Each attempt waits for the app to go idle and then a short moment, so scripted streams and
    the screen's frame-sized batches get to run. Only a bound on attempts, never a fixed sleep
    that an assertion depends on.
    """
    for _ in range(attempts):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting until {what}")


async def finished_live(pilot: Pilot[object], app: FacilitairApp) -> MainScreen:
    """The app's live session's screen, once the session has ended."""
    live = app.main_screen
    assert live is not None
    await wait_until(pilot, lambda: live.has_class("-finished"), "the session finished")
    return live
