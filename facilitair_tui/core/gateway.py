"""Model calls that survive a flaky backend: retries, fallback models, stalls and per-provider limits.

The engine makes every model call through ``Gateway.call(models, request, sink)``. ``models`` is
the role's model followed by its fallbacks. A failure the provider marks retryable (429, 5xx,
overloaded, timeouts, dropped connections, malformed events) is retried on the same model with
exponential backoff and jitter, waiting at least what the server asked for (Retry-After); once a
model's attempts are spent, or at once for a failure retrying cannot fix (401, 400, unknown
model, context too long), the next model of the list takes over. A stream that sends nothing
for ``stall_s`` seconds counts as a retryable failure.

A stream that breaks after some text is not started over: the next attempt is asked to continue
the partial answer (which it is given), and what it repeats is cut off, whether it picked up a
little before the end of the partial text or started the whole answer over (``MIN_RESTART`` says
when a shared beginning counts as a restart). So whoever consumes the stream sees every piece of
text once, in order, however many attempts it took. Each attempt that produced text is billed
(``Billed``, estimated when the stream broke before the provider reported its usage: counted with
the tokenizer given, the same as for a provider that never reports usage); each retry or
fallback is announced (``Recovery``) so the user sees what is happening and why; and every
attempt, whatever its end, is reported with its timings (``Attempt``): what traces and the
stats are made of.

No SDK here: providers turn their failures into ``ProviderError`` and this layer only reads
``retryable`` and ``retry_after_s``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from .events import AttemptKind, AttemptOutcome
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

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written and do not add a preamble."
)
# How much of a continuation is held back to find where it repeats the partial answer's end.
OVERLAP_WINDOW = 160
# Shorter repeats are not cut: a few shared characters are as likely to be a coincidence.
MIN_OVERLAP = 6
# A continuation that starts over is cut once it repeats this many non-space characters of the
# partial answer's start (or all of it, if that is shorter and at least MIN_OVERLAP): a legitimate
# continuation begins mid-sentence, and shares its first word or two with the answer's start at
# most by chance; four or five words alike from the first character on is a restart.
MIN_RESTART = 24


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts_per_model: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    # A Retry-After beyond this is not waited for: the next model is tried instead.
    max_retry_after_s: float = 120.0
    stall_s: float = 60.0
    jitter: float = 0.25  # each backoff delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delay(self, failures: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failed attempt on one model."""
        backoff: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** (failures - 1))
        backoff *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        if retry_after_s is not None:
            return max(retry_after_s, backoff)
        return backoff


NO_RETRY = RetryPolicy(attempts_per_model=1)


@dataclass(frozen=True, slots=True)
class ProviderLimit:
    """At most ``max_concurrent`` calls at once and ``requests_per_minute`` call starts per minute."""

    max_concurrent: int | None = None
    requests_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class Billed:
    """The usage of one attempt on ``model`` (a call can take several)."""

    model: ModelRef
    usage: Usage


@dataclass(frozen=True, slots=True)
class Recovery:
    """A failed attempt and what happens next, in words for the user."""

    message: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request to ``model``, reported when it ended (after its ``Billed``, before the wait
    that follows a failure). Times are seconds of the gateway's clock."""

    model: ModelRef
    kind: AttemptKind
    queued_s: float  # waiting for the provider's concurrency slot or requests-per-minute limit
    first_token_s: float | None  # from the request to the first text; None when none came
    duration_s: float  # from the request to the end
    usage: Usage | None  # None: the attempt failed before any text, so nothing is billed
    outcome: AttemptOutcome
    error: str = ""  # the kind of failure (``ProviderError.kind``)
    message: str = ""
    wait_s: float = 0.0  # the wait before the next attempt
    retry_after_s: float | None = None


GatewayItem = TextDelta | Billed | Recovery | Attempt
# A sink returns None, or an awaitable the gateway awaits before it reads the stream on: how a
# consumer that lags makes the call wait (backpressure) while the sink itself stays sync.
Sink = Callable[[GatewayItem], Awaitable[None] | None]
Sleep = Callable[[float], Awaitable[None]]


