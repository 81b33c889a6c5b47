"""Chat provider for Anthropic's Messages API (and servers that speak it).

It talks through the official ``anthropic`` SDK, streams the text deltas of the reply, reports
exactly one ``Usage`` at the end and turns every SDK failure into a ``ProviderError`` that says
what went wrong and what to do about it, in the same way as the OpenAI-compatible provider.

The Messages API differs from Chat Completions in ways this module hides from the engine:
system prompts go in their own ``system`` parameter, turns must alternate and start with the
user, a final assistant turn is a prefill the model continues, usage arrives split over the
``message_start`` and ``message_delta`` events, and an overloaded server can report an error as
an event in the middle of a 200 stream.

This layer never retries (the SDK's own retries are switched off); a reliability layer above
it decides, using ``ProviderError.retryable`` and ``ProviderError.retry_after_s``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Literal

import anthropic
import httpx2
from anthropic.types import MessageParam

from facilitair_tui.core.provider import (
    ChatMessage,
    ChatRequest,
    ProviderError,
    StopReason,
    StreamItem,
    TextDelta,
    Usage,
)
from facilitair_tui.providers.http_common import (
    NO_KEY_PLACEHOLDER,
    ErrorMaker,
    cause_text,
    display_url,
    estimate_input_tokens,
    one_line,
    retry_after_s,
)

__all__ = ["AnthropicProvider"]

# The Messages API wants the conversation to open with a user turn; this one stands in when the
# request opens with the assistant or holds only system prompts.
_OPENING_USER_TURN = "Please proceed."
# Error types (``error.type`` in Anthropic's error bodies) that another attempt will not cure.
_PERMANENT_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "billing_error",
        "request_too_large",
    }
)
# 429s that mean the account's spending limit is reached: waiting a minute will not help.
_SPEND_LIMIT_CODES = frozenset(
    {"contract_spend_limit_reached", "enforced_spend_limit_reached", "ramp_limit_exceeded"}
)

# ``stop_reason`` -> why the model stopped; "end_turn", "stop_sequence" and the rest: it finished.
_STOP_REASONS: dict[str, StopReason] = {"max_tokens": "max_tokens", "refusal": "filtered"}

_RETRY_FIX = "Retry; if it keeps happening, check the server's logs or choose another model"
_OVERLOADED_FIX = "The API is under heavy load; retry shortly or choose another model"

_Turn = tuple[Literal["user", "assistant"], list[str]]
# ``_UsageTally`` attribute, and the field of Anthropic's usage objects it comes from.
_INPUT_USAGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("input", "input_tokens"),
    ("cache_read", "cache_read_input_tokens"),
    ("cache_write", "cache_creation_input_tokens"),
)


def _delta_text(delta: object, tool_input: bool) -> str | None:
    """A content delta's text: the answer's text, or with a schema the tool input's JSON (the
    answer asked for; any text around the tool call is then left out)."""
    kind = getattr(delta, "type", None)
    text = getattr(delta, "partial_json" if tool_input else "text", None)
    wanted = "input_json_delta" if tool_input else "text_delta"
    return text if kind == wanted and isinstance(text, str) else None


def _to_sdk_request(messages: Sequence[ChatMessage]) -> tuple[str, list[MessageParam]]:
    """Split ``messages`` into the ``system`` parameter and a conversation the API accepts.

    System messages are joined with blank lines. Consecutive turns of the same role are merged
    (the API wants user and assistant to alternate) and a user turn is put first when the
    conversation would open with the assistant. A final assistant turn is kept: it is a prefill
    the model continues, which is how a broken stream is resumed. The API rejects empty text and
    a final assistant turn that ends in whitespace, so empty turns are left out and the prefill
    is stripped on the right (the continuation may then start with the whitespace it lost).
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    turns: list[_Turn] = []
    for message in messages:
        if message.role == "system" or not message.content.strip():
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    if turns and turns[-1][0] == "assistant":
        turns[-1][1][-1] = turns[-1][1][-1].rstrip()
    if not turns or turns[0][0] != "user":
        turns.insert(0, ("user", [_OPENING_USER_TURN]))
    sdk_messages: list[MessageParam] = []
    for role, parts in turns:
        content = "\n\n".join(parts)
        if role == "user":
            sdk_messages.append({"role": "user", "content": content})
        else:
            sdk_messages.append({"role": "assistant", "content": content})
    return system, sdk_messages


