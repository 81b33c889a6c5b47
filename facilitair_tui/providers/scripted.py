"""A provider that plays back scripted replies: deterministic runs for tests and benchmarks.

It goes through exactly the same engine path as a real model (the engine can't tell), but its
tokens come from a script instead of a network or a model file. Each script entry can pause
between deltas, fail after some deltas, or return nothing, so every engine path is reachable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from facilitair_tui.core.provider import (
    ChatProvider,
    ChatRequest,
    ModelRef,
    ProviderError,
    StopReason,
    StreamItem,
    TextDelta,
    Usage,
)


@dataclass
class Reply:
    deltas: Sequence[str] = ()
    delay_s: float = 0.0  # between deltas; 0 still yields to the event loop
    fail_after: int | None = None  # raise a ProviderError after this many deltas
    report_usage: bool = True
    stop_reason: StopReason = "end"  # what the final Usage says (e.g. "max_tokens": cut)


@dataclass
class Call:
    model: str
    request: ChatRequest
    started: float
    delivered: list[str] = field(default_factory=list)


ReplyFor = Callable[[ChatRequest], Reply]


class ScriptedProvider:
    """``scripted:<anything>``; ``reply_for(request)`` decides what each call streams."""

    name = "scripted"

    def __init__(self, reply_for: ReplyFor, *, clock: Callable[[], float] | None = None) -> None:
        self._reply_for = reply_for
        self._clock = clock or time.perf_counter
        self.calls: list[Call] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        reply = self._reply_for(request)
        call = Call(request.model, request, self._clock())
        self.calls.append(call)
        for index, text in enumerate(reply.deltas):
            if reply.fail_after is not None and index >= reply.fail_after:
                raise ProviderError(
                    f"connection dropped after {index} deltas",
                    provider=self.name,
                    model=request.model,
                    retryable=True,
                    kind="broken_stream",
                )
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            else:
                await asyncio.sleep(0)
            call.delivered.append(text)
            yield TextDelta(text)
        if reply.fail_after is not None and reply.fail_after >= len(reply.deltas):
            raise ProviderError(
                "stream ended without completion",
                provider=self.name,
                model=request.model,
                kind="broken_stream",
            )
        if reply.report_usage:
            chars = sum(len(m.content) for m in request.messages)
            yield Usage(chars // 4 or 1, len(call.delivered), stop_reason=reply.stop_reason)

    async def aclose(self) -> None:
        return None


class SingleProviderResolver:
    """Resolves every model to one provider instance."""

    def __init__(self, provider: ChatProvider) -> None:
        self.provider = provider

    def resolve(self, ref: ModelRef) -> ChatProvider:
        return self.provider