async def _settle(waiting: Awaitable[None] | None) -> None:
    """Await what a sink returned, if anything (the rare items; the per-delta path inlines this)."""
    if waiting is not None:
        await waiting


class _Limiter:
    """One provider's concurrency slots and its window of recent request starts."""

    def __init__(self, limit: ProviderLimit, clock: Callable[[], float], sleep: Sleep) -> None:
        self._limit = limit
        self._slots = asyncio.Semaphore(limit.max_concurrent) if limit.max_concurrent else None
        self._starts: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots is not None:
            await self._slots.acquire()
        try:
            await self._wait_for_rate()
            yield
        finally:
            if self._slots is not None:
                self._slots.release()

    async def _wait_for_rate(self) -> None:
        per_minute = self._limit.requests_per_minute
        if not per_minute:
            return
        async with self._lock:  # one waiter at a time, so starts stay in order
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0] >= 60.0:
                    self._starts.popleft()
                if len(self._starts) < per_minute:
                    self._starts.append(now)
                    return
                await self._sleep(60.0 - (now - self._starts[0]))


class _RestartMatch:
    """How far a continuation repeats the partial answer from its start, read piece by piece.

    Whitespace is normalised: a run of whitespace matches a run of whitespace of any length and
    kind (a restart often differs in blank lines or indentation), and leading whitespace on
    either side is skipped. The walk resumes where the last piece ended, so a long partial answer
    costs one pass, not one per delta.
    """

    def __init__(self, before: str) -> None:
        self._before = before
        self._text_end = len(before.rstrip())  # before[self._text_end:] is trailing whitespace
        self._at = len(before) - len(before.lstrip())  # the next character of ``before`` to match
        self.end = 0  # how much of the continuation is repeated so far
        self.repeated = 0  # the non-space characters among it
        self._in_space = True  # the last thing matched was whitespace (or nothing yet)
        self.diverged = False  # the continuation departed from ``before``
        self.caught_up = False  # it repeated all of ``before``: the rest is new

    def walk(self, after: str) -> None:
        """Match ``after`` (the continuation so far, a longer string each time) on from ``end``."""
        before, at, end = self._before, self._at, self.end
        trailing_space = self._text_end < len(before)
        while end < len(after) and not (self.diverged or self.caught_up):
            char = after[end]
            if at >= self._text_end:
                # All of before's text is repeated. If it ended in whitespace, whitespace here
                # repeats that too; anything else is new (after a partial answer that ended on a
                # word, so is a space).
                if char.isspace() and trailing_space:
                    end += 1
                else:
                    self.caught_up = True
            elif char.isspace() and (self._in_space or before[at].isspace()):
                while at < len(before) and before[at].isspace():
                    at += 1
                self._in_space = True
                end += 1
            elif not char.isspace() and before[at] == char:
                at += 1
                self.repeated += 1
                self._in_space = False
                end += 1
            else:
                self.diverged = True
        self._at, self.end = at, end

    def cut(self, after: str, *, final: bool) -> int | None:
        """How much of ``after`` to drop as a restart, or None when it is not one (or not yet
        known). A restart that departs mid-word is cut at the start of that word, so the new
        text begins with a whole word."""
        if self.caught_up:
            return self.end if self.repeated >= MIN_OVERLAP else None
        if not (self.diverged or final):
            return None
        if not self.diverged:  # ended while still repeating: all of it was a repeat
            whole = self._at >= self._text_end and self.repeated >= MIN_OVERLAP
            return self.end if whole or self.repeated >= MIN_RESTART else None
        start = self.end
        while start > 0 and not after[start - 1].isspace():
            start -= 1
        repeated = self.repeated - (self.end - start)  # what the cut word takes back was not space
        return start if repeated >= MIN_RESTART else None


