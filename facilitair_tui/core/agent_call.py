"""One agent's model call, streamed into the session's events, and the ledger of what calls cost.

A call goes through the gateway (retries, limits, fallback models); its deltas are pushed to the
event stream as they come, and a call ends with ``agent_finished`` whatever happened: a provider
failure fails the agent, never the session, and a cancelled call still counts what it read and
wrote, so the session's totals stay honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from . import events as ev
from .cost import PriceTable, add_costs
from .event_stream import EventStream
from .gateway import Attempt, Billed, Gateway, GatewayItem
from .provider import (
    ChatMessage,
    ChatRequest,
    ConfigurationError,
    ModelRef,
    OutputSchema,
    ProviderError,
    StopReason,
    TextDelta,
    Usage,
)
from .session_spec import SessionSpec


@dataclass
class AgentResult:
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # of the input tokens, those read from the backend's prompt cache
    cost_usd: float | None = 0.0
    status: ev.AgentStatus = "done"
    stop_reason: StopReason = "end"  # why the last attempt's model stopped ("max_tokens": cut)


@dataclass
class CallLedger:
    """Every finished model call of a session: its totals, and what the budget guard forecasts from."""

    results: list[AgentResult] = field(default_factory=list)
    last_input: dict[str, int] = field(default_factory=dict)  # each agent's input tokens in its latest call
    chunk_output: dict[int, int] = field(default_factory=dict)  # output tokens written per chunk

    def record(self, chunk: int, agent: str, result: AgentResult) -> None:
        self.last_input[agent] = result.input_tokens
        self.chunk_output[chunk] = self.chunk_output.get(chunk, 0) + result.output_tokens
        self.results.append(result)

    def spent_usd(self) -> float | None:
        """None when a call's price is unknown."""
        return add_costs(r.cost_usd for r in self.results)


