"""OpenAICompatibleProvider against a real local server speaking the OpenAI streaming format."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from facilitair_tui.core.provider import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    ProviderError,
    StreamItem,
    TextDelta,
    Usage,
)
from facilitair_tui.providers.openai_compat import NO_KEY_PLACEHOLDER, OpenAICompatibleProvider, redact
from tests.support.openai_sse_server import OpenAISSEServer, Script

SECRET = "sk-test-SECRET-123"
MODEL = "test-model-1"
# A generous bound for "finishes promptly": the assertion is on the outcome, never on time.
DEADLINE_S = 20.0

_ENV_THE_SDK_READS = (
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_WEBHOOK_SECRET",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK and its HTTP client read these; a developer's shell must not change the results.
    for name in _ENV_THE_SDK_READS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        yield srv


@pytest.fixture
async def provider(server: OpenAISSEServer) -> AsyncIterator[OpenAICompatibleProvider]:
    prov = OpenAICompatibleProvider("local", base_url=server.base_url, api_key=None, timeout_s=30.0)
    yield prov
    await prov.aclose()


def make_request(
    *,
    messages: tuple[ChatMessage, ...] | None = None,
    max_tokens: int = 64,
    temperature: float = 0.2,
) -> ChatRequest:
    if messages is None:
        messages = (
            ChatMessage("system", "You are terse."),
            ChatMessage("user", "Say hello to the world."),
        )
    return ChatRequest(model=MODEL, messages=messages, max_tokens=max_tokens, temperature=temperature)


async def collect(prov: ChatProvider, request: ChatRequest) -> list[StreamItem]:
    return [item async for item in prov.stream(request)]


async def collect_until_error(
    prov: ChatProvider, request: ChatRequest
) -> tuple[list[StreamItem], ProviderError]:
    items: list[StreamItem] = []
    with pytest.raises(ProviderError) as info:
        async for item in prov.stream(request):
            items.append(item)
    return items, info.value


def texts(items: list[StreamItem]) -> list[str]:
    return [item.text for item in items if isinstance(item, TextDelta)]


# -- the happy path ----------------------------------------------------------------------


async def test_implements_the_protocol(provider: OpenAICompatibleProvider) -> None:
    assert isinstance(provider, ChatProvider)
    assert provider.name == "local"


async def test_text_deltas_arrive_exactly_and_in_order(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    deltas = ["Hel", "lo", ",", " wör", "ld", " 👋", "\n", "  done  "]
    server.script = Script(deltas=deltas)

    items = await collect(provider, make_request())

    assert items[:-1] == [TextDelta(d) for d in deltas]
    assert isinstance(items[-1], Usage)
    assert sum(isinstance(i, Usage) for i in items) == 1


async def test_reported_usage_is_passed_through(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=["a", "b"], prompt_tokens=123, completion_tokens=45)

    items = await collect(provider, make_request())

    assert items[-1] == Usage(input_tokens=123, output_tokens=45, estimated=False)


async def test_missing_usage_is_estimated(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=["one", "", "two", "three"], send_usage=False)
    messages = (ChatMessage("system", "x" * 40), ChatMessage("user", "y" * 45))

    items = await collect(provider, make_request(messages=messages))

    assert texts(items) == ["one", "two", "three"]  # the empty delta is not yielded
    assert items[-1] == Usage(input_tokens=85 // 4, output_tokens=3, estimated=True)


async def test_estimated_input_is_at_least_one(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=["k"], send_usage=False)

    items = await collect(provider, make_request(messages=(ChatMessage("user", "hi"),)))

    assert items[-1] == Usage(input_tokens=1, output_tokens=1, estimated=True)


async def test_empty_stream_still_yields_usage(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=[], send_usage=False)

    items = await collect(provider, make_request())

    assert len(items) == 1
    assert isinstance(items[0], Usage)
    assert items[0].estimated
    assert items[0].output_tokens == 0


async def test_request_body_and_headers(server: OpenAISSEServer, provider: OpenAICompatibleProvider) -> None:
    await collect(provider, make_request(max_tokens=77, temperature=0.25))

    [recorded] = server.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/chat/completions"
    assert recorded.body["model"] == MODEL
    assert recorded.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to the world."},
    ]
    assert recorded.body["max_tokens"] == 77
    assert recorded.body["temperature"] == 0.25
    assert recorded.body["stream"] is True
    assert recorded.body["stream_options"] == {"include_usage": True}
    assert recorded.headers["authorization"] == f"Bearer {NO_KEY_PLACEHOLDER}"


async def test_api_key_and_extra_headers_are_sent(server: OpenAISSEServer) -> None:
    prov = OpenAICompatibleProvider(
        "openrouter",
        base_url=server.base_url,
        api_key=SECRET,
        extra_headers={"HTTP-Referer": "https://example.test", "X-Title": "facilitair"},
    )
    try:
        await collect(prov, make_request())
    finally:
        await prov.aclose()

    headers = server.requests[0].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["http-referer"] == "https://example.test"
    assert headers["x-title"] == "facilitair"


async def test_without_usage_option_the_request_omits_it_and_usage_is_estimated(
    server: OpenAISSEServer,
) -> None:
    prov = OpenAICompatibleProvider("local", base_url=server.base_url, api_key=None, send_usage_option=False)
    try:
        items = await collect(prov, make_request())
    finally:
        await prov.aclose()

    assert "stream_options" not in server.requests[0].body
    assert isinstance(items[-1], Usage)
    assert items[-1].estimated


async def test_sdk_does_not_retry(server: OpenAISSEServer, provider: OpenAICompatibleProvider) -> None:
    server.script = Script(status=500)

    await collect_until_error(provider, make_request())

    assert len(server.requests) == 1


async def test_provider_works_for_several_requests(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(Script(deltas=["first"]), Script(status=429), Script(deltas=["third"]))

    first = await collect(provider, make_request())
    _, error = await collect_until_error(provider, make_request())
    third = await collect(provider, make_request())

    assert texts(first) == ["first"]
    assert error.retryable
    assert texts(third) == ["third"]


# -- HTTP errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable", "phrase"),
    [
        (400, False, "bad request"),
        (401, False, "authentication failed"),
        (403, False, "access denied"),
        (404, False, "unknown"),
        (422, False, "bad request"),
        (429, True, "rate limited"),
        (500, True, "server error"),
        (502, True, "server error"),
        (503, True, "server error"),
        (529, True, "server error"),
    ],
)
async def test_http_errors_map_to_provider_error(
    server: OpenAISSEServer,
    provider: OpenAICompatibleProvider,
    status: int,
    retryable: bool,
    phrase: str,
) -> None:
    server.script = Script(status=status, error_message=f"scripted failure {status}")

    items, error = await collect_until_error(provider, make_request())

    assert items == []
    assert error.provider == "local"
    assert error.model == MODEL
    assert error.retryable is retryable
    assert error.fix.strip()
    assert phrase in error.message
    assert f"HTTP {status}" in error.message
    assert f"scripted failure {status}" in error.message  # the server's own explanation
    assert str(error).startswith(f"local:{MODEL}: ")


async def test_bad_request_carries_the_server_message(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    message = (
        "This model's maximum context length is 8192 tokens. However, your messages resulted in "
        "9001 tokens. Please reduce the length of the messages."
    )
    server.script = Script(status=400, error_message=message, error_code="context_length_exceeded")

    _, error = await collect_until_error(provider, make_request())

    assert message.rstrip(".") in error.message
    assert not error.retryable
    assert "context" in error.fix


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("my-vllm", "the api_key of this endpoint in the config"),
    ],
)
async def test_auth_failure_fix_names_where_the_key_comes_from(
    server: OpenAISSEServer, name: str, hint: str
) -> None:
    server.script = Script(status=401)
    prov = OpenAICompatibleProvider(name, base_url=server.base_url, api_key="sk-wrong")
    try:
        _, error = await collect_until_error(prov, make_request())
    finally:
        await prov.aclose()

    assert error.provider == name
    assert hint in error.fix
    assert not error.retryable


async def test_unknown_model_fix_points_at_models_list(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(status=404)

    _, error = await collect_until_error(provider, make_request())

    assert MODEL in error.message
    assert "facilitair models list" in error.fix


async def test_rate_limit_mentions_retry_after(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(status=429, retry_after="7")

    _, error = await collect_until_error(provider, make_request())

    assert error.retryable
    assert "7s" in error.message


async def test_exhausted_quota_is_not_retryable(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(
        status=429, error_code="insufficient_quota", error_message="You exceeded your current quota."
    )

    _, error = await collect_until_error(provider, make_request())

    assert not error.retryable
    assert "quota" in error.message


async def test_api_key_never_appears_in_the_error(server: OpenAISSEServer) -> None:
    server.script = Script(status=401, echo_auth_in_error=True)
    prov = OpenAICompatibleProvider("openai", base_url=server.base_url, api_key=SECRET)
    try:
        _, error = await collect_until_error(prov, make_request())
    finally:
        await prov.aclose()

    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was really echoed
    assert "***" in error.message
    for text in (str(error), repr(error), error.message, error.fix, *map(str, error.args)):
        assert SECRET not in text
    # Not reachable through the exception chain either (tracebacks print it).
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_redact() -> None:
    assert redact("key sk-1 and sk-12 and sk-1", ["sk-1", "sk-12", ""]) == "key *** and *** and ***"
    assert redact("nothing here", []) == "nothing here"


# -- connection problems --------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    prov = OpenAICompatibleProvider("ollama", base_url=url, api_key=None, timeout_s=10.0)
    try:
        _, error = await collect_until_error(prov, make_request())
    finally:
        await prov.aclose()

    assert url in error.message
    assert "cannot reach" in error.message
    assert error.retryable
    assert error.provider == "ollama"
    assert error.model == MODEL
    assert error.fix.strip()


async def test_stall_longer_than_the_timeout_is_a_retryable_error(server: OpenAISSEServer) -> None:
    server.script = Script(deltas=["a", "b", "c"], fault="stall", fault_after=2, stall_s=30.0)
    prov = OpenAICompatibleProvider("local", base_url=server.base_url, api_key=None, timeout_s=0.5)
    try:
        items, error = await asyncio.wait_for(collect_until_error(prov, make_request()), DEADLINE_S)
    finally:
        await prov.aclose()

    assert texts(items) == ["a", "b"]
    assert error.retryable
    assert "after 2 text deltas" in error.message


# -- failures in the middle of the stream -----------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 3])
async def test_dropped_connection_mid_stream(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, k: int
) -> None:
    deltas = ["alpha ", "beta ", "gamma ", "delta ", "epsilon"]
    server.script = Script(deltas=deltas, fault="drop", fault_after=k)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta(d) for d in deltas[:k]]  # exactly what arrived, and no Usage
    assert error.retryable
    assert f"after {k} text delta" in error.message
    assert error.provider == "local"
    assert error.model == MODEL
    assert error.fix.strip()


async def test_malformed_event_mid_stream(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    deltas = ["one", "two", "three"]
    server.script = Script(deltas=deltas, fault="malformed", fault_after=2)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta("one"), TextDelta("two")]
    assert error.retryable
    assert "after 2 text deltas" in error.message
    assert "malformed" in error.message


async def test_cancelling_the_consumer_during_a_stall_closes_the_response(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=["a", "b", "c", "d"], fault="stall", fault_after=2, stall_s=60.0)
    received: list[StreamItem] = []
    two_arrived = asyncio.Event()

    async def consume() -> None:
        async for item in provider.stream(make_request()):
            received.append(item)
            if len(received) == 2:
                two_arrived.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_arrived.wait(), DEADLINE_S)
    assert await asyncio.to_thread(server.wait_stall_started, DEADLINE_S)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE_S)

    assert task.cancelled()
    assert received == [TextDelta("a"), TextDelta("b")]
    # The HTTP response was really closed: the server saw the client hang up mid-stall.
    assert await asyncio.to_thread(server.wait_client_disconnected_during_stall, DEADLINE_S)
    assert server.completed_streams == 0

    # And the provider is still usable afterwards.
    server.script = Script(deltas=["after"])
    assert texts(await collect(provider, make_request())) == ["after"]


async def test_closing_the_stream_early_closes_the_response(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=["a", "b", "c"], fault="stall", fault_after=1, stall_s=60.0)

    async def first_delta_then_stop() -> list[StreamItem]:
        async with contextlib.aclosing(provider.stream(make_request())) as stream:
            async for item in stream:
                return [item]
        return []

    received = await asyncio.wait_for(first_delta_then_stop(), DEADLINE_S)

    assert received == [TextDelta("a")]
    assert await asyncio.to_thread(server.wait_client_disconnected_during_stall, DEADLINE_S)


# -- the end marker and the stop reason -------------------------------------------------------


@pytest.mark.parametrize("k", [0, 2, 5])
async def test_a_stream_cut_without_a_finish_reason_is_a_failure_not_a_short_answer(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, k: int
) -> None:
    deltas = ["alpha ", "beta ", "gamma ", "delta ", "epsilon"]
    server.script = Script(deltas=deltas, fault="cut", fault_after=k)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta(d) for d in deltas[:k]]  # and no Usage: the answer is not done
    assert error.retryable
    assert f"stream ended early after {k} text delta" in error.message
    assert "finish_reason" in error.message


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("stop", "end"), ("length", "max_tokens"), ("content_filter", "filtered"), ("tool_calls", "end")],
)
async def test_the_finish_reason_says_whether_the_answer_was_cut(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, finish_reason: str, stop_reason: str
) -> None:
    server.script = Script(deltas=["a", "b"], finish_reason=finish_reason, send_usage=False)

    items = await collect(provider, make_request())

    assert isinstance(items[-1], Usage) and items[-1].stop_reason == stop_reason