class _ContinuationTrimmer:
    """Cuts what a continuation repeats of the partial answer before it: its start, when the model
    started over, or its end, when the model picked up a little before where it stopped.

    A restart is looked for first, holding the continuation back only while it still matches the
    partial answer's start; as soon as it departs from it (or catches up with all of it) the
    repeated part is dropped and the rest released. A continuation that is no restart is held
    back up to ``OVERLAP_WINDOW`` characters to find where it repeats the partial answer's end.
    Everything after the cut passes straight through.
    """

    def __init__(self, before: str) -> None:
        self._tail = before[-OVERLAP_WINDOW:]
        self._restart: _RestartMatch | None = _RestartMatch(before)
        self._held = ""
        self._done = False

    def feed(self, text: str) -> str:
        if self._done:
            return text
        self._held += text
        return self._release(final=False)

    def flush(self) -> str:
        if self._done:
            return ""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        held = self._held
        if self._restart is not None:
            self._restart.walk(held)
            cut = self._restart.cut(held, final=final)
            if cut is not None:
                return self._finish(held[cut:])
            if not (self._restart.diverged or self._restart.caught_up or final):
                return ""  # still repeating the start: it may yet be a restart
            self._restart = None
        if final or len(held) >= OVERLAP_WINDOW:
            return self._finish(held[_overlap(self._tail, held) :])
        return ""

    def _finish(self, text: str) -> str:
        self._done = True
        self._held = ""
        return text


def _overlap(before: str, after: str) -> int:
    """The length of the longest end of ``before`` that ``after`` starts with (0 if shorter than
    ``MIN_OVERLAP``); leading whitespace of ``after`` does not count against it."""
    stripped = after.lstrip()
    skipped = len(after) - len(stripped)
    for size in range(min(len(before), len(stripped)), MIN_OVERLAP - 1, -1):
        if before.endswith(stripped[:size]):
            return skipped + size
    return 0