class AgentCaller:
    """Runs the model calls of one session's agents.

    ``models`` and ``fallbacks`` are the session's own dictionaries, read at each call: the
    budget guard's "cheaper" answer changes them in place for the calls that follow."""

    def __init__(
        self,
        spec: SessionSpec,
        stream: EventStream,
        gateway: Gateway,
        ledger: CallLedger,
        *,
        models: Mapping[str, ModelRef],
        fallbacks: Mapping[str, tuple[ModelRef, ...]],
        prices: PriceTable,
        clock: Callable[[], float],
    ) -> None:
        defaults = spec.workflow.defaults
        self._temperature = defaults.temperature
        read_after = spec.read_after_tokens
        self._read_after_tokens = defaults.read_after_tokens if read_after is None else read_after
        self._continue_cut = 0 if spec.max_tokens is not None else defaults.continue_cut
        self._stream = stream
        self._gateway = gateway
        self._ledger = ledger
        self._models = models
        self._fallbacks = fallbacks
        self._prices = prices
        self._clock = clock

    async def call(
        self,
        index: int,
        agent: str,
        messages: tuple[ChatMessage, ...],
        max_tokens: int,
        reads: list[str],
        ready: asyncio.Event | None = None,
        *,
        output_schema: OutputSchema | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        continue_cut: int | None = None,
        synthesizes: bool = False,
    ) -> AgentResult:
        """Stream one model call into token events; never raises a provider failure.

        ``ready`` is set once the agent has streamed ``read_after_tokens`` deltas: the agents that
        read this one may start. ``output_schema``: the JSON the answer must be. ``temperature``
        (the workflow's default when None) and ``seed``: how the model samples. ``continue_cut``:
        how often a cut answer is continued (the workflow's default when None; a --max-tokens
        of the user's always turns it off)."""
        stream = self._stream
        sid = stream.session_id
        ref = self._models[agent]
        request = ChatRequest(
            model=ref.model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=self._temperature if temperature is None else temperature,
            output_schema=output_schema,
            seed=seed,
        )
        threshold = self._read_after_tokens
        result = AgentResult()

        started = self._clock()
        stream.emit(
            ev.AgentStarted(
                session_id=sid, agent=agent, chunk=index, model=str(ref), reads=reads, synthesizes=synthesizes
            )
        )
        models = (ref, *self._fallbacks.get(agent, ()))
        billed: list[Billed] = []

        router = stream.router
        push = stream.push
        attempts = 0

        def report(attempt: Attempt) -> None:
            nonlocal attempts
            attempts += 1
            usage = attempt.usage
            spent = attempt.queued_s + attempt.duration_s
            stream.emit(
                ev.ModelAttempt(
                    session_id=sid,
                    agent=agent,
                    chunk=index,
                    attempt=attempts,
                    model=str(attempt.model),
                    kind=attempt.kind,
                    started_t=round(max(0.0, stream.now() - spent), 6),
                    queued_ms=_ms(attempt.queued_s),
                    first_token_ms=None if attempt.first_token_s is None else _ms(attempt.first_token_s),
                    duration_ms=_ms(attempt.duration_s),
                    input_tokens=usage.input_tokens if usage else 0,
                    output_tokens=usage.output_tokens if usage else 0,
                    cached_input_tokens=usage.cached_input_tokens if usage else 0,
                    usage_estimated=usage.estimated if usage else False,
                    cost_usd=self._prices.cost(attempt.model, usage) if usage else 0.0,
                    outcome=attempt.outcome,
                    stop_reason=usage.stop_reason if usage and attempt.outcome != "failed" else None,
                    error=attempt.error,
                    message=attempt.message,
                    wait_ms=_ms(attempt.wait_s),
                    retry_after_s=attempt.retry_after_s,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    response_model=usage.response_model if usage else "",
                )
            )

        def on_item(item: GatewayItem) -> Awaitable[None] | None:
            if isinstance(item, TextDelta):
                text = item.text
                if not text:
                    return None
                wait_for_room = push(agent, text)
                if ready is not None and not ready.is_set() and router.count(agent) >= threshold:
                    ready.set()
                return wait_for_room
            if isinstance(item, Billed):
                billed.append(item)
            elif isinstance(item, Attempt):
                report(item)
            else:  # a retry or a fallback: the agent goes on, the user sees why
                stream.emit(
                    ev.Error(session_id=sid, agent=agent, chunk=index, message=item.message, recoverable=True)
                )
            return None

        try:
            continuing = (
                self._continue_cut if continue_cut is None or not self._continue_cut else continue_cut
            )
            await self._gateway.call(models, request, on_item, continue_cut=continuing)
        except asyncio.CancelledError:
            result.status = "cancelled"
            raise
        except (ProviderError, ConfigurationError) as exc:
            result.status = "failed"
            stream.emit(
                ev.Error(session_id=sid, agent=agent, chunk=index, message=str(exc), recoverable=True)
            )
        except Exception as exc:  # a backend bug fails this agent, not the session
            result.status = "failed"
            message = f"{ref}: unexpected failure: {exc!r}"
            stream.emit(ev.Error(session_id=sid, agent=agent, chunk=index, message=message, recoverable=True))
        finally:
            result.text = router.text(agent)
            if billed:
                usage = Usage(
                    sum(b.usage.input_tokens for b in billed),
                    sum(b.usage.output_tokens for b in billed),
                    estimated=any(b.usage.estimated for b in billed),
                    cached_input_tokens=sum(b.usage.cached_input_tokens for b in billed),
                )
                cost = add_costs(self._prices.cost(b.model, b.usage) for b in billed)
                if result.status == "done":
                    result.stop_reason = billed[-1].usage.stop_reason
            else:
                # Cancelled, or no attempt produced text: count what we saw so totals stay honest.
                chars = sum(len(m.content) for m in messages)
                usage = Usage(max(1, chars // 4), router.count(agent), estimated=True)
                cost = self._prices.cost(ref, usage)
            if result.status == "done" and not result.text.strip():
                result.status = "failed"
                stream.emit(
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
            result.cached_input_tokens = min(usage.cached_input_tokens, usage.input_tokens)
            result.cost_usd = cost
            self._ledger.record(index, agent, result)
            stream.emit(
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
                    stop_reason=result.stop_reason,
                    cached_input_tokens=result.cached_input_tokens,
                )
            )
        return result


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
