"""Playing a recorded session back through the same path as a live one.

The main screen consumes an event source: a live ``Collaboration`` or a ``Replay``. Both give
``workflow``, ``events()`` and the controls pause / resume / stop; only a live session takes
feedback. ``Replay`` re-emits the recorded events, sleeping for the recorded gaps between their
``t`` divided by ``speed`` (``INSTANT``: no sleep at all). Pausing holds the stream: the next
recorded event waits until resume, with a ``paused`` / ``resumed`` pair around the hold so the
screen shows the pause like a live one.

No Textual here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Sequence

from pydantic import ValidationError

from .core import events as ev
from .core.workflow import Chunk, Role, Synthesizer, Workflow

INSTANT = math.inf
SPEEDS: dict[str, float] = {"1x": 1.0, "4x": 4.0, "instant": INSTANT}
_RECORDED_PROMPT = "(recorded session)"


def speed_label(speed: float) -> str:
    return "instant" if math.isinf(speed) else f"{speed:g}x"


class ReplayError(ValueError):
    """A recording that cannot be played back (no session_started, or roles we cannot rebuild)."""


def replay_workflow(events: Sequence[ev.Event], known: Iterable[Workflow] = ()) -> Workflow:
    """The workflow a recording ran: a known one with the same name and roles, else rebuilt from
    the events (roles, who read whom, chunk titles; default titles and icons)."""
    started = next((e for e in events if isinstance(e, ev.SessionStarted)), None)
    if started is None or not started.models:
        raise ReplayError("the recording has no session_started event with its roles; it cannot be replayed")
    names = list(started.models)
    for workflow in known:
        ours = workflow.member_names
        if workflow.name == started.workflow and ours == names:
            return workflow
    reads: dict[str, list[str]] = {}
    for event in events:
        if isinstance(event, ev.AgentStarted):
            reads.setdefault(event.agent, list(event.reads))
    *roles, synthesizer = names
    strategy = started.strategy or "recorded"
    try:
        return Workflow(
            name=started.workflow or "recorded",
            default_strategy=strategy,
            roles=tuple(
                Role(
                    name=name,
                    models={strategy: (started.models[name],)},
                    system_prompt=_RECORDED_PROMPT,
                    reads=tuple(r for r in reads.get(name, ()) if r in roles and r != name),
                )
                for name in roles
            ),
            synthesizer=Synthesizer(
                name=synthesizer,
                models={strategy: (started.models[synthesizer],)},
                system_prompt=_RECORDED_PROMPT,
            ),
            chunks=tuple(
                Chunk(id=f"chunk-{i}", title=title, goal=title)
                for i, title in enumerate(started.chunks or ["Session"], start=1)
            ),
        )
    except ValidationError as exc:
        raise ReplayError(f"the recording's roles cannot be rebuilt: {exc.errors()[0]['msg']}") from None


class Replay:
    """A recorded session as an event source. Runs once, like a ``Collaboration``."""

    def __init__(self, events: Sequence[ev.Event], workflow: Workflow, *, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("the replay speed must be positive")
        self.recorded = list(events)
        self.workflow = workflow
        self.speed = speed
        started = next((e for e in self.recorded if isinstance(e, ev.SessionStarted)), None)
        self.task = started.task if started else ""
        self.session_id = self.recorded[0].session_id if self.recorded else "replay"
        self._paused = False
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._stopped = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def complete(self) -> bool:
        """The recording ends with session_finished (an interrupted one does not)."""
        return bool(self.recorded) and isinstance(self.recorded[-1], ev.SessionFinished)

    def pause(self) -> None:
        if not self._stopped:
            self._paused = True
            self._unpaused.clear()

    def resume(self) -> None:
        self._paused = False
        self._unpaused.set()

    def stop(self) -> None:
        """End the replay: no further recorded event is emitted."""
        self._stopped = True
        self.resume()

    async def events(self) -> AsyncIterator[ev.Event]:
        previous_t: float | None = None
        for event in self.recorded:
            if previous_t is not None and not math.isinf(self.speed):
                await asyncio.sleep(max(0.0, event.t - previous_t) / self.speed)
            else:
                await asyncio.sleep(0)  # instant, yet the rest of the app keeps running
            if self._paused and previous_t is not None:  # session_started always comes first
                yield ev.Paused(session_id=self.session_id, t=previous_t or 0.0)
                await self._unpaused.wait()
                if not self._stopped:
                    yield ev.Resumed(session_id=self.session_id, t=previous_t or 0.0)
            if self._stopped:
                return
            previous_t = event.t
            yield event