class _StallWatch:
    """Cancels the current task when it has waited ``stall_s`` for the next item of a stream.

    One timer for the whole stream, moved on only when it fires (an ``asyncio.timeout`` per item
    cost 7% of the throughput). It cancels only while a wait is marked, which the gateway does
    around ``anext`` alone (``waiting_since``): time spent on an item is never counted as a stall,
    and the cancellation always lands in that ``await``.
    """

    def __init__(self, stall_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        self._task = asyncio.current_task()
        self._stall_s = stall_s
        # When the wait for the next item began (set by the caller around ``anext``), or None.
        self.waiting_since: float | None = None
        self._fired = False
        self._handle = self._loop.call_later(stall_s, self._check)

    def _check(self) -> None:
        since = self.waiting_since
        now = self._loop.time()
        if since is not None and now - since >= self._stall_s and self._task is not None:
            self._fired = True
            self._task.cancel()
            return
        due = (since if since is not None else now) + self._stall_s
        self._handle = self._loop.call_at(due, self._check)

    def fired(self) -> bool:
        """Whether this watch caused the cancellation (then it is undone: the caller handles it)."""
        if self._fired and self._task is not None:
            self._fired = False
            self._task.uncancel()
            return True
        return False

    def close(self) -> None:
        self._handle.cancel()


TokenCounter = Callable[[str], int]
# Tokens a chat format adds around each message's content.
PER_MESSAGE_TOKENS = 4


def rough_token_count(text: str) -> int:
    """About four characters per token: the fallback when no tokenizer is given."""
    return (len(text) + 3) // 4


class Gateway:
    """Streams a call on the first model of a list that can answer it; see the module's doc."""

    def __init__(
        self,
        resolver: ProviderResolver,
        policy: RetryPolicy = RetryPolicy(),
        limits: Mapping[str, ProviderLimit] | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        count_tokens: TokenCounter = rough_token_count,
        timer: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` paces the request limits; ``timer`` (``clock`` when None) times the attempts
        it reports: the session's clock, so they sit on the same axis as its events."""
        self.policy = policy
        self._timer = timer or clock
        self._resolver = resolver
        self._limits = dict(limits or {})
        self._limiters: dict[str, _Limiter] = {}
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._count_tokens = count_tokens

    def _limiter(self, provider: str) -> _Limiter:
        limiter = self._limiters.get(provider)
        if limiter is None:
            limit = self._limits.get(provider, ProviderLimit())
            limiter = self._limiters[provider] = _Limiter(limit, self._clock, self._sleep)
        return limiter

    async def call(
        self, models: Sequence[ModelRef], request: ChatRequest, sink: Sink, *, continue_cut: int = 0
    ) -> None:
        """Make the call, handing ``sink`` the text deltas (each piece once, in order), a ``Billed``
        per attempt that produced text and a ``Recovery`` per failed attempt, as they happen.

        An answer the model stopped at ``max_tokens`` is continued, like a broken one, up to
        ``continue_cut`` times (each continuation may write ``max_tokens`` more); the last
        ``Billed`` says how the answer finally ended.

        ``sink`` runs inline (no generator between the provider and the consumer: a layer less
        per token). When it returns an awaitable, the call awaits it before reading the stream on
        (that wait never counts as a stall). Raises the last model's ``ProviderError`` (or
        ``ConfigurationError``) once every model failed; the failures before it were announced as
        ``Recovery`` items.
        """
        if not models:
            raise ValueError("a call needs at least one model")
        policy = self.policy
        clock = self._timer
        partial = ""
        continued = 0
        kind: AttemptKind = "first"

        def ended_attempt(
            usage: Usage | None,
            outcome: AttemptOutcome,
            error: str = "",
            message: str = "",
            wait_s: float = 0.0,
            retry_after_s: float | None = None,
            *,
            at: float | None = None,
        ) -> Attempt:
            """The attempt in flight (the loop's variables), ended now or ``at``."""
            end = clock() if at is None else at
            # A backend's own queue (usage.queued_s) is a wait too, not time spent answering.
            held = min(usage.queued_s, end - requested) if usage is not None else 0.0
            queued, first = requested - asked + held, _since(first_at, requested + held)
            failure = (error, message, wait_s, retry_after_s)
            return Attempt(model, kind, queued, first, end - requested - held, usage, outcome, *failure)

        for position, model in enumerate(models):
            following = models[position + 1] if position + 1 < len(models) else None
            attempt = 0
            while attempt < policy.attempts_per_model:
                attempt += 1
                attempt_request = self._request_for(model, request, partial)
                trimmer = _ContinuationTrimmer(partial) if partial else None
                written = len(partial)  # this attempt's text is partial[written:]
                deltas = 0
                usage: Usage | None = None
                asked = requested = clock()
                first_at: float | None = None
                try:
                    async with self._limiter(model.provider).slot():
                        requested = clock()
                        provider = self._resolver.resolve(model)
                        stream = aiter(provider.stream(attempt_request))
                        watch = _StallWatch(self.policy.stall_s)
                        loop_time = watch.clock
                        try:
                            while True:
                                watch.waiting_since = loop_time()
                                try:
                                    item = await anext(stream)
                                except StopAsyncIteration:
                                    break
                                except asyncio.CancelledError:
                                    if not watch.fired():
                                        raise
                                    raise self._stalled(model) from None
                                finally:
                                    watch.waiting_since = None
                                if isinstance(item, Usage):
                                    usage = item
                                    continue
                                deltas += 1
                                if first_at is None:
                                    first_at = clock()
                                if trimmer is None:
                                    partial += item.text
                                    if (room := sink(item)) is not None:
                                        await room
                                elif text := trimmer.feed(item.text):
                                    partial += text
                                    await _settle(sink(TextDelta(text)))
                        finally:
                            watch.close()
                            close = getattr(stream, "aclose", None)
                            if close is not None:
                                await close()
                    if trimmer is not None and (rest := trimmer.flush()):
                        partial += rest
                        await _settle(sink(TextDelta(rest)))
                    if usage is None or usage.estimated:
                        stop = "end" if usage is None else usage.stop_reason
                        usage = replace(self._estimate(attempt_request, partial[written:]), stop_reason=stop)
                    ended = clock()
                    await _settle(sink(Billed(model, usage)))
                    outcome: AttemptOutcome = "ok" if usage.stop_reason == "end" else "cut"
                    await _settle(sink(ended_attempt(usage, outcome, at=ended)))
                    if usage.stop_reason == "max_tokens" and continued < continue_cut and partial:
                        continued += 1
                        kind = "continuation"
                        await _settle(
                            sink(
                                Recovery(
                                    f"{model}: the answer reached max_tokens ({request.max_tokens}); "
                                    f"continuing it ({continued} of {continue_cut})"
                                )
                            )
                        )
                        attempt = 0  # a fresh answer's attempts: nothing failed
                        continue
                    return
                except asyncio.CancelledError:
                    # Stopped by the user (a stall is a ProviderError by now): reported, not awaited.
                    cut_usage = self._estimate(attempt_request, partial[written:]) if deltas else None
                    sink(ended_attempt(cut_usage, "cancelled"))
                    raise
                except ConfigurationError as exc:
                    await _settle(sink(ended_attempt(None, "failed", "config", str(exc))))
                    if following is None:
                        raise
                    await _settle(sink(Recovery(f"{exc}. Falling back to {following}")))
                    kind = "fallback"
                    break
                except ProviderError as exc:
                    ended = clock()
                    billed = None
                    if deltas:  # the provider worked for this text even if it never said how much
                        billed = self._estimate(attempt_request, partial[written:])
                        await _settle(sink(Billed(model, billed)))
                    if trimmer is not None and (rest := trimmer.flush()):
                        partial += rest
                        await _settle(sink(TextDelta(rest)))
                    wait = policy.delay(attempt, exc.retry_after_s, self._rng)
                    too_long = exc.retry_after_s is not None and exc.retry_after_s > policy.max_retry_after_s
                    gives_up = not exc.retryable or attempt == policy.attempts_per_model or too_long
                    await _settle(
                        sink(
                            ended_attempt(
                                billed,
                                "failed",
                                exc.kind or _kind_of(exc),
                                str(exc),
                                0.0 if gives_up else wait,
                                exc.retry_after_s,
                                at=ended,
                            )
                        )
                    )
                    if gives_up:
                        if following is None:
                            raise
                        await _settle(sink(Recovery(f"{exc}. Falling back to {following}")))
                        kind = "fallback"
                        break
                    next_try = f"attempt {attempt + 1} of {policy.attempts_per_model}"
                    keep = f", continuing from the {len(partial)} characters received" if partial else ""
                    await _settle(sink(Recovery(f"{exc}. Retrying in {wait:.1f}s ({next_try}{keep})")))
                    kind = "retry"
                    await self._sleep(wait)
        raise AssertionError("unreachable: the last model's failure is raised")  # pragma: no cover

    @staticmethod
    def _request_for(model: ModelRef, request: ChatRequest, partial: str) -> ChatRequest:
        if not partial:
            return replace(request, model=model.model)
        messages = (
            *request.messages,
            ChatMessage("assistant", partial),
            ChatMessage("user", CONTINUE_INSTRUCTION),
        )
        # A continuation goes on from inside the JSON: a schema would make it start a new object.
        return replace(request, model=model.model, messages=messages, output_schema=None)

    def _estimate(self, request: ChatRequest, output: str) -> Usage:
        """Usage counted with the tokenizer (the provider reported none), marked estimated."""
        count = self._count_tokens
        reads = sum(count(m.content) + PER_MESSAGE_TOKENS for m in request.messages)
        return Usage(max(1, reads), count(output), estimated=True)

    def _stalled(self, model: ModelRef) -> ProviderError:
        return ProviderError(
            f"the stream stalled: nothing for {self.policy.stall_s:g}s",
            provider=model.provider,
            model=model.model,
            fix="Retry; a server that is overloaded or stuck can be given more time with the stall setting",
            retryable=True,
            kind="stall",
        )


def _since(moment: float | None, start: float) -> float | None:
    return None if moment is None else moment - start


def _kind_of(exc: ProviderError) -> str:
    """A failure's kind when its provider did not name one."""
    return "transient" if exc.retryable else "other"
