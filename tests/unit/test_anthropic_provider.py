"""AnthropicProvider through the real SDK against a real local server speaking Anthropic's stream format."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import traceback
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
from facilitair_tui.providers.anthropic_messages import AnthropicProvider
from facilitair_tui.providers.openai_compat import NO_KEY_PLACEHOLDER
from tests.support.anthropic_sse_server import AnthropicSSEServer, Script

SECRET = "sk-ant-test-SECRET-123456"
MODEL = "claude-test-1"
# A generous bound for "finishes promptly": the assertion is on the outcome, never on time.
DEADLINE_S = 20.0

_ENV_THE_SDK_READS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
    "ANTHROPIC_WEBHOOK_SIGNING_KEY",
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
def server() -> Iterator[AnthropicSSEServer]:
    with AnthropicSSEServer() as srv:
        yield srv


@pytest.fixture
async def provider(server: AnthropicSSEServer) -> AsyncIterator[AnthropicProvider]:
    prov = AnthropicProvider(base_url=server.base_url, api_key=SECRET, timeout_s=30.0)
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


def assert_well_formed(error: ProviderError, *, provider: str = "anthropic") -> None:
    """Names provider and model, says what to do, and keeps the key out of everything printable."""
    assert error.provider == provider
    assert error.model == MODEL
    assert str(error).startswith(f"{provider}:{MODEL}: ")
    assert error.message.strip()
    assert error.fix.strip()
    for text in (str(error), repr(error), error.message, error.fix, *map(str, error.args)):
        assert SECRET not in text
    # The SDK exception (whose request headers carry the key) is not reachable from the error,
    # so no traceback can print it.
    assert error.__cause__ is None
    assert error.__context__ is None
    assert SECRET not in "".join(traceback.format_exception(error))


# -- the happy path ----------------------------------------------------------------------


async def test_implements_the_protocol(provider: AnthropicProvider) -> None:
    assert isinstance(provider, ChatProvider)
    assert provider.name == "anthropic"


async def test_text_deltas_arrive_exactly_and_in_order(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    deltas = ["Hel", "lo", ",", " wör", "ld", " 👋", "\n", "  done  "]
    server.script = Script(deltas=deltas)

    items = await collect(provider, make_request())

    assert items[:-1] == [TextDelta(d) for d in deltas]
    assert isinstance(items[-1], Usage)
    assert sum(isinstance(i, Usage) for i in items) == 1
    assert server.completed_streams == 1


async def test_reported_usage_is_passed_through(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(deltas=["a", "b"], input_tokens=123, output_tokens=45)

    items = await collect(provider, make_request())

    assert items[-1] == Usage(input_tokens=123, output_tokens=45, estimated=False)


async def test_cached_input_tokens_count_as_input_and_cache_reads_apart(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(
        deltas=["a"],
        input_tokens=10,
        cache_read_input_tokens=100,
        cache_creation_input_tokens=7,
        output_tokens=3,
    )

    items = await collect(provider, make_request())

    assert items[-1] == Usage(input_tokens=117, output_tokens=3, estimated=False, cached_input_tokens=100)


async def test_missing_usage_is_estimated(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    server.script = Script(deltas=["one", "", "two", "three"], send_usage=False)
    messages = (ChatMessage("system", "x" * 40), ChatMessage("user", "y" * 45))

    items = await collect(provider, make_request(messages=messages))

    assert texts(items) == ["one", "two", "three"]  # the empty delta is not yielded
    assert items[-1] == Usage(input_tokens=85 // 4, output_tokens=3, estimated=True)


async def test_empty_reply_still_yields_usage(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(deltas=[], input_tokens=9, output_tokens=1)

    items = await collect(provider, make_request())

    assert items == [Usage(input_tokens=9, output_tokens=1)]


async def test_thinking_and_other_blocks_are_not_text(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(thinking=["Let me think", " about it."], deltas=["Answer", "."])

    items = await collect(provider, make_request())

    assert items[:-1] == [TextDelta("Answer"), TextDelta(".")]
    assert isinstance(items[-1], Usage)


async def test_request_body_and_headers(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    await collect(provider, make_request(max_tokens=77, temperature=0.25))

    [recorded] = server.requests
    assert recorded.method == "POST"
    assert recorded.path == "/v1/messages"
    assert recorded.body["model"] == MODEL
    assert recorded.body["system"] == "You are terse."
    assert recorded.body["messages"] == [{"role": "user", "content": "Say hello to the world."}]
    assert recorded.body["max_tokens"] == 77
    assert recorded.body["stream"] is True
    # The API version the SDK speaks rejects sampling parameters: not sent unless asked for.
    assert "temperature" not in recorded.body
    assert recorded.headers["x-api-key"] == SECRET
    assert recorded.api_key == SECRET
    assert recorded.headers["anthropic-version"]


async def test_temperature_is_sent_when_enabled(server: AnthropicSSEServer) -> None:
    prov = AnthropicProvider(base_url=server.base_url, api_key=SECRET, send_temperature=True)
    try:
        await collect(prov, make_request(temperature=0.25))
    finally:
        await prov.aclose()

    assert server.requests[0].body["temperature"] == 0.25


async def test_system_messages_are_joined_and_turns_merged(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    messages = (
        ChatMessage("system", "You are the reviewer."),
        ChatMessage("user", "Here is the plan."),
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "And here is the code."),
        ChatMessage("assistant", "Noted."),
        ChatMessage("assistant", "Anything else?"),
        ChatMessage("user", "Review it."),
    )

    await collect(provider, make_request(messages=messages))

    body = server.requests[0].body
    assert body["system"] == "You are the reviewer.\n\nBe brief."
    assert body["messages"] == [
        {"role": "user", "content": "Here is the plan.\n\nAnd here is the code."},
        {"role": "assistant", "content": "Noted.\n\nAnything else?"},
        {"role": "user", "content": "Review it."},
    ]


async def test_a_trailing_assistant_turn_is_kept_as_prefill(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    messages = (
        ChatMessage("user", "Write a haiku."),
        ChatMessage("assistant", "Autumn moonlight, \n"),
    )

    await collect(provider, make_request(messages=messages))

    # Kept last, so the model continues it; the API rejects a prefill ending in whitespace.
    assert server.requests[0].body["messages"] == [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "Autumn moonlight,"},
    ]


async def test_a_conversation_opening_with_the_assistant_gets_a_user_turn_first(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    messages = (
        ChatMessage("system", "Be kind."),
        ChatMessage("assistant", "Hello! How can I help?"),
        ChatMessage("user", "Tell me a joke."),
    )

    await collect(provider, make_request(messages=messages))

    sent = server.requests[0].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"].strip()
    assert sent[1:] == [
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]


async def test_system_only_request_gets_one_user_turn_and_no_empty_text(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    messages = (ChatMessage("system", "Introduce yourself."), ChatMessage("user", "   "))

    await collect(provider, make_request(messages=messages))

    body = server.requests[0].body
    assert body["system"] == "Introduce yourself."
    assert len(body["messages"]) == 1
    assert body["messages"][0]["role"] == "user"
    assert body["messages"][0]["content"].strip()


async def test_without_system_messages_no_system_parameter_is_sent(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    await collect(provider, make_request(messages=(ChatMessage("user", "hi"),)))

    assert "system" not in server.requests[0].body


async def test_without_a_key_a_placeholder_is_sent_not_the_environment_key(
    server: AnthropicSSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    prov = AnthropicProvider("local-claude", base_url=server.base_url, api_key=None)
    try:
        await collect(prov, make_request())
    finally:
        await prov.aclose()

    headers = server.requests[0].headers
    assert headers["x-api-key"] == NO_KEY_PLACEHOLDER
    assert SECRET not in " ".join(headers.values())


async def test_the_server_checks_the_key(server: AnthropicSSEServer) -> None:
    server.expected_api_key = SECRET
    good = AnthropicProvider(base_url=server.base_url, api_key=SECRET)
    bad = AnthropicProvider(base_url=server.base_url, api_key="sk-ant-wrong-000")
    try:
        items = await collect(good, make_request())
        _, error = await collect_until_error(bad, make_request())
    finally:
        await good.aclose()
        await bad.aclose()

    assert texts(items) == ["Hello", ", ", "world", "!"]
    assert not error.retryable
    assert "authentication failed" in error.message
    assert "ANTHROPIC_API_KEY" in error.fix


async def test_default_base_url_is_anthropic() -> None:
    prov = AnthropicProvider(base_url=None, api_key=SECRET)
    try:
        assert prov.base_url == "https://api.anthropic.com"
    finally:
        await prov.aclose()


async def test_sdk_does_not_retry(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    server.script = Script(status=529)

    await collect_until_error(provider, make_request())

    assert len(server.requests) == 1


async def test_provider_works_for_several_requests(
    server: AnthropicSSEServer, provider: AnthropicProvider
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
        (402, False, "payment required"),
        (403, False, "access denied"),
        (404, False, "unknown"),
        (413, False, "too large"),
        (429, True, "rate limited"),
        (500, True, "server error"),
        (503, True, "server error"),
        (504, True, "server error"),
        (529, True, "overloaded"),
    ],
)
async def test_http_errors_map_to_provider_error(
    server: AnthropicSSEServer,
    provider: AnthropicProvider,
    status: int,
    retryable: bool,
    phrase: str,
) -> None:
    # The server quotes the key back, as a careless proxy might: it must still never show.
    server.script = Script(status=status, error_message=f"scripted failure {status}", echo_key_in_error=True)

    items, error = await collect_until_error(provider, make_request())

    assert items == []
    assert error.retryable is retryable
    assert phrase in error.message
    assert f"HTTP {status}" in error.message
    assert f"scripted failure {status}" in error.message  # the server's own explanation
    assert "***" in error.message  # where the echoed key was
    assert_well_formed(error)


async def test_rate_limit_carries_retry_after(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(status=429, retry_after="7")

    _, error = await collect_until_error(provider, make_request())

    assert error.retryable
    assert error.retry_after_s == 7.0
    assert "wait 7s" in error.message
    assert "rate limited" in error.message
    assert_well_formed(error)


async def test_overloaded_carries_retry_after(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(status=529, retry_after="2.5")

    _, error = await collect_until_error(provider, make_request())

    assert error.retryable
    assert error.retry_after_s == 2.5
    assert "overloaded" in error.message
    assert "HTTP 529" in error.message
    assert "wait 2.5s" in error.message
    assert_well_formed(error)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("0", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None)],
)
async def test_retry_after_forms(
    server: AnthropicSSEServer, provider: AnthropicProvider, header: str, seconds: float | None
) -> None:
    # A date already past means "now"; a value that is neither seconds nor a date is ignored.
    server.script = Script(status=429, retry_after=header)

    _, error = await collect_until_error(provider, make_request())

    assert error.retryable
    assert error.retry_after_s == seconds


async def test_rate_limit_without_retry_after(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(status=429)

    _, error = await collect_until_error(provider, make_request())

    assert error.retryable
    assert error.retry_after_s is None
    assert "wait" not in error.message


async def test_spending_limit_is_not_retryable(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(
        status=429,
        error_code="enforced_spend_limit_reached",
        error_message="You have reached your specified workspace API usage limits.",
    )

    _, error = await collect_until_error(provider, make_request())

    assert not error.retryable
    assert "spending limit" in error.message
    assert_well_formed(error)


async def test_prompt_too_long_says_to_shorten_the_task(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    message = "prompt is too long: 212345 tokens > 200000 maximum"
    server.script = Script(status=400, error_message=message)

    items, error = await collect_until_error(provider, make_request())

    assert items == []
    assert not error.retryable
    assert message in error.message
    assert "too long" in error.message
    assert "Shorten the task" in error.fix
    assert "larger context" in error.fix
    assert_well_formed(error)


async def test_unknown_model_names_the_model(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    server.script = Script(status=404, error_message=f"model: {MODEL}")

    _, error = await collect_until_error(provider, make_request())

    assert not error.retryable
    assert f"model {MODEL!r} is unknown" in error.message
    assert "facilitair models list" in error.fix
    assert_well_formed(error)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("my-gateway", "the api_key of this endpoint in the config"),
    ],
)
async def test_auth_failure_fix_names_where_the_key_comes_from(
    server: AnthropicSSEServer, name: str, hint: str
) -> None:
    server.script = Script(status=401, echo_key_in_error=True)
    prov = AnthropicProvider(name, base_url=server.base_url, api_key=SECRET)
    try:
        _, error = await collect_until_error(prov, make_request())
    finally:
        await prov.aclose()

    assert server.requests[0].api_key == SECRET  # it really was sent, and echoed
    assert hint in error.fix
    assert not error.retryable
    assert_well_formed(error, provider=name)


# -- connection problems --------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    prov = AnthropicProvider(base_url=url, api_key=SECRET, timeout_s=10.0)
    try:
        _, error = await collect_until_error(prov, make_request())
    finally:
        await prov.aclose()

    assert url in error.message
    assert "cannot reach" in error.message
    assert error.retryable
    assert_well_formed(error)


async def test_connection_closed_before_the_response(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(fault="hangup")

    items, error = await collect_until_error(provider, make_request())

    assert items == []
    assert error.retryable
    assert "cannot reach" in error.message
    assert server.base_url in error.message
    assert ".." not in str(error)
    assert_well_formed(error)


async def test_stall_longer_than_the_timeout_is_a_retryable_error(server: AnthropicSSEServer) -> None:
    server.script = Script(deltas=["a", "b", "c"], fault="stall", fault_after=2, stall_s=30.0)
    prov = AnthropicProvider(base_url=server.base_url, api_key=SECRET, timeout_s=0.5)
    try:
        items, error = await asyncio.wait_for(collect_until_error(prov, make_request()), DEADLINE_S)
    finally:
        await prov.aclose()

    assert items == [TextDelta("a"), TextDelta("b")]
    assert error.retryable
    assert "after 2 text deltas" in error.message
    assert "no data" in error.message
    assert_well_formed(error)


# -- failures in the middle of the stream -----------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 3])
async def test_dropped_connection_mid_stream(
    server: AnthropicSSEServer, provider: AnthropicProvider, k: int
) -> None:
    deltas = ["alpha ", "beta ", "gamma ", "delta ", "epsilon"]
    server.script = Script(deltas=deltas, fault="drop", fault_after=k)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta(d) for d in deltas[:k]]  # exactly what arrived, and no Usage
    assert error.retryable
    assert f"after {k} text delta" in error.message
    assert "dropped" in error.message
    assert_well_formed(error)


async def test_dropped_connection_just_before_message_stop(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    deltas = ["all ", "of ", "it"]
    server.script = Script(deltas=deltas, fault="drop", fault_after=len(deltas))

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta(d) for d in deltas]  # usage was reported, but the stream broke
    assert error.retryable
    assert "after 3 text deltas" in error.message
    assert_well_formed(error)


async def test_malformed_event_mid_stream(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    server.script = Script(deltas=["one", "two", "three"], fault="malformed", fault_after=2)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta("one"), TextDelta("two")]
    assert error.retryable
    assert "after 2 text deltas" in error.message
    assert "malformed" in error.message
    assert_well_formed(error)


async def test_overloaded_error_event_mid_stream(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(deltas=["one", "two", "three"], fault="error_event", fault_after=2)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta("one"), TextDelta("two")]
    assert error.retryable
    assert "after 2 text deltas" in error.message
    assert "overloaded" in error.message
    assert_well_formed(error)


async def test_error_event_before_any_text(server: AnthropicSSEServer, provider: AnthropicProvider) -> None:
    server.script = Script(deltas=["one"], fault="error_event", fault_after=0)

    items, error = await collect_until_error(provider, make_request())

    assert items == []
    assert error.retryable
    assert "after 0 text deltas" in error.message
    assert "overloaded" in error.message
    assert "heavy load" in error.fix
    assert_well_formed(error)


async def test_invalid_request_error_event_is_not_retryable(
    server: AnthropicSSEServer, provider: AnthropicProvider
) -> None:
    server.script = Script(
        deltas=["one", "two"],
        fault="error_event",
        fault_after=1,
        stream_error_type="invalid_request_error",
        stream_error_message="Output blocked by content filtering policy",
    )

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta("one")]
    assert not error.retryable
    assert "after 1 text delta:" in error.message
    assert "content filtering" in error.message
    assert "will not help" in error.fix
    assert_well_formed(error)


@pytest.mark.parametrize("k", [1, 4])
async def test_stream_ending_without_message_stop_is_a_failure(
    server: AnthropicSSEServer, provider: AnthropicProvider, k: int
) -> None:
    deltas = ["Hello", ", ", "world", "!"]
    server.script = Script(deltas=deltas, fault="no_stop", fault_after=k)

    items, error = await collect_until_error(provider, make_request())

    assert items == [TextDelta(d) for d in deltas[:k]]  # and no Usage
    assert error.retryable
    assert f"stream ended early after {k} text delta" in error.message
    assert "message_stop" in error.message
    assert_well_formed(error)


async def test_cancelling_the_consumer_during_a_stall_closes_the_response(
    server: AnthropicSSEServer, provider: AnthropicProvider
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
    server: AnthropicSSEServer, provider: AnthropicProvider
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


@pytest.mark.parametrize(
    ("reported", "stop_reason"),
    [("end_turn", "end"), ("stop_sequence", "end"), ("max_tokens", "max_tokens"), ("refusal", "filtered")],
)
async def test_the_stop_reason_says_whether_the_answer_was_cut(
    server: AnthropicSSEServer, provider: AnthropicProvider, reported: str, stop_reason: str
) -> None:
    server.script = Script(deltas=["a", "b"], stop_reason=reported)

    items = await collect(provider, make_request())

    assert isinstance(items[-1], Usage) and items[-1].stop_reason == stop_reason
