"""The one seam between the engine and every model backend.

A provider streams a chat completion: zero or more ``TextDelta`` items, then exactly one
``Usage`` once the model is done, saying why it stopped. The engine never imports an SDK;
provider families live in ``facilitair_tui.providers`` and implement this Protocol.

A provider yields ``Usage`` only when the backend itself said the answer ended (OpenAI's
``finish_reason``, Anthropic's ``message_stop``, llama.cpp's finish reason). A stream that just
stops, without that end marker, broke: a proxy or load balancer that closes the connection looks
like a short, successful answer to the SDKs, so the provider raises a retryable
``ProviderError`` instead, and the gateway continues the answer like any broken stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """The JSON an answer must be: one object matching ``schema`` (a JSON Schema in the subset
    every backend enforces: objects with every property required and no others, arrays,
    strings). ``name`` and ``description`` name it where a backend asks (a tool, a response
    format). A backend that can enforce it does (a grammar for llama.cpp, Structured Outputs,
    a forced tool); one that cannot gets the prompt alone, which asks for the same JSON."""

    name: str
    description: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float = 0.7
    # When set, the answer is this JSON object, streamed as its text.
    output_schema: OutputSchema | None = None
    # Makes sampling repeatable where the backend allows it (llama.cpp, OpenAI).
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


# Why a model stopped writing: it finished ("end"), it reached ``max_tokens`` and its answer is
# cut ("max_tokens"), or the provider withheld the rest ("filtered": a content filter, a refusal).
StopReason = Literal["end", "max_tokens", "filtered"]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int  # every input token, cached ones included
    output_tokens: int
    # True when the backend did not report usage and we counted it ourselves.
    estimated: bool = False
    # Of the input tokens, those the provider served from its prompt cache (billed lower).
    cached_input_tokens: int = 0
    # Why the model stopped, as the backend said (see ``StopReason``).
    stop_reason: StopReason = "end"
    # The model that answered, as the backend named it (a dated version of the one asked for,
    # or what a router picked); "" when it did not say. Not part of what a usage counts, so it
    # does not take part in comparisons.
    response_model: str = field(default="", compare=False)
    # Seconds the backend held the request before working on it (the embedded engine's wait for
    # a place in its batch); 0 when it does not say. Not counted either.
    queued_s: float = field(default=0.0, compare=False)


StreamItem = TextDelta | Usage


@runtime_checkable
class ChatProvider(Protocol):
    """A model backend. ``name`` is the provider part of a ``provider:model`` spec."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Yield text deltas as the model produces them, then one ``Usage``.

        Cancelling the consuming task must stop generation promptly.
        """
        ...

    async def aclose(self) -> None: ...


class ProviderError(Exception):
    """A backend failed. ``fix`` tells the user what to do about it.

    ``retryable`` marks failures a later attempt could cure (rate limits, 5xx, dropped
    connections); the reliability layer uses it, the engine reports it. ``retry_after_s`` is the
    wait the server asked for (a Retry-After header), if it asked. ``kind`` names the failure
    for traces and stats; "" when not known. The kinds: "rate_limit" (429), "quota" (credit
    exhausted), "server" (5xx, overloaded), "timeout", "unreachable", "broken_stream" (no end
    marker), "stall", "auth" (401, 403), "not_found" (404), "bad_request" (400, context too
    long), "other"; the gateway adds "config" and, for an unnamed failure, "transient" or "other".
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str = "",
        fix: str = "",
        retryable: bool = False,
        retry_after_s: float | None = None,
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.fix = fix
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.kind = kind

    def __str__(self) -> str:
        where = f"{self.provider}:{self.model}" if self.model else self.provider
        text = f"{where}: {self.message}"
        return f"{text}. {self.fix}" if self.fix else text


class ConfigurationError(Exception):
    """The user's configuration, workflow or arguments cannot work; the message says how to fix it."""


class UsageError(ConfigurationError):
    """A value the user gave on the command line (or in a form) is malformed or unknown."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed ``provider:model`` spec."""

    provider: str
    model: str

    @classmethod
    def parse(cls, spec: str) -> ModelRef:
        provider, sep, model = spec.strip().partition(":")
        if not sep or not provider or not model:
            raise UsageError(
                f"model {spec!r} is not of the form PROVIDER:MODEL "
                "(for example local:qwen2.5-coder-0.5b or openai:gpt-4o-mini)"
            )
        return cls(provider.strip().lower(), model.strip())

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class ProviderResolver(Protocol):
    """Turns a model spec into a live provider. Implemented outside the core."""

    def resolve(self, ref: ModelRef) -> ChatProvider: ...