def _int_or_none(value: object) -> int | None:
    # ``bool`` is an ``int``; a quirky server's ``true`` is not a token count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _UsageTally:
    """The token counts a stream reported, field by field.

    ``message_start`` carries the input counts, ``message_delta`` the (cumulative) output count
    and, in newer API versions, the input counts again. Each field keeps its latest reported
    value, so a count missing from a later event never wipes out an earlier one.
    """

    __slots__ = ("cache_read", "cache_write", "input", "output")

    def __init__(self) -> None:
        self.input: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.output: int | None = None

    def update(self, usage: object, *, with_output: bool) -> None:
        """Take the counts ``usage`` reports; the output count only if ``with_output``.

        ``message_start`` reports a provisional output count that is not the reply's.
        """
        if usage is None:
            return
        fields = (*_INPUT_USAGE_FIELDS, ("output", "output_tokens")) if with_output else _INPUT_USAGE_FIELDS
        for attribute, reported_as in fields:
            value = _int_or_none(getattr(usage, reported_as, None))
            if value is not None:
                setattr(self, attribute, value)

    def usage(self, request: ChatRequest, deltas: int) -> Usage:
        """The reported ``Usage``, or one estimated where a count is missing.

        Input tokens include cache reads and writes: all of them were read by the model. Cache
        reads are also counted apart (they are billed lower); cache writes are priced as input.
        """
        input_tokens = None
        if self.input is not None:
            input_tokens = self.input + (self.cache_read or 0) + (self.cache_write or 0)
        if input_tokens is None or self.output is None:
            return Usage(
                input_tokens=input_tokens if input_tokens is not None else estimate_input_tokens(request),
                output_tokens=self.output if self.output is not None else deltas,
                estimated=True,
                cached_input_tokens=self.cache_read or 0 if input_tokens is not None else 0,
            )
        return Usage(
            input_tokens=input_tokens, output_tokens=self.output, cached_input_tokens=self.cache_read or 0
        )


def _quota_exhausted(exc: anthropic.APIStatusError) -> bool:
    return exc.status_code == 402


def _server_message(exc: anthropic.APIError) -> str:
    """The server's own explanation of an error (``error.message`` of the body), as short plain text."""
    message = exc.api_message if isinstance(exc, anthropic.APIStatusError) else None
    if not (isinstance(message, str) and message.strip()):
        body = exc.body
        message = body if isinstance(body, str) and body.strip() else exc.message
    # No trailing period: ProviderError.__str__ appends ". <fix>".
    return one_line(message).rstrip(" .") or one_line(exc.message)


