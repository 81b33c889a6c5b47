"""The engine: runs a workflow chunk by chunk, agents concurrently, and emits typed events.

Per chunk, every role starts at once. A role that reads another waits until each upstream has
streamed ``read_after_tokens`` deltas (or finished), then starts with that partial text in its
prompt, while the upstream keeps going. When all roles are done, the synthesizer merges their
outputs; its synthesis, with the earlier ones, is the context of the next chunk.

Controls are safe at any moment:

* ``pause()``: no new model call starts; events produced meanwhile are held back from the
  consumer and delivered, in order, right after the ``resumed`` event. Running calls go on
  until the token buffer is full, then wait (see ``core.event_stream``).
* ``inject_feedback(text, "next_chunk" | "now")``: "now" cancels the running chunk's generations
  and restarts them with the feedback and their partial output in the prompt.
* ``stop()``: cancels everything and finishes with status ``stopped`` and the partial output.

Statuses are never invented: every event reports something that happened.

This module is the run and its controls; its parts live beside it: the request
(``session_spec``), the delivery of events (``event_stream``), one chunk's agents and synthesis
(``chunk_run``), one model call (``agent_call``), the budget guard (``budget_guard``), the cache
(``cache_step``) and what the session hands back (``session_output``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import msgspec

from . import events as ev
from .agent_call import AgentCaller, CallLedger
from .budget import Budget, BudgetChoice
from .budget_guard import BudgetGuard
from .cache import CachedAnswer, ChooseOffer, SolutionCache
from .cache_step import CacheStep
from .chunk_run import ChunkRunner
from .code_exec import CodeExecutor
from .code_loop import CodeLoopRunner
from .code_run import ApproveRun, CodeRunner
from .confidence import Embed
from .cost import PriceTable
from .event_stream import TOKEN_BUFFER, EventStream
from .gateway import Gateway, ProviderLimit, RetryPolicy, TokenCounter, rough_token_count
from .prompts import ChunkRecord
from .provider import ModelRef, ProviderResolver
from .session_output import finished_event, output_document
from .session_spec import MAX_TASK_CHARS, Continuation, SessionSpec
from .workflow import Chunk

# What the rest of the program imports from here: the engine and its request.
__all__ = ["MAX_TASK_CHARS", "TOKEN_BUFFER", "Collaboration", "Continuation", "SessionSpec"]


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
        choose_offer: ChooseOffer | None = None,
        embed: Embed | None = None,
        runner: CodeRunner | None = None,
        approve: ApproveRun | None = None,
        seed: int | None = None,
    ) -> None:
        """``usable`` tells whether a model can run here (its key set, its file installed); the
        budget guard uses it to offer a cheaper strategy. Without it every model counts.
        ``token_buffer``: undelivered deltas at which the model calls wait for the consumer.
        ``cache``: asked before any agent starts; a hit is played (``cache_pace_s`` between its
        chunks, 0 for all at once) instead of calling a model, an offer is put to
        ``choose_offer`` (without it, an offer is a miss), and a session that finishes ``done``
        with nothing cut or failed is stored in it. ``embed``: text -> vectors, to measure how far the agents
        agree (a part of each synthesis's computed confidence); without it that part is not
        measured. ``runner`` runs the code the agents write (the code workflow's tests, a
        chunk's code where the workflow says so), ``approve`` is asked before each run, and
        ``seed`` makes sampled answers repeatable; without a runner no code runs."""
        self.spec = spec
        self.workflow = spec.workflow
        self.models = spec.models()
        self.session_id = spec.session_id or uuid.uuid4().hex[:16]
        self._gateway = Gateway(
            resolver,
            retry or RetryPolicy(),
            limits,
            count_tokens=count_tokens or rough_token_count,
            timer=clock,
        )
        fallbacks: dict[str, tuple[ModelRef, ...]] = {k: tuple(v) for k, v in spec.fallbacks.items()}
        prices = prices or PriceTable()
        self._stream = EventStream(self.session_id, clock, token_buffer)
        self._ledger = CallLedger()
        self._guard = BudgetGuard(
            budget or Budget(),
            spec,
            self._stream,
            self._ledger,
            models=self.models,
            fallbacks=fallbacks,
            prices=prices,
            usable=usable or (lambda ref: True),
        )
        self._history: list[ChunkRecord] = []
        self._syntheses: list[ev.Synthesis] = []
        caller = AgentCaller(
            spec,
            self._stream,
            self._gateway,
            self._ledger,
            models=self.models,
            fallbacks=fallbacks,
            prices=prices,
            clock=clock,
        )
        # What makes this session's answer unfit for the cache (a synthesis cut or missing).
        self._flaws: list[str] = []
        self._chunks = ChunkRunner(
            spec,
            self._stream,
            caller,
            self._history,
            self._syntheses,
            self._flaws,
            embed,
            CodeExecutor(self._stream, runner, approve) if runner is not None else None,
        )
        self._code = (
            None
            if spec.workflow.code is None
            else CodeLoopRunner(
                spec, self._stream, caller, self._history, self._syntheses, self._flaws, runner, approve, seed
            )
        )
        self._cache = None
        if cache is not None:
            sid, emit = self.session_id, self._stream.emit
            self._cache = CacheStep(cache, spec, sid, emit, models=self.models, choose=choose_offer)
        self._cache_pace_s = max(0.0, cache_pace_s)
        self._served: CachedAnswer | None = None
        self._feedback_next: list[str] = []
        # Feedback for a later chunk, known before the run (a continuation's), by chunk number.
        self._feedback_planned: dict[int, list[str]] = {}
        self._feedback_now: list[str] = []
        # Every feedback text the user injected: a steered answer is its own cache entry.
        self._feedback_given: list[str] = []
        self._chunk_task: asyncio.Task[dict[str, str]] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._current_chunk = 0
        self._stopping = False
        self._finished = False

    # ----------------------------------------------------------------- consumer side

    async def events(self) -> AsyncIterator[ev.Event]:
        """Run the collaboration, yielding events until ``session_finished``."""
        if self._run_task is not None:
            raise RuntimeError("a Collaboration runs once; create another to run again")
        stream = self._stream
        stream.start_clock()
        self._run_task = asyncio.create_task(self._run(), name=f"collaboration-{self.session_id}")
        deliverable = stream.deliverable
        seq = 0
        try:
            while True:
                if not deliverable:
                    stream.deliver_pending()
                    if not deliverable:
                        await stream.wait_for_events()
                        continue
                event = deliverable.popleft()
                seq += 1
                event.seq = seq
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
        return self._stream.paused

    def pause(self) -> None:
        if self._finished or self._stopping:
            return
        self._stream.pause()

    def resume(self) -> None:
        self._stream.resume()

    def inject_feedback(self, text: str, applies_to: ev.FeedbackTarget = "next_chunk") -> None:
        text = text.strip()
        if not text:
            raise ValueError("feedback is empty; write what the agents should change")
        if self._finished or self._stopping:
            raise RuntimeError("the session has ended; feedback can no longer change it")
        restart = applies_to == "now" and self._chunk_task is not None and not self._chunk_task.done()
        target_chunk = self._current_chunk if restart else self._current_chunk + 1
        self._stream.deliver_or_hold(
            ev.Feedback(
                session_id=self.session_id,
                t=self._stream.now(),
                text=text,
                applies_to=applies_to,
                chunk=target_chunk,
            ),
            control=True,
        )
        self._feedback_given.append(text)
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
        if self._run_task is not None and self._stream.started:
            self._run_task.cancel(msg="stop")
        self.resume()

    # ----------------------------------------------------------------- the budget guard

    @property
    def budget(self) -> Budget:
        return self._guard.budget

    @budget.setter
    def budget(self, budget: Budget) -> None:
        self._guard.budget = budget

    @property
    def awaiting_budget(self) -> bool:
        """The session waits for the user's answer to a ``budget_exceeded`` event."""
        return self._guard.awaiting

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
        self._guard.decide(choice, strategy=strategy, models=models, fallbacks=fallbacks)

    # ----------------------------------------------------------------- the run

    async def _run(self) -> None:
        sid = self.session_id
        wf = self.workflow
        lineage = self.spec.continuation
        stream = self._stream
        stream.open(
            ev.SessionStarted(
                t=stream.now(),
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
        status: ev.SessionStatus = "done"
        try:
            if self._stopping:  # stop() came before this task's first step
                raise asyncio.CancelledError("stop")
            continuation = self.spec.continuation
            if continuation is not None:
                await self._continue_from(continuation)
                status = await self._run_chunks(first=len(continuation.chunks) + 1)
            else:
                self._served = None if self._cache is None else await self._cache.ask()
                if self._served is not None:
                    await self._play_cached(self._served)
                else:
                    status = await self._run_chunks()
        except asyncio.CancelledError:
            status = "stopped"
        except Exception as exc:  # a bug must still end the session with an honest event
            stream.emit(ev.Error(session_id=sid, message=f"internal error: {exc!r}", recoverable=False))
            status = "failed"
        final = self._final(status)
        self._finished = True  # from here stop() and pause() have nothing left to act on
        self._stopping = False
        if status == "done" and self._served is None and self._cache is not None:
            if self._flaws:  # never serve again an answer known to be incomplete
                note = f"this solution was not cached: {'; '.join(self._flaws)}"
                stream.emit(ev.Error(session_id=sid, message=note, recoverable=True))
            else:
                await self._cache.remember(final, self._syntheses, self.models, self._feedback_given)
        stream.emit(final)

    async def _run_chunks(self, first: int = 1) -> ev.SessionStatus:
        sid, wf, stream = self.session_id, self.workflow, self._stream
        for index, chunk in enumerate(wf.chunks, start=1):
            if index < first:
                continue
            await stream.wait_unpaused()
            if not await self._guard.within_budget(index, chunk):
                raise asyncio.CancelledError("budget")
            self._current_chunk = index
            stream.emit(ev.ChunkStarted(session_id=sid, chunk=index, title=chunk.title, total=len(wf.chunks)))
            outputs = await self._run_chunk_until_settled(index, chunk)
            settled = self._code is not None and self._code.settled
            if not any(text.strip() for text in outputs.values()):
                stream.emit(
                    ev.Error(
                        session_id=sid,
                        chunk=index,
                        recoverable=False,
                        message=f"no agent produced any text in chunk {index} ({chunk.title}); "
                        "the session cannot go on (each agent's error says why)",
                    )
                )
                return "failed"
            if settled:  # the code workflow's tests pass: no repair round is needed
                break
        return "done"

    def _final(self, status: ev.SessionStatus) -> ev.SessionFinished:
        served = self._served
        if served is not None and status == "done":
            output = served.output
        else:
            # A live session that did not finish shows its interrupted chunk; a cached one has none.
            partial = served is None and status != "done"
            unfinished = self._stream.router.snapshot() if partial else None
            output = output_document(
                self.workflow,
                self.spec.task,
                self.spec.context,
                self._syntheses,
                status=status,
                shown_titles=[record.title for record in self._history],
                unfinished=unfinished,
                chunk=self._current_chunk,
            )
        results = None if served is not None else self._ledger.results
        return finished_event(self.session_id, status, output, self._stream.now(), results)

    # ----------------------------------------------------------------- finished chunks

    async def _play_cached(self, answer: CachedAnswer) -> None:
        """The cached solution through the usual events: each chunk's start and synthesis."""
        titles = answer.chunks
        total = max(len(titles), len(answer.syntheses))
        await self._play_chunks(titles, answer.syntheses, total, self._cache_pace_s)

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
                self._stream.emit(
                    ev.Feedback(
                        session_id=self.session_id, text=text.strip(), applies_to="next_chunk", chunk=chunk
                    )
                )

    async def _play_chunks(
        self, titles: Sequence[str], syntheses: Sequence[ev.Synthesis], total: int, pace_s: float = 0.0
    ) -> None:
        """Finished chunks (cached or reused) through the usual events: each one's start and
        synthesis, which join the context of what follows."""
        stream = self._stream
        for number, synthesis in enumerate(syntheses, start=1):
            await stream.wait_unpaused()
            if number > 1 and pace_s:
                await asyncio.sleep(pace_s)
            index = synthesis.chunk
            title = titles[index - 1] if 0 < index <= len(titles) else f"Chunk {index}"
            self._current_chunk = index
            stream.emit(ev.ChunkStarted(session_id=self.session_id, chunk=index, title=title, total=total))
            self._history.append(ChunkRecord(title, synthesis.text))
            replayed = msgspec.structs.replace(synthesis, session_id=self.session_id, seq=0)
            self._syntheses.append(replayed)
            stream.emit(replayed)

    # ----------------------------------------------------------------- a chunk, restarted by feedback "now"

    async def _run_chunk_until_settled(self, index: int, chunk: Chunk) -> dict[str, str]:
        feedback = [*self._feedback_planned.pop(index, []), *self._feedback_next]
        self._feedback_next = []
        own: dict[str, str] = {}
        router = self._stream.router
        while True:
            router.clear()
            run = self._chunks.run if self._code is None else self._code.run
            self._chunk_task = asyncio.create_task(run(index, chunk, feedback, own))
            try:
                return await self._chunk_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if (current is not None and current.cancelling()) or self._stopping:
                    raise
                # Feedback "now": keep what each agent wrote, add the feedback, start over.
                own = {name: text for name, text in router.snapshot().items() if text.strip()}
                if self.workflow.synthesizer is not None:
                    own.pop(self.workflow.synthesizer.name, None)
                feedback = [*feedback, *self._feedback_now]
                self._feedback_now = []
            finally:
                self._chunk_task = None
