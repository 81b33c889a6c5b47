"""How a collaboration's events reach its consumer: in the order things happened, tokens merged,
held back while paused, and with backpressure on the model calls when the consumer lags.

Tokens travel through the native ``StreamRouter``: each delta is pushed there (the agents that
read this one take its partial text from it) and the consumer drains it when it asks for the
next event, so the deltas that piled up while it was busy come as one ``token`` event per run
of one agent. Every other event is queued with the router's sequence number at the moment it
was made, and only the deltas pushed before that point are delivered before it: the order is
the order things happened. While paused the router holds the deltas; once its capacity
(``TOKEN_BUFFER`` by default) is reached (the consumer lags, or the pause lasts), the model
calls stop reading their streams until the consumer makes room.

A pause holds back everything made meanwhile except controls (feedback, budget questions and
answers); on resume, what came before the pause goes first, then the ``resumed`` event, then
what was held, its tokens in place.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from facilitair_tui._native import StreamRouter

from . import events as ev

# Undelivered deltas at which model calls stop reading their streams until the consumer drains:
# a few seconds of every agent streaming at once, far more than a consumer that keeps up lets
# pile up, little memory.
TOKEN_BUFFER = 1024


class EventStream:
    """One session's events on their way to the consumer, and every agent's partial text.

    Producers ``emit`` events and ``push`` deltas; the consumer takes ``deliverable`` events,
    calling ``deliver_pending`` when it is empty and ``wait_for_events`` when that finds nothing.
    """

    def __init__(self, session_id: str, clock: Callable[[], float], capacity: int = TOKEN_BUFFER) -> None:
        self.session_id = session_id
        self._clock = clock
        self._t0 = clock()
        # The agents' partial texts of the running chunk, and the deltas not yet delivered.
        self.router = StreamRouter(capacity=capacity)
        # Events other than tokens, each with the router's sequence number when it was made: the
        # deltas before that number are delivered before it.
        self._outbox: deque[tuple[int, ev.Event]] = deque()
        # Events in delivery order, not yet taken by the consumer.
        self.deliverable: deque[ev.Event] = deque()
        # The consumer, when it waits for something to deliver.
        self._waiter: asyncio.Future[None] | None = None
        # Set while the router has room; producers wait on it when it has none.
        self._room = asyncio.Event()
        self._room.set()
        # The chunk of the tokens being delivered: the last chunk_started delivered.
        self._token_chunk = 0
        self._held: list[tuple[int, ev.Event]] = []  # made while paused, with their sequence numbers
        self._hold_seq = 0  # the router's sequence number when the pause began
        self.paused = False
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self.started = False  # session_started is out; ``open`` sets it
        # Control events from before session_started, which always comes first, wait for it.
        self._early: list[ev.Event] = []

    # ----------------------------------------------------------------- time

    def start_clock(self) -> None:
        """Event times count from here (the consumer starts iterating)."""
        self._t0 = self._clock()

    def now(self) -> float:
        return round(self._clock() - self._t0, 6)

    # ----------------------------------------------------------------- producers

    def open(self, started: ev.SessionStarted) -> None:
        """Deliver ``session_started``, then the controls that came before it."""
        self.started = True
        self.deliver(started)
        for event in self._early:  # pause / resume / feedback that came before the first step
            self.deliver(event)
        self._early.clear()

    def push(self, agent: str, text: str) -> Awaitable[None] | None:
        """One delta of ``agent``; returns what to await before reading on when the buffer is full."""
        room = self.router.push(agent, text, self.now())
        waiter = self._waiter
        if waiter is not None and not self.paused and not waiter.done():
            waiter.set_result(None)
        return None if room else self._wait_for_room()

    def emit(self, event: ev.Event) -> None:
        event.t = self.now()
        self.deliver_or_hold(event)

    def deliver_or_hold(self, event: ev.Event, *, control: bool = False) -> None:
        """Deliver ``event``, or hold it until resume when paused (controls are never held)."""
        if self.paused and not control:
            self._held.append((self.router.next_seq(), event))
        else:
            self.deliver(event)

    def deliver(self, event: ev.Event) -> None:
        """Queue an event after the deltas pushed so far (while paused: after those before the pause)."""
        if not self.started:
            self._early.append(event)
            return
        seq = self._hold_seq if self.paused else self.router.next_seq()
        self._outbox.append((seq, event))
        self._wake_consumer()

    async def _wait_for_room(self) -> None:
        """Hold a model call's stream until the consumer has drained the router below capacity."""
        while not self.router.has_room():
            self._room.clear()
            await self._room.wait()

    # ----------------------------------------------------------------- pause

    def pause(self) -> None:
        if self.paused:
            return
        self.paused = True
        self._unpaused.clear()
        self.router.hold()
        self._hold_seq = self.router.next_seq()
        self.deliver(ev.Paused(session_id=self.session_id, t=self.now()))

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        # What came before the pause goes first (the consumer may not have taken it yet), then
        # the resumed event, then what was held: its tokens, one per run of an agent, in place.
        self.deliver_pending()
        self.router.release()
        held: list[ev.Event] = []
        for seq, event in self._held:
            self._drain_tokens(seq, held)
            self._place(event, held)
        self._drain_tokens(None, held)
        self._held.clear()
        self.deliverable.append(ev.Resumed(session_id=self.session_id, t=self.now(), held=len(held)))
        self.deliverable.extend(held)
        self._made_room()
        self._wake_consumer()
        self._unpaused.set()

    async def wait_unpaused(self) -> None:
        # A loop, not one wait: resume() wakes the waiters, but a pause() before they run must
        # still hold them.
        while self.paused:
            await self._unpaused.wait()

    # ----------------------------------------------------------------- consumer

    def deliver_pending(self) -> None:
        """Move everything deliverable now (nothing held) to the consumer's side, in order."""
        deliverable = self.deliverable
        outbox = self._outbox
        while outbox:
            seq, event = outbox.popleft()
            self._drain_tokens(seq, deliverable)
            self._place(event, deliverable)
        self._drain_tokens(None, deliverable)
        self._made_room()

    async def wait_for_events(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _drain_tokens(self, before: int | None, into: deque[ev.Event] | list[ev.Event]) -> None:
        """Token events for the router's deltas before sequence number ``before`` (all: None)."""
        sid, chunk = self.session_id, self._token_chunk
        for agent, text, _seq, count, t in self.router.drain(before):
            into.append(ev.Token(session_id=sid, agent=agent, chunk=chunk, text=text, t=t, deltas=count))

    def _place(self, event: ev.Event, into: deque[ev.Event] | list[ev.Event]) -> None:
        if isinstance(event, ev.ChunkStarted):
            self._token_chunk = event.chunk
        into.append(event)

    def _wake_consumer(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _made_room(self) -> None:
        if not self._room.is_set() and self.router.has_room():
            self._room.set()
