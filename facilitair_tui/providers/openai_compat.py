"""Chat provider for OpenAI and every server that speaks the OpenAI Chat Completions API.

One class serves OpenAI itself, OpenRouter and local OpenAI-compatible servers (Ollama,
llama.cpp server, vLLM, LM Studio). It talks through the official ``openai`` SDK, streams
text deltas, reports exactly one ``Usage`` at the end and turns every SDK failure into a
``ProviderError`` that says what went wrong and what to do about it.

This layer never retries (the SDK's own retries are switched off); a reliability layer above
it decides, using ``ProviderError.retryable``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from facilitair_tui.core.provider import (
    ChatMessage,
    ChatRequest,
    OutputSchema,
    ProviderError,
    StopReason,
    StreamItem,
    TextDelta,
    Usage,
)
from facilitair_tui.providers.http_common import (
    MAX_SERVER_MESSAGE,
    NO_KEY_PLACEHOLDER,
    ErrorMaker,
    cause_text,
    display_url,
    estimate_input_tokens,
    redact,
    retry_after_s,
)

__all__ = ["NO_KEY_PLACEHOLDER", "OpenAICompatibleProvider", "redact", "retry_after_s"]

# ``finish_reason`` -> why the model stopped. Any other reason a server gives ("tool_calls", a
# server's own "eos") still means the answer ended.
_STOP_REASONS: dict[str, StopReason] = {"length": "max_tokens", "content_filter": "filtered"}

# Header names whose values are credentials and must never show up in an error message.
# Statuses with which a server refuses an option it does not know (Structured Outputs).
_REJECTED_OPTION = frozenset({400, 422})


def _rejects_structured_outputs(exc: openai.APIStatusError) -> bool:
    """Whether a server refused the request for its ``response_format``: a 400 or 422, or any
    status that names it (llama-cpp-python's server answers 500 with a validation error)."""
    return exc.status_code in _REJECTED_OPTION or "response_format" in str(exc)


_SECRET_HEADER_HINTS = ("auth", "key", "token", "secret", "cookie", "password")


def _to_sdk_message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _quota_exhausted(exc: openai.APIStatusError) -> bool:
    return exc.status_code == 429 and exc.code == "insufficient_quota"


def _server_message(exc: openai.APIError) -> str:
    """The server's own explanation of an error, as short plain text."""
    body = exc.body
    message: object = None
    if isinstance(body, Mapping):
        message = body.get("message")
        if message is None and isinstance(body.get("error"), str):
            message = body.get("error")
    elif isinstance(body, str) and body.strip():
        message = body.strip()
    text = message if isinstance(message, str) and message.strip() else exc.message
    # No trailing period: ProviderError.__str__ appends ". <fix>".
    text = " ".join(text.split()).rstrip(" .") or exc.message
    if len(text) > MAX_SERVER_MESSAGE:
        text = text[: MAX_SERVER_MESSAGE - 1] + "…"
    return text


class OpenAICompatibleProvider:
    """A ``ChatProvider`` for any OpenAI Chat Completions endpoint.

    ``base_url`` None means the SDK default (api.openai.com, or ``OPENAI_BASE_URL``).
    ``api_key`` None means the endpoint needs no key; a placeholder is sent instead.
    ``send_usage_option`` False leaves out ``stream_options`` for servers that reject it;
    usage is then estimated.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float = 60.0,
        send_usage_option: bool = True,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._timeout_s = timeout_s
        self._send_usage_option = send_usage_option
        secrets: list[str] = [api_key] if api_key else []
        for header, value in (extra_headers or {}).items():
            if any(hint in header.lower() for hint in _SECRET_HEADER_HINTS):
                secrets.append(value)
                # "Bearer abc": the bare token may be echoed on its own.
                secrets.extend(part for part in value.split() if len(part) >= 8)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
            default_headers=dict(extra_headers) if extra_headers else None,
        )
        if name != "openai":
            # The SDK picks up OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment and would send
            # them to any endpoint; they belong to OpenAI alone.
            self._client.organization = None
            self._client.project = None
        self._url = display_url(str(self._client.base_url))
        self._errors = ErrorMaker(name, self._url, secrets)
        # Models whose server rejected Structured Outputs: asked by the prompt alone from then on.
        self._no_structured_outputs: set[str] = set()

    @property
    def base_url(self) -> str:
        """The endpoint this provider talks to, without credentials."""
        return self._url

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> OpenAICompatibleProvider:
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

        Raises ``ProviderError`` for every failure, including a stream that ends without a
        ``finish_reason`` (the SDK calls that a success). Cancelling the consumer closes the HTTP
        response (the ``async with`` below), which stops generation on the server.
        """
        schema = request.output_schema
        if schema is not None and request.model in self._no_structured_outputs:
            schema = None
        try:
            try:
                sdk_stream = await self._create(request, schema)
            except openai.APIStatusError as exc:
                if schema is None or not _rejects_structured_outputs(exc):
                    raise
                # A server without Structured Outputs rejects the option: ask again without it
                # (the prompt asks for the same JSON) and do not offer it to this model again.
                self._no_structured_outputs.add(request.model)
                sdk_stream = await self._create(request, None)
        except Exception as exc:
            # ``from None``: the SDK exception may quote the key; keep it out of tracebacks too.
            raise self._request_error(exc, request.model) from None

        deltas = 0
        reported: Usage | None = None
        finish: str | None = None
        answered_by = ""
        async with sdk_stream:
            while True:
                try:
                    chunk = await anext(sdk_stream)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._stream_error(exc, request.model, deltas) from None
                if getattr(chunk, "usage", None) is not None:
                    reported = self._usage_of(chunk) or reported
                finish = self._finish_of(chunk) or finish
                if not answered_by and isinstance(named := getattr(chunk, "model", None), str):
                    answered_by = named
                text = self._text_of(chunk)
                if text:
                    deltas += 1
                    yield TextDelta(text)

        if finish is None:
            raise self._errors.unfinished(request.model, deltas, "a finish_reason")
        usage = reported or Usage(
            input_tokens=estimate_input_tokens(request), output_tokens=deltas, estimated=True
        )
        yield replace(usage, stop_reason=_STOP_REASONS.get(finish, "end"), response_model=answered_by)

    async def _create(
        self, request: ChatRequest, schema: OutputSchema | None
    ) -> openai.AsyncStream[ChatCompletionChunk]:
        response_format: Any = openai.omit
        if schema is not None:
            response_format = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "description": schema.description,
                    "schema": dict(schema.schema),
                    "strict": True,
                },
            }
        return await self._client.chat.completions.create(
            model=request.model,
            messages=[_to_sdk_message(m) for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stream=True,
            stream_options={"include_usage": True} if self._send_usage_option else openai.omit,
            response_format=response_format,
            seed=openai.omit if request.seed is None else request.seed,
        )

    # -- chunk reading -------------------------------------------------------------------

    @staticmethod
    def _text_of(chunk: ChatCompletionChunk) -> str | None:
        # The SDK builds chunks without validation, so a quirky server can leave fields out.
        choices = getattr(chunk, "choices", None)
        if not choices:
            return None
        delta = getattr(choices[0], "delta", None)
        content = getattr(delta, "content", None)
        return content if isinstance(content, str) else None

    @staticmethod
    def _finish_of(chunk: ChatCompletionChunk) -> str | None:
        choices = getattr(chunk, "choices", None)
        if not choices:
            return None
        reason = getattr(choices[0], "finish_reason", None)
        return reason if isinstance(reason, str) and reason else None

    @staticmethod
    def _usage_of(chunk: ChatCompletionChunk) -> Usage | None:
        usage = getattr(chunk, "usage", None)
        if usage is None:
            return None
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", None)
        return Usage(
            input_tokens=prompt,
            output_tokens=completion,
            cached_input_tokens=cached if isinstance(cached, int) and 0 <= cached <= prompt else 0,
        )

    # -- error mapping -------------------------------------------------------------------

    def _request_error(self, exc: Exception, model: str) -> ProviderError:
        """Map a failure that happened before any streamed data arrived."""
        if isinstance(exc, openai.APIStatusError):
            quota = _quota_exhausted(exc)
            return self._errors.status(self._status_error(exc, model), exc.status_code, quota=quota)
        if isinstance(exc, openai.APITimeoutError):
            return self._errors.timed_out(model, self._timeout_s)
        if isinstance(exc, openai.APIConnectionError):
            return self._errors.unreachable(
                model,
                exc,
                check=" (a local server must be started first, e.g. `ollama serve`) "
                "and that base_url is right",
            )
        if isinstance(exc, openai.APIError):
            return self._errors.server_reported(model, _server_message(exc))
        return self._errors.unexpected(model, exc)

    def _status_error(self, exc: openai.APIStatusError, model: str) -> ProviderError:
        status = exc.status_code
        detail = _server_message(exc)
        if status in (401, 403):
            what = "authentication failed" if status == 401 else "access denied"
            return self._errors(
                f"{what} (HTTP {status}): {detail}", model, fix=self._errors.key_hint(), retryable=False
            )
        if status == 404:
            return self._errors(
                f"model {model!r} is unknown to {self._url} (HTTP 404): {detail}",
                model,
                fix="Check the model name (`facilitair models list` shows the available models) "
                "and that base_url points at the API root (usually ending in /v1)",
                retryable=False,
            )
        if status == 429:
            if exc.code == "insufficient_quota":
                return self._errors(
                    f"quota exhausted (HTTP 429): {detail}",
                    model,
                    fix="Add credit or raise the spending limit of this account, or choose another provider",
                    retryable=False,
                )
            retry_after = retry_after_s(exc.response.headers)
            wait = f"; the server asks to wait {retry_after:g}s" if retry_after is not None else ""
            return self._errors(
                f"rate limited (HTTP 429){wait}: {detail}",
                model,
                fix="Wait a moment and retry, or run fewer agents at once on this provider",
                retryable=True,
                retry_after_s=retry_after,
            )
        if status >= 500 or status == 408:
            return self._errors(
                f"server error (HTTP {status}): {detail}",
                model,
                fix="The provider is having trouble; retry shortly or choose another model",
                retryable=True,
                retry_after_s=retry_after_s(exc.response.headers),
            )
        if status in (400, 413, 422):
            return self._errors(
                f"bad request (HTTP {status}): {detail}",
                model,
                fix="If the context is too long, shorten the task or pick a model with a larger context "
                "window; otherwise check max_tokens and the model's supported parameters",
                retryable=False,
            )
        return self._errors(
            f"request rejected (HTTP {status}): {detail}",
            model,
            fix=f"Check this endpoint's configuration (base_url {self._url}, model name, key)",
            retryable=False,
        )

    def _stream_error(self, exc: Exception, model: str, deltas: int) -> ProviderError:
        """Map a failure while reading the stream, after ``deltas`` text deltas arrived."""
        after = f"after {deltas} text delta{'s' if deltas != 1 else ''}"
        kind = "broken_stream"
        if isinstance(exc, openai.APITimeoutError):
            reason = f"no data from {self._url} for {self._timeout_s:g}s"
            kind = "timeout"
        elif isinstance(exc, openai.APIConnectionError):
            cause = cause_text(exc)
            reason = f"the connection to {self._url} dropped" + (f" ({cause})" if cause else "")
        elif isinstance(exc, openai.APIError):
            reason = f"the server reported an error: {_server_message(exc)}"
            kind = "server"
        elif isinstance(exc, ValueError):  # json.JSONDecodeError, pydantic.ValidationError
            reason = f"malformed stream event ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        else:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:MAX_SERVER_MESSAGE]}"
        return self._errors(
            f"stream broke {after}: {reason}",
            model,
            fix="Retry; if it keeps happening, check the server's logs or choose another model",
            retryable=True,
            kind=kind,
        )
