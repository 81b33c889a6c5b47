"""Driving a session to its end with every event recorded in the session store before anyone sees
it: what ``facilitair collaborate`` (and a resume or fork) and ``facilitair eval``'s team share,
so an eval's sessions are recorded, replayed and continued exactly like the others.

No UI here: the front end says how a problem with the store is shown (``warn``), who answers the
budget guard, and what a Ctrl-C does (it calls the source's ``stop``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .core import events as ev
from .core.budget import BudgetChoice
from .core.orchestrator import Collaboration
from .library import EventSink
from .replay import Replay
from .store import StoreError

Sink = Callable[[ev.Event], None]
# What ``drive`` feeds: a sink, or one that returns what to await before the next event (a barrier).
Feed = Callable[[ev.Event], Awaitable[None] | None]
BudgetAnswer = Callable[[ev.BudgetExceeded], Awaitable[BudgetChoice]]


def recorded(recorder: EventSink, show: Sink, warn: Callable[[str], None]) -> Feed:
    """Record each event, then show it. A store that cannot write never stops the session (the
    writer keeps the events and retries, or puts them in the session's unsaved file); each
    problem is passed to ``warn`` once."""
    said: set[str] = set()
    recording: EventSink | None = recorder

    async def sink(event: ev.Event) -> None:
        nonlocal recording
        problem = None
        if recording is not None:
            try:
                await recording.record_async(event)  # Ctrl-C still works while a barrier waits
                problem = recording.problem
            except StoreError as exc:
                problem, recording = f"{exc}; this session is not recorded", None
        if problem and problem not in said:
            said.add(problem)
            warn(problem)
        show(event)

    return sink


async def stop_at_budget(alert: ev.BudgetExceeded) -> BudgetChoice:
    """The budget guard's answer when nobody can be asked: stop, never go past it unasked."""
    return "stop"


async def drive(
    source: Collaboration | Replay,
    sink: Feed,
    aclose: Callable[[], object],
    answer: BudgetAnswer | None,
) -> ev.SessionFinished | None:
    """Feed every event to ``sink``, answer the budget guard with ``answer``, and close with
    ``aclose`` whatever happens; the closing event (None when the source ended without one)."""
    final: ev.SessionFinished | None = None
    try:
        async for event in source.events():
            if (shown := sink(event)) is not None:
                await shown
            if (
                isinstance(event, ev.BudgetExceeded)
                and isinstance(source, Collaboration)
                and source.awaiting_budget
                and answer is not None
            ):
                source.decide_budget(await answer(event))
            if isinstance(event, ev.SessionFinished):
                final = event
    except BrokenPipeError:
        source.stop()
    finally:
        result = aclose()
        if asyncio.iscoroutine(result):
            await result
    return final