class AnthropicProvider:
    """A ``ChatProvider`` for Anthropic's Messages API.

    ``base_url`` None means the SDK default (api.anthropic.com, or ``ANTHROPIC_BASE_URL``); a
    given one is the API root, without ``/v1``. ``api_key`` None means the endpoint needs no key
    (a local server); a placeholder is sent instead, so the SDK never falls back to a key or
    profile from the environment behind the caller's back. ``default_max_tokens`` is sent when a
    request's ``max_tokens`` is below one: the API requires a limit, and 0 means "reply nothing".

    ``send_temperature`` is off by default: the API version the SDK speaks (``anthropic-version``
    2026-10-21) rejects sampling parameters on every model and the SDK no longer takes them, so
    the request's temperature is only sent (as an extra body field) to servers known to accept it.
    """

    def __init__(
        self,
        name: str = "anthropic",
        *,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float = 60.0,
        default_max_tokens: int = 4096,
        send_temperature: bool = False,
    ) -> None:
        self.name = name
        self._timeout_s = timeout_s
        self._default_max_tokens = default_max_tokens
        self._send_temperature = send_temperature
        key = api_key or NO_KEY_PLACEHOLDER
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
            # The SDK sends the key as a bearer token; the API's documented header (and the one
            # compatible servers look for) is x-api-key, which the API prefers when both are sent.
            default_headers={"x-api-key": key},
        )
        self._url = display_url(str(self._client.base_url))
        self._errors = ErrorMaker(name, self._url, (api_key,) if api_key else ())

    @property
    def base_url(self) -> str:
        """The endpoint this provider talks to, without credentials."""
        return self._url

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AnthropicProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamItem, None]:
        """Yield ``TextDelta`` items as they arrive, then exactly one ``Usage``.

        Only text deltas are yielded (with an ``output_schema``, the forced tool's input JSON);
        pings, thinking and other content blocks are skipped. A
        stream that ends before ``message_stop`` is a failure, not a short answer. Raises
        ``ProviderError`` for every failure. Cancelling the consumer closes the HTTP response
        (the ``async with`` below), which stops generation on the server.
        """
        system, messages = _to_sdk_request(request.messages)
        extra_body: dict[str, object] | None = (
            {"temperature": request.temperature} if self._send_temperature else None
        )
        # Failures are raised outside the ``except`` blocks, so the SDK exception is neither the
        # cause nor the context of the ``ProviderError``: it may quote the key in its message, and
        # it holds the request, whose headers carry the key.
        failure: ProviderError | None = None
        # A schema becomes the one tool the model must call: its input is the JSON asked for,
        # streamed as ``input_json_delta`` pieces.
        schema = request.output_schema
        tools: Any = anthropic.omit
        tool_choice: Any = anthropic.omit
        if schema is not None:
            tools = [
                {"name": schema.name, "description": schema.description, "input_schema": dict(schema.schema)}
            ]
            tool_choice = {"type": "tool", "name": schema.name}
        try:
            sdk_stream = await self._client.messages.create(
                model=request.model,
                messages=messages,
                system=system or anthropic.omit,
                max_tokens=request.max_tokens if request.max_tokens >= 1 else self._default_max_tokens,
                stream=True,
                tools=tools,
                tool_choice=tool_choice,
                extra_body=extra_body,
            )
        except Exception as exc:
            failure = self._request_error(exc, request.model)
        if failure is not None:
            raise failure from None

        deltas = 0
        tally = _UsageTally()
        stopped = False
        stop: StopReason = "end"
        answered_by = ""
        async with sdk_stream:
            while True:
                try:
                    event: Any = await anext(sdk_stream)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    failure = self._stream_error(exc, request.model, deltas)
                if failure is not None:
                    raise failure from None
                # The SDK builds events without validation, so a quirky server can leave fields out.
                kind = getattr(event, "type", None)
                if kind == "content_block_delta":
                    delta = getattr(event, "delta", None)
                    text = _delta_text(delta, schema is not None)
                    if text:
                        deltas += 1
                        yield TextDelta(text)
                elif kind == "message_start":
                    message = getattr(event, "message", None)
                    tally.update(getattr(message, "usage", None), with_output=False)
                    named = getattr(message, "model", None)
                    answered_by = named if isinstance(named, str) else answered_by
                elif kind == "message_delta":
                    tally.update(getattr(event, "usage", None), with_output=True)
                    reason = getattr(getattr(event, "delta", None), "stop_reason", None)
                    stop = _STOP_REASONS.get(reason, "end") if isinstance(reason, str) else stop
                elif kind == "message_stop":
                    stopped = True

        if not stopped:
            raise self._errors.unfinished(request.model, deltas, "message_stop")
        yield replace(tally.usage(request, deltas), stop_reason=stop, response_model=answered_by)

    # -- error mapping -------------------------------------------------------------------

    def _request_error(self, exc: Exception, model: str) -> ProviderError:
        """Map a failure that happened before any streamed data arrived."""
        if isinstance(exc, anthropic.APIStatusError):
            quota = _quota_exhausted(exc)
            return self._errors.status(self._status_error(exc, model), exc.status_code, quota=quota)
        if isinstance(exc, anthropic.APITimeoutError):
            return self._errors.timed_out(model, self._timeout_s)
        if isinstance(exc, anthropic.APIConnectionError):
            return self._errors.unreachable(
                model, exc, check=" and that base_url is right (the API root, without /v1)"
            )
        if isinstance(exc, anthropic.APIError):
            return self._errors.server_reported(model, _server_message(exc))
        return self._errors.unexpected(model, exc)

    def _status_error(self, exc: anthropic.APIStatusError, model: str) -> ProviderError:
        status = exc.status_code
        detail = _server_message(exc)
        retry_after = retry_after_s(exc.response.headers)
        wait = f"; the server asks to wait {retry_after:g}s" if retry_after is not None else ""
        if status in (401, 403):
            what = "authentication failed" if status == 401 else "access denied"
            return self._errors(
                f"{what} (HTTP {status}): {detail}", model, fix=self._errors.key_hint(), retryable=False
            )
        if status == 402:
            return self._errors(
                f"payment required (HTTP 402): {detail}",
                model,
                fix="Add credit to this account (Plans & Billing in the Anthropic console), "
                "or choose another provider",
                retryable=False,
            )
        if status == 404:
            return self._errors(
                f"model {model!r} is unknown to {self._url} (HTTP 404): {detail}",
                model,
                fix="Check the model name (`facilitair models list` shows the available models) "
                "and that base_url is the API root, without /v1 (the SDK adds /v1/messages)",
                retryable=False,
            )
        if status == 429:
            if exc.error_code in _SPEND_LIMIT_CODES:
                return self._errors(
                    f"spending limit reached (HTTP 429): {detail}",
                    model,
                    fix="Raise the spending limit of this account, or choose another provider",
                    retryable=False,
                )
            return self._errors(
                f"rate limited (HTTP 429){wait}: {detail}",
                model,
                fix="Wait a moment and retry, or run fewer agents at once on this provider",
                retryable=True,
                retry_after_s=retry_after,
            )
        if status == 529 or exc.type == "overloaded_error":
            return self._errors(
                f"the API is overloaded (HTTP {status}){wait}: {detail}",
                model,
                fix=_OVERLOADED_FIX,
                retryable=True,
                retry_after_s=retry_after,
            )
        if status >= 500 or status == 408:
            return self._errors(
                f"server error (HTTP {status}){wait}: {detail}",
                model,
                fix="The provider is having trouble; retry shortly or choose another model",
                retryable=True,
                retry_after_s=retry_after,
            )
        if status == 413:
            return self._errors(
                f"request too large (HTTP 413): {detail}",
                model,
                fix="Shorten the task (or the files given as context) and try again",
                retryable=False,
            )
        if status in (400, 422):
            lowered = detail.lower()
            if "prompt is too long" in lowered or ("context" in lowered and "exceed" in lowered):
                return self._errors(
                    f"the prompt is too long for this model (HTTP {status}): {detail}",
                    model,
                    fix="Shorten the task (or the context given to it), or pick a model with a larger "
                    "context window",
                    retryable=False,
                )
            if "prefill" in lowered:
                return self._errors(
                    f"this model does not accept a partial assistant turn (HTTP {status}): {detail}",
                    model,
                    fix="Start the answer over instead of continuing it, or choose a model that "
                    "supports prefill",
                    retryable=False,
                )
            return self._errors(
                f"bad request (HTTP {status}): {detail}",
                model,
                fix="Check max_tokens against the model's output limit and the model's supported "
                "parameters; if the context is too long, shorten the task",
                retryable=False,
            )
        return self._errors(
            f"request rejected (HTTP {status}): {detail}",
            model,
            fix=f"Check this endpoint's configuration (base_url {self._url}, model name, key)",
            retryable=False,
        )

    def _stream_error(self, exc: Exception, model: str, deltas: int) -> ProviderError:
        """Map a failure while reading the stream, after ``deltas`` text deltas arrived.

        The SDK raises the HTTP library's own errors here (a read timeout, a connection closed
        mid-body), ``json.JSONDecodeError`` for a broken event, and an ``APIStatusError`` with
        status 200 for an ``error`` event inside the stream.
        """
        after = f"after {deltas} text delta{'s' if deltas != 1 else ''}"
        retryable = True
        fix = _RETRY_FIX
        kind = "broken_stream"
        if isinstance(exc, httpx2.TimeoutException | anthropic.APITimeoutError):
            reason = f"no data from {self._url} for {self._timeout_s:g}s"
            kind = "timeout"
        elif isinstance(exc, httpx2.TransportError):
            detail = one_line(str(exc)) or type(exc).__name__
            reason = f"the connection to {self._url} dropped ({detail})"
        elif isinstance(exc, anthropic.APIConnectionError):
            cause = cause_text(exc)
            reason = f"the connection to {self._url} dropped" + (f" ({cause})" if cause else "")
        elif isinstance(exc, anthropic.APIStatusError):
            error_type = exc.type or "error"
            detail = _server_message(exc)
            kind = "server"
            if error_type == "overloaded_error":
                reason = f"the API is overloaded ({error_type}: {detail})"
                fix = _OVERLOADED_FIX
            elif error_type == "rate_limit_error":
                reason = f"rate limited ({error_type}: {detail})"
                kind = "rate_limit"
            else:
                reason = f"the server reported an error ({error_type}: {detail})"
            if error_type in _PERMANENT_ERROR_TYPES:
                retryable = False
                kind = "bad_request"
                fix = (
                    "The server refused this request; retrying it unchanged will not help "
                    "(check the task, the model name and max_tokens)"
                )
        elif isinstance(exc, anthropic.APIError):
            reason = f"the server reported an error: {_server_message(exc)}"
            kind = "server"
        elif isinstance(exc, ValueError):  # json.JSONDecodeError, pydantic.ValidationError
            reason = f"malformed stream event ({type(exc).__name__}: {one_line(str(exc), 200)})"
        else:
            reason = f"{type(exc).__name__}: {one_line(str(exc))}"
        return self._errors(
            f"stream broke {after}: {reason}",
            model,
            fix=fix,
            retryable=retryable,
            kind=kind,
        )
