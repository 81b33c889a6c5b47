"""The engine: runs a workflow chunk by chunk, agents concurrently, and emits typed events.

Per chunk, every role starts at once. A role that reads another waits until each upstream has
streamed ``read_after_tokens`` deltas (or finished), then starts with that partial text in its
prompt, while the upstream keeps going. When all roles are done, the synthesizer merges their
outputs; its synthesis, with the earlier ones, is the context of the next chunk.

Controls are safe at any moment:

* ``pause()``: no new model call starts; events produced meanwhile are held back from the
  consumer and delivered, in order, right after the ``resumed`` event. Running calls go on
  until the token buffer is full, then wait (see below).
* ``inject_feedback(text, "next_chunk" | "now")``: "now" cancels the running chunk's generations
  and restarts them with the feedback and their partial output in the prompt.
* ``stop()``: cancels everything and finishes with status ``stopped`` and the partial output.

Statuses are never invented: every event reports something that happened.

Tokens travel through the native ``StreamRouter``: each delta is pushed there (the agents that
read this one take its partial text from it) and the consumer drains it when it asks for the
next event, so the deltas that piled up while it was busy come as one ``token`` event per run
of one agent. Every other event is queued with the router's sequence number at the moment it
was made, and only the deltas pushed before that point are delivered before it: the order is
the order things happened. While paused the router holds the deltas; once ``TOKEN_BUFFER`` are
waiting (the consumer lags, or the pause lasts), the model calls stop reading their streams
until the consumer makes room.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from facilitair_tui._native import StreamRouter

from . import events as ev
from .budget import Budget, BudgetChoice, CallEstimate, forecast_usd, unpriced
from .cache import CachedAnswer, CacheMiss, SolutionCache, SolvedSession
from .cost import PriceTable, add_costs
from .gateway import (
    Billed,
    Gateway,
    GatewayItem,
    ProviderLimit,
    RetryPolicy,
    TokenCounter,
    rough_token_count,
)
from .prompts import ChunkRecord, agent_messages, synthesis_messages
from .provider import (
    ChatMessage,
    ChatRequest,
    ConfigurationError,
    ModelRef,
    ProviderError,
    ProviderResolver,
    TextDelta,
    Usage,
)
from .session_spec import MAX_TASK_CHARS, Continuation, SessionSpec
from .synthesis import ParsedSynthesis, fallback_synthesis, parse_synthesis
from .workflow import Chunk, Role

# What the rest of the program imports from here: the engine and its request.
__all__ = ["MAX_TASK_CHARS", "TOKEN_BUFFER", "Collaboration", "Continuation", "SessionSpec"]

# Undelivered deltas at which model calls stop reading their streams until the consumer drains:
# a few seconds of every agent streaming at once, far more than a consumer that keeps up lets
# pile up, little memory.
TOKEN_BUFFER = 1024
# Tokens of a prompt besides the system prompt, task and upstream text (stage, instructions).
PROMPT_FRAME_TOKENS = 200


@dataclass
class _AgentResult:
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    status: ev.AgentStatus = "done"


class Collaboration:
    """One run of a workflow on a task. Iterate ``events()`` to drive it."""

    def __init__(
        self,
        spec: SessionSpec,
        resolver: ProviderResolver,
        *,
        prices: PriceTable | None = None,
        clock: Callable[[], float] = time.perf_counter,
        retry: RetryPolicy | None = None,
        limits: Mapping[str, ProviderLimit] | None = None,
        budget: Budget | None = None,
        usable: Callable[[ModelRef], bool] | None = None,
        count_tokens: TokenCounter | None = None,
        token_buffer: int = TOKEN_BUFFER,
        cache: SolutionCache | None = None,
        cache_pace_s: float = 0.0,
    ) -> None:
        """``usable`` tells whether a model can run here (its key set, its file installed); the
        budget guard uses it to offer a cheaper strategy. Without it every model counts.
        ``token_buffer``: undelivered deltas at which the model calls wait for the consumer.
        ``cache``: asked before any agent starts; a hit is played (``cache_pace_s`` between its
        chunks, 0 for all at once) instead of calling a model, and a session that finishes
        ``done`` is stored in it."""
        self.spec = spec
        self.workflow = spec.workflow
        self.models = spec.models()
        self.session_id = spec.session_id or uuid.uuid4().hex[:16]
        self._gateway = Gateway(
            resolver, retry or RetryPolicy(), limits, count_tokens=count_tokens or rough_token_count
        )
        self._fallbacks: dict[str, tuple[ModelRef, ...]] = {k: tuple(v) for k, v in spec.fallbacks.items()}
        self.budget = budget or Budget()
        self._budget_decision: asyncio.Future[BudgetChoice] | None = None
        self._budget_warned = False
        self._usable = usable or (lambda ref: True)
        self._offered: str | None = None  # the cheaper strategy the guard offered last
        self._last_input: dict[str, int] = {}  # each agent's input tokens in its latest call
        self._chunk_output: dict[int, int] = {}  # output tokens written per chunk
        self._prices = prices or PriceTable()
        self._clock = clock
        self._t0 = clock()
        self._seq = 0
        self._router = StreamRouter(capacity=token_buffer)
        # Events other than tokens, each with the router's sequence number when it was made: the
        # deltas before that number are delivered before it.
        self._outbox: deque[tuple[int, ev.Event]] = deque()
        # Events in delivery order, not yet taken by the consumer.
        self._deliverable: deque[ev.Event] = deque()
        # The consumer, when it waits for something to deliver.
        self._waiter: asyncio.Future[None] | None = None
        # Set while the router has room; producers wait on it when it has none.
        self._room = asyncio.Event()
        self._room.set()
        # The chunk of the tokens being delivered: the last chunk_started delivered.
        self._token_chunk = 0
        self._held: list[tuple[int, ev.Event]] = []  # made while paused, with their sequence numbers
        self._hold_seq = 0  # the router's sequence number when the pause began
        self._paused = False
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._history: list[ChunkRecord] = []
        self._syntheses: list[ev.Synthesis] = []
        self._cache = cache
        self._cache_pace_s = max(0.0, cache_pace_s)
        self._served: CachedAnswer | None = None
        self._results: list[_AgentResult] = []
        self._feedback_next: list[str] = []
        # Feedback for a later chunk, known before the run (a continuation's), by chunk number.
        self._feedback_planned: dict[int, list[str]] = {}
        self._feedback_now: list[str] = []
        self._chunk_task: asyncio.Task[dict[str, str]] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._current_chunk = 0
        self._ready: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._started = False  # the run task has taken its first step
        # Control events from before that step wait for session_started, which always comes first.
        self._early: list[ev.Event] = []
        self._finished = False

    # ----------------------------------------------------------------- consumer side

    async def events(self) -> AsyncIterator[ev.Event]:
        """Run the collaboration, yielding events until ``session_finished``."""
        if self._run_task is not None:
            raise RuntimeError("a Collaboration runs once; create another to run again")
        self._t0 = self._clock()
        self._run_task = asyncio.create_task(self._run(), name=f"collaboration-{self.session_id}")
        deliverable = self._deliverable
        try:
            while True:
                if not deliverable:
                    self._deliver_pending()
                    if not deliverable:
                        await self._wait_for_events()
                        continue
                event = deliverable.popleft()
                self._seq += 1
                event.seq = self._seq
                yield event
                if isinstance(event, ev.SessionFinished):
                    return
        finally:
            if not self._run_task.done():
                self._run_task.cancel()
                await asyncio.gather(self._run_task, return_exceptions=True)

    # ----------------------------------------------------------------- controls

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        if self._paused or self._finished or self._stopping:
            return
        self._paused = True
        self._unpaused.clear()
        self._router.hold()
        self._hold_seq = self._router.next_seq()
        self._deliver(ev.Paused(session_id=self.session_id, t=self._now()))

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        # What came before the pause goes first (the consumer may not have taken it yet), then
        # the resumed event, then what was held: its tokens, one per run of an agent, in place.
        self._deliver_pending()
        self._router.release()
        held: list[ev.Event] = []
        for seq, event in self._held:
            self._drain_tokens(seq, held)
            self._place(event, held)
        self._drain_tokens(None, held)
        self._held.clear()
        self._deliverable.append(ev.Resumed(session_id=self.session_id, t=self._now(), held=len(held)))
        self._deliverable.extend(held)
        self._made_room()
        self._wake_consumer()
        self._unpaused.set()

    def inject_feedback(self, text: str, applies_to: ev.FeedbackTarget = "next_chunk") -> None:
        text = text.strip()
        if not text:
            raise ValueError("feedback is empty; write what the agents should change")
        if self._finished or self._stopping:
            raise RuntimeError("the session has ended; feedback can no longer change it")
        restart = applies_to == "now" and self._chunk_task is not None and not self._chunk_task.done()
        target_chunk = self._current_chunk if restart else self._current_chunk + 1
        self._deliver_or_hold(
            ev.Feedback(
                session_id=self.session_id,
                t=self._now(),
                text=text,
                applies_to=applies_to,
                chunk=target_chunk,
            ),
            control=True,
        )
        if restart:
            assert self._chunk_task is not None
            self._feedback_now.append(text)
            self._chunk_task.cancel(msg="feedback")
        else:
            self._feedback_next.append(text)

    def stop(self) -> None:
        if self._finished or self._stopping:
            return
        self._stopping = True
        # Cancel first, then resume: agents held by a pause are cancelled before they can start a
        # model call. A run task that has not taken its first step is not cancelled (it would end
        # without a session_finished event); ``_run`` sees ``_stopping`` when it starts.
        if self._run_task is not None and self._started:
            self._run_task.cancel(msg="stop")
        self.resume()

    # ----------------------------------------------------------------- the budget guard

    @property
    def awaiting_budget(self) -> bool:
        """The session waits for the user's answer to a ``budget_exceeded`` event."""
        return self._budget_decision is not None and not self._budget_decision.done()

    def decide_budget(
        self,
        choice: BudgetChoice,
        *,
        strategy: str | None = None,
        models: Mapping[str, ModelRef] | None = None,
        fallbacks: Mapping[str, Sequence[ModelRef]] | None = None,
    ) -> None:
        """Answer the budget guard: go on, go on with cheaper models, or stop.

        "cheaper" switches to ``models`` (with ``fallbacks``) when given, else to ``strategy``, else
        to the strategy the guard offered. Raises ``RuntimeError`` when no decision is pending
        and ``ValueError`` when "cheaper" has nothing to switch to."""
        future = self._budget_decision
        if future is None or future.done():
            raise RuntimeError("the session is not waiting for a budget decision")
        if choice not in ("continue", "cheaper", "stop"):
            raise ValueError(f"a budget decision is continue, cheaper or stop, not {choice!r}")
        if choice == "cheaper":
            if models is None:
                strategy = strategy or self._offered
                if strategy is None:
                    raise ValueError("no cheaper strategy can run here")
                chains = self.workflow.usable_chains(strategy, self._usable)
                if not all(chains.values()):
                    raise ValueError(f"strategy {strategy!r} cannot run here")
                models = {name: chain[0] for name, chain in chains.items()}
                fallbacks = {name: chain[1:] for name, chain in chains.items()}
            self.models.update(models)
            self._fallbacks.update({k: tuple(v) for k, v in (fallbacks or {}).items()})
        shown = {name: str(ref) for name, ref in (models or {}).items()}
        decision = ev.BudgetDecision(
            session_id=self.session_id, choice=choice, strategy=strategy, models=shown
        )
        decision.t = self._now()
        self._deliver_or_hold(decision, control=True)
        future.set_result(choice)

    async def _within_budget(self, index: int, chunk: Chunk) -> bool:
        """Check the next chunk against the budget; wait for the user when it could pass it."""
        budget = self.budget
        while budget.active:
            spent = add_costs(r.cost_usd for r in self._results)
            forecast = forecast_usd(self._chunk_calls(index), self._prices)
            if spent is None or forecast is None:
                if not self._budget_warned:
                    self._budget_warned = True
                    unknown = ", ".join(unpriced(self.models, self._prices)) or "a model used so far"
                    self._emit(
                        ev.Error(
                            session_id=self.session_id,
                            recoverable=True,
                            message=f"the price of {unknown} is unknown, so the budget cannot be enforced; "
                            'add it under [prices."provider:model"] in the config file',
                        )
                    )
                return True
            breach = budget.breach(spent, forecast)
            if breach is None:
                return True
            scope, limit = breach
            self._offered, offered_forecast = self._cheapest_other(index, forecast)
            self._budget_decision = asyncio.get_running_loop().create_future()
            alert = ev.BudgetExceeded(
                session_id=self.session_id,
                chunk=index,
                title=chunk.title,
                spent_usd=round(spent, 6),
                forecast_usd=round(forecast, 6),
                limit_usd=limit,
                scope=scope,
                cheaper=self._offered,
                cheaper_forecast_usd=None if offered_forecast is None else round(offered_forecast, 6),
            )
            alert.t = self._now()
            self._deliver_or_hold(alert, control=True)
            try:
                choice = await self._budget_decision
            finally:
                self._budget_decision = None
            if choice == "stop":
                return False
            if choice == "continue":
                return True
            # "cheaper": forecast again with the new models.
        return True

    def _cheapest_other(self, index: int, current: float) -> tuple[str | None, float | None]:
        """The strategy (not the current models) that can run here with the lowest forecast for
        chunk ``index``, when it is lower than ``current``."""
        best: tuple[str | None, float | None] = (None, None)
        for strategy in self.workflow.strategies:
            chains = self.workflow.usable_chains(strategy, self._usable)
            if not all(chains.values()):
                continue
            models = {name: chain[0] for name, chain in chains.items()}
            if models == self.models:
                continue
            forecast = forecast_usd(self._chunk_calls(index, models), self._prices)
            if forecast is not None and forecast < current and (best[1] is None or forecast < best[1]):
                best = (strategy, forecast)
        return best

    def _chunk_calls(self, index: int, models: Mapping[str, ModelRef] | None = None) -> list[CallEstimate]:
        """At most what each call of chunk ``index`` reads and writes (see ``core.budget``)."""
        wf, spec = self.workflow, self.spec
        models = models or self.models
        written_since = self._chunk_output.get(index - 1, 0)
        base = (len(spec.task) + sum(len(k) + len(v) for k, v in spec.context.items())) // 4
        out_of = {r.name: spec.max_tokens or r.max_tokens or wf.defaults.max_tokens for r in wf.roles}
        calls = []
        for role in wf.roles:
            if role.name in self._last_input:
                reads = self._last_input[role.name] + written_since
            else:
                upstream = sum(out_of[name] for name in role.reads)
                reads = base + len(role.system_prompt) // 4 + PROMPT_FRAME_TOKENS + upstream
            calls.append(CallEstimate(role.name, models[role.name], reads, out_of[role.name]))
        syn = wf.synthesizer
        syn_reads = self._last_input.get(syn.name, base + len(syn.system_prompt) // 4 + PROMPT_FRAME_TOKENS)
        syn_reads += sum(out_of.values()) + written_since
        syn_out = spec.max_tokens or syn.max_tokens
        calls.append(CallEstimate(syn.name, models[syn.name], syn_reads, syn_out))
        return calls

    # ----------------------------------------------------------------- emission

    def _now(self) -> float:
        return round(self._clock() - self._t0, 6)

    def _deliver(self, event: ev.Event) -> None:
        """Queue an event after the deltas pushed so far (while paused: after those before the pause)."""
        if not self._started:
            self._early.append(event)
            return
        seq = self._hold_seq if self._paused else self._router.next_seq()
        self._outbox.append((seq, event))
        self._wake_consumer()

    def _deliver_or_hold(self, event: ev.Event, *, control: bool = False) -> None:
        if self._paused and not control:
            self._held.append((self._router.next_seq(), event))
        else:
            self._deliver(event)

    def _deliver_pending(self) -> None:
        """Move everything deliverable now (nothing held) to the consumer's side, in order."""
        deliverable = self._deliverable
        outbox = self._outbox
        while outbox:
            seq, event = outbox.popleft()
            self._drain_tokens(seq, deliverable)
            self._place(event, deliverable)
        self._drain_tokens(None, deliverable)
        self._made_room()

    def _drain_tokens(self, before: int | None, into: deque[ev.Event] | list[ev.Event]) -> None:
        """Token events for the router's deltas before sequence number ``before`` (all: None)."""
        sid, chunk = self.session_id, self._token_chunk
        for agent, text, _seq, count, t in self._router.drain(before):
            into.append(ev.Token(session_id=sid, agent=agent, chunk=chunk, text=text, t=t, deltas=count))

    def _place(self, event: ev.Event, into: deque[ev.Event] | list[ev.Event]) -> None:
        if isinstance(event, ev.ChunkStarted):
            self._token_chunk = event.chunk
        into.append(event)

    def _wake_consumer(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_for_events(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _made_room(self) -> None:
        if not self._room.is_set() and self._router.has_room():
            self._room.set()

    async def _wait_for_room(self) -> None:
        """Hold a model call's stream until the consumer has drained the router below capacity."""
        while not self._router.has_room():
            self._room.clear()
            await self._room.wait()

    def _emit(self, event: ev.Event) -> None:
        event.t = self._now()
        self._deliver_or_hold(event)

    # ----------------------------------------------------------------- the run

    async def _run(self) -> None:
        self._started = True
        sid = self.session_id
        wf = self.workflow
        lineage = self.spec.continuation
        self._deliver(
            ev.SessionStarted(
                t=self._now(),
                session_id=sid,
                task=self.spec.task,
                context=dict(self.spec.context),
                strategy="custom" if self.spec.model_override else self.spec.strategy.lower(),
                workflow=wf.name,
                models={name: str(ref) for name, ref in self.models.items()},
                chunks=[c.title for c in wf.chunks],
                parent_id=lineage.parent_id if lineage else None,
                reused_chunks=len(lineage.chunks) if lineage else 0,
                change=lineage.change if lineage else "",
            )
        )
        for event in self._early:  # pause / resume / feedback that came before the first step
            self._deliver(event)
        self._early.clear()
        status: ev.SessionStatus = "done"
        try:
            if self._stopping:  # stop() came before this task's first step
                raise asyncio.CancelledError("stop")
            continuation = self.spec.continuation
            if continuation is not None:
                await self._continue_from(continuation)
                status = await self._run_chunks(first=len(continuation.chunks) + 1)
            else:
                self._served = await self._check_cache()
                if self._served is not None:
                    await self._play_cached(self._served)
                else:
                    status = await self._run_chunks()
        except asyncio.CancelledError:
            status = "stopped"
        except Exception as exc:  # a bug must still end the session with an honest event
            self._emit(ev.Error(session_id=sid, message=f"internal error: {exc!r}", recoverable=False))
            status = "failed"
        final = self._final(status)
        self._finished = True  # from here stop() and pause() have nothing left to act on
        self._stopping = False
        if status == "done" and self._served is None:
            await self._remember(final)
        self._emit(final)

    async def _run_chunks(self, first: int = 1) -> ev.SessionStatus:
        sid, wf = self.session_id, self.workflow
        for index, chunk in enumerate(wf.chunks, start=1):
            if index < first:
                continue
            await self._wait_unpaused()
            if not await self._within_budget(index, chunk):
                raise asyncio.CancelledError("budget")
            self._current_chunk = index
            self._emit(ev.ChunkStarted(session_id=sid, chunk=index, title=chunk.title, total=len(wf.chunks)))
            outputs = await self._run_chunk_until_settled(index, chunk)
            if not any(text.strip() for text in outputs.values()):
                self._emit(
                    ev.Error(
                        session_id=sid,
                        chunk=index,
                        recoverable=False,
                        message=f"no agent produced any text in chunk {index} ({chunk.title}); "
                        "the session cannot go on (each agent's error says why)",
                    )
                )
                return "failed"
        return "done"

    def _final(self, status: ev.SessionStatus) -> ev.SessionFinished:
        served = self._served
        if served is not None:
            return ev.SessionFinished(
                session_id=self.session_id,
                status=status,
                output=served.output if status == "done" else self._output_document(partial=False),
                input_tokens=0,
                output_tokens=0,
                cost_usd=0.0,
                duration_s=self._now(),
                from_cache=True,
            )
        results = self._results
        return ev.SessionFinished(
            session_id=self.session_id,
            status=status,
            output=self._output_document(partial=status != "done"),
            input_tokens=sum(r.input_tokens for r in results),
            output_tokens=sum(r.output_tokens for r in results),
            cost_usd=add_costs(r.cost_usd for r in results),
            duration_s=self._now(),
        )

    # ----------------------------------------------------------------- the cache

    async def _check_cache(self) -> CachedAnswer | None:
        """Ask the cache before any agent starts; emit ``cache_checked`` with its answer."""
        if self._cache is None:
            return None
        sid = self.session_id
        try:
            answer = await asyncio.to_thread(self._cache.check, self.spec.task, self.spec.context)
        except Exception as exc:  # the cache only saves work: a broken one never stops a run
            self._emit(
                ev.Error(session_id=sid, message=f"the cache could not be read ({exc}); running without it")
            )
            return None
        for note in answer.notes:
            self._emit(ev.Error(session_id=sid, message=f"cache: {note}"))
        if isinstance(answer, CacheMiss):
            self._emit(
                ev.CacheChecked(
                    session_id=sid,
                    hit=False,
                    entry_id=answer.entry_id,
                    similarity=answer.similarity,
                    matched_on=answer.reason,
                )
            )
            return None
        self._emit(
            ev.CacheChecked(
                session_id=sid,
                hit=True,
                entry_id=answer.entry_id,
                similarity=answer.similarity,
                matched_on=answer.matched_on,
                saved_usd=answer.cost_usd,
                saved_s=answer.duration_s,
                age_s=answer.age_s,
                context=dict(answer.context),
            )
        )
        return answer

    async def _play_cached(self, answer: CachedAnswer) -> None:
        """The cached solution through the usual events: each chunk's start and synthesis."""
        titles = answer.chunks
        total = max(len(titles), len(answer.syntheses))
        await self._play_chunks(titles, answer.syntheses, total, self._cache_pace_s)

    async def _play_chunks(
        self, titles: Sequence[str], syntheses: Sequence[ev.Synthesis], total: int, pace_s: float = 0.0
    ) -> None:
        """Finished chunks (cached or reused) through the usual events: each one's start and
        synthesis, which join the context of what follows."""
        for number, synthesis in enumerate(syntheses, start=1):
            await self._wait_unpaused()
            if number > 1 and pace_s:
                await asyncio.sleep(pace_s)
            index = synthesis.chunk
            title = titles[index - 1] if 0 < index <= len(titles) else f"Chunk {index}"
            self._current_chunk = index
            self._emit(ev.ChunkStarted(session_id=self.session_id, chunk=index, title=title, total=total))
            self._history.append(ChunkRecord(title, synthesis.text))
            replayed = msgspec.structs.replace(synthesis, session_id=self.session_id, seq=0)
            self._syntheses.append(replayed)
            self._emit(replayed)

    # ----------------------------------------------------------------- continuations

    async def _continue_from(self, continuation: Continuation) -> None:
        """Replay the parent's finished chunks (no model call), then announce the feedback that
        will shape the chunks that run."""
        wf = self.workflow
        titles = [c.title for c in wf.chunks]
        await self._play_chunks(titles, continuation.chunks, len(wf.chunks))
        for chunk, texts in sorted(continuation.feedback.items()):
            for text in texts:
                if not text.strip():
                    continue
                self._feedback_planned.setdefault(chunk, []).append(text.strip())
                self._emit(
                    ev.Feedback(
                        session_id=self.session_id, text=text.strip(), applies_to="next_chunk", chunk=chunk
                    )
                )

    async def _remember(self, final: ev.SessionFinished) -> None:
        if self._cache is None:
            return
        solved = SolvedSession(
            task=self.spec.task,
            context=dict(self.spec.context),
            output=final.output,
            chunks=[c.title for c in self.workflow.chunks],
            syntheses=list(self._syntheses),
            models={name: str(ref) for name, ref in self.models.items()},
            strategy=self.spec.strategy,
            workflow=self.workflow.name,
            cost_usd=final.cost_usd,
            duration_s=final.duration_s,
            input_tokens=final.input_tokens,
            output_tokens=final.output_tokens,
            session_id=self.session_id,
        )
        try:
            await asyncio.to_thread(self._cache.remember, solved)
        except Exception as exc:  # the answer is already the user's; only the copy is lost
            self._emit(ev.Error(session_id=self.session_id, message=f"the solution was not cached: {exc}"))

    def _output_document(self, *, partial: bool) -> str:
        parts = [f"## {rec.title}\n\n{rec.text.strip()}" for rec in self._history]
        if partial:
            unfinished = self._router.snapshot()
            if any(text.strip() for text in unfinished.values()):
                titles = self._titles()
                body = "\n\n".join(
                    f"### {titles.get(name, name)} (unfinished)\n\n{text.strip()}"
                    for name, text in unfinished.items()
                    if text.strip()
                )
                chunk_title = self.workflow.chunks[max(self._current_chunk, 1) - 1].title
                parts.append(f"## {chunk_title} (interrupted)\n\n{body}")
        return "\n\n".join(parts)

    def _titles(self) -> dict[str, str]:
        titles = {r.name: r.display_name for r in self.workflow.roles}
        titles[self.workflow.synthesizer.name] = self.workflow.synthesizer.title
        return titles

    async def _run_chunk_until_settled(self, index: int, chunk: Chunk) -> dict[str, str]:
        feedback = [*self._feedback_planned.pop(index, []), *self._feedback_next]
        self._feedback_next = []
        own: dict[str, str] = {}
        while True:
            self._router.clear()
            self._chunk_task = asyncio.create_task(self._run_chunk(index, chunk, feedback, own))
            try:
                return await self._chunk_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if (current is not None and current.cancelling()) or self._stopping:
                    raise
                # Feedback "now": keep what each agent wrote, add the feedback, start over.
                own = {name: text for name, text in self._router.snapshot().items() if text.strip()}
                own.pop(self.workflow.synthesizer.name, None)
                feedback = [*feedback, *self._feedback_now]
                self._feedback_now = []
            finally:
                self._chunk_task = None

    async def _run_chunk(
        self, index: int, chunk: Chunk, feedback: list[str], own: Mapping[str, str]
    ) -> dict[str, str]:
        roles = self.workflow.roles
        self._ready = {r.name: asyncio.Event() for r in roles}
        results: dict[str, _AgentResult] = {}
        async with asyncio.TaskGroup() as group:
            for role in roles:
                group.create_task(
                    self._run_agent(index, chunk, role, feedback, own.get(role.name, ""), results),
                    name=f"{role.name}-{index}",
                )
        outputs = {r.name: results[r.name].text for r in roles if r.name in results}
        if any(text.strip() for text in outputs.values()):
            await self._synthesize(index, chunk, outputs, feedback)
        return outputs

    async def _wait_unpaused(self) -> None:
        # A loop, not one wait: resume() wakes the waiters, but a pause() before they run must
        # still hold them.
        while self._paused:
            await self._unpaused.wait()

    async def _await_upstream(self, role: Role) -> list[str]:
        for upstream in role.reads:
            await self._ready[upstream].wait()
        return [u for u in role.reads if self._router.count(u) > 0]

    async def _run_agent(
        self,
        index: int,
        chunk: Chunk,
        role: Role,
        feedback: Sequence[str],
        own_partial: str,
        results: dict[str, _AgentResult],
    ) -> None:
        try:
            reads = await self._await_upstream(role)
            await self._wait_unpaused()
            upstream = {name: self._router.text(name) for name in reads}
            messages = agent_messages(
                self.workflow,
                role,
                chunk,
                task=self.spec.task,
                context=self.spec.context,
                history=self._history,
                upstream=upstream,
                feedback=feedback,
                own_partial=own_partial,
            )
            max_tokens = self.spec.max_tokens or role.max_tokens or self.workflow.defaults.max_tokens
            results[role.name] = await self._call_model(index, role.name, messages, max_tokens, reads)
        finally:
            self._ready[role.name].set()

    async def _call_model(
        self,
        index: int,
        agent: str,
        messages: tuple[ChatMessage, ...],
        max_tokens: int,
        reads: list[str],
    ) -> _AgentResult:
        """Stream one model call into token events; never raises a provider failure."""
        sid = self.session_id
        ref = self.models[agent]
        request = ChatRequest(
            model=ref.model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=self.workflow.defaults.temperature,
        )
        threshold = self.spec.read_after_tokens
        if threshold is None:
            threshold = self.workflow.defaults.read_after_tokens
        ready = self._ready.get(agent)
        result = _AgentResult()

        started = self._clock()
        self._emit(ev.AgentStarted(session_id=sid, agent=agent, chunk=index, model=str(ref), reads=reads))
        models = (ref, *self._fallbacks.get(agent, ()))
        billed: list[Billed] = []

        router = self._router

        def on_item(item: GatewayItem) -> Awaitable[None] | None:
            if isinstance(item, TextDelta):
                text = item.text
                if not text:
                    return None
                room = router.push(agent, text, self._now())
                waiter = self._waiter
                if waiter is not None and not self._paused and not waiter.done():
                    waiter.set_result(None)
                if ready is not None and not ready.is_set() and router.count(agent) >= threshold:
                    ready.set()
                return None if room else self._wait_for_room()
            if isinstance(item, Billed):
                billed.append(item)
            else:  # a retry or a fallback: the agent goes on, the user sees why
                self._emit(
                    ev.Error(session_id=sid, agent=agent, chunk=index, message=item.message, recoverable=True)
                )
            return None

        try:
            await self._gateway.call(models, request, on_item)
        except asyncio.CancelledError:
            result.status = "cancelled"
            raise
        except (ProviderError, ConfigurationError) as exc:
            result.status = "failed"
            self._emit(ev.Error(session_id=sid, agent=agent, chunk=index, message=str(exc), recoverable=True))
        except Exception as exc:  # a backend bug fails this agent, not the session
            result.status = "failed"
            message = f"{ref}: unexpected failure: {exc!r}"
            self._emit(ev.Error(session_id=sid, agent=agent, chunk=index, message=message, recoverable=True))
        finally:
            result.text = self._router.text(agent)
            if billed:
                usage = Usage(
                    sum(b.usage.input_tokens for b in billed),
                    sum(b.usage.output_tokens for b in billed),
                    estimated=any(b.usage.estimated for b in billed),
                )
                cost = add_costs(self._prices.cost(b.model, b.usage) for b in billed)
            else:
                # Cancelled, or no attempt produced text: count what we saw so totals stay honest.
                chars = sum(len(m.content) for m in messages)
                usage = Usage(max(1, chars // 4), self._router.count(agent), estimated=True)
                cost = self._prices.cost(ref, usage)
            if result.status == "done" and not result.text.strip():
                result.status = "failed"
                self._emit(
                    ev.Error(
                        session_id=sid,
                        agent=agent,
                        chunk=index,
                        recoverable=True,
                        message=f"{ref} returned no text; try another model with --model or --strategy",
                    )
                )
            result.input_tokens = usage.input_tokens
            result.output_tokens = usage.output_tokens
            self._last_input[agent] = usage.input_tokens
            self._chunk_output[index] = self._chunk_output.get(index, 0) + usage.output_tokens
            result.cost_usd = cost
            self._results.append(result)
            self._emit(
                ev.AgentFinished(
                    session_id=sid,
                    agent=agent,
                    chunk=index,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    latency_ms=round((self._clock() - started) * 1000, 3),
                    cost_usd=result.cost_usd,
                    status=result.status,
                    usage_estimated=usage.estimated,
                )
            )
        return result

    async def _synthesize(
        self, index: int, chunk: Chunk, outputs: dict[str, str], feedback: list[str]
    ) -> None:
        wf = self.workflow
        await self._wait_unpaused()
        messages = synthesis_messages(
            wf,
            chunk,
            task=self.spec.task,
            context=self.spec.context,
            history=self._history,
            outputs=outputs,
            feedback=feedback,
        )
        max_tokens = self.spec.max_tokens or wf.synthesizer.max_tokens
        result = await self._call_model(index, wf.synthesizer.name, messages, max_tokens, list(outputs))
        agents = [r.name for r in wf.roles]
        parsed: ParsedSynthesis
        if result.status == "done":
            parsed = parse_synthesis(result.text, agents)
        else:
            parsed = fallback_synthesis(outputs, self._titles())
        self._history.append(ChunkRecord(chunk.title, parsed.text))
        synthesis = ev.Synthesis(
            session_id=self.session_id,
            chunk=index,
            agreed=parsed.agreed,
            debated=parsed.debated,
            confidence=parsed.confidence,
            text=parsed.text,
            parsed=parsed.parsed,
        )
        self._syntheses.append(synthesis)
        self._emit(synthesis)
