"""The synthesis schema reaches each backend in that backend's own form, and comes back as text.

OpenAI-compatible servers get Structured Outputs (``response_format`` with a strict JSON Schema)
and, when a server rejects that option, the same request without it; Anthropic gets the schema
as the one tool the model must call, whose input JSON is streamed. Both against local servers
that speak the real wire formats. The embedded model's grammar is tested on the real model in
``tests/e2e/test_schema_synthesis_local.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from facilitair_tui.core.provider import ChatMessage, ChatRequest, StreamItem, TextDelta, Usage
from facilitair_tui.core.synthesis import parse_synthesis, synthesis_schema
from facilitair_tui.providers.anthropic_messages import AnthropicProvider
from facilitair_tui.providers.openai_compat import OpenAICompatibleProvider
from tests.support import anthropic_sse_server as anthropic_server
from tests.support import openai_sse_server as openai_server

AGENTS = ["architect", "coder", "reviewer"]
SCHEMA = synthesis_schema(AGENTS)
ANSWER = {
    "agreed": ["Store links in SQLite"],
    "debated": [{"point": "Id length", "positions": {"architect": "6", "coder": "8", "reviewer": "8"}}],
    "merged": "**app.py**\n```python\nprint('hi')\n```",
}
# The answer's JSON in the pieces a server streams it in.
PIECES = [json.dumps(ANSWER)[i : i + 7] for i in range(0, len(json.dumps(ANSWER)), 7)]


def request(model: str, *, schema: bool = True) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(ChatMessage("system", "Merge."), ChatMessage("user", "Stage: requirements")),
        max_tokens=200,
        output_schema=SCHEMA if schema else None,
    )


async def collect(provider: Any, req: ChatRequest) -> list[StreamItem]:
    return [item async for item in provider.stream(req)]


def text_of(items: list[StreamItem]) -> str:
    return "".join(item.text for item in items if isinstance(item, TextDelta))


# -- OpenAI-compatible: Structured Outputs ------------------------------------------------


@pytest.fixture
def oa_server() -> Iterator[openai_server.OpenAISSEServer]:
    with openai_server.OpenAISSEServer() as srv:
        yield srv


@pytest.fixture
async def oa_provider(oa_server: openai_server.OpenAISSEServer) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider("local", base_url=oa_server.base_url, api_key=None, timeout_s=30.0)
    yield provider
    await provider.aclose()


async def test_openai_requests_a_strict_json_schema_and_streams_the_json(
    oa_server: openai_server.OpenAISSEServer, oa_provider: OpenAICompatibleProvider
) -> None:
    oa_server.script = openai_server.Script(deltas=PIECES)
    items = await collect(oa_provider, request("m"))
    body = oa_server.requests[0].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": SCHEMA.name,
            "description": SCHEMA.description,
            "schema": SCHEMA.schema,
            "strict": True,
        },
    }
    parsed = parse_synthesis(text_of(items), AGENTS)
    assert parsed.parsed and parsed.agreed == ANSWER["agreed"]
    assert parsed.debated[0].positions == ANSWER["debated"][0]["positions"]


async def test_openai_without_a_schema_sends_no_response_format(
    oa_server: openai_server.OpenAISSEServer, oa_provider: OpenAICompatibleProvider
) -> None:
    await collect(oa_provider, request("m", schema=False))
    assert "response_format" not in oa_server.requests[0].body


@pytest.mark.parametrize("status", [400, 422, 500])
async def test_a_server_without_structured_outputs_is_asked_again_without_them(
    oa_server: openai_server.OpenAISSEServer, oa_provider: OpenAICompatibleProvider, status: int
) -> None:
    def script_for(body: Any) -> openai_server.Script:
        if "response_format" in body:
            return openai_server.Script(status=status, error_message="response_format is not supported")
        return openai_server.Script(deltas=PIECES)

    oa_server.script_for = script_for
    first = await collect(oa_provider, request("m"))
    second = await collect(oa_provider, request("m"))
    sent = ["response_format" in r.body for r in oa_server.requests]
    # Rejected once, then the same request without it; this model is not offered it again.
    assert sent == [True, False, False]
    assert text_of(first) == text_of(second) == json.dumps(ANSWER)
    assert isinstance(first[-1], Usage) and first[-1].stop_reason == "end"


async def test_a_rejection_that_is_not_about_the_schema_is_still_reported(
    oa_server: openai_server.OpenAISSEServer, oa_provider: OpenAICompatibleProvider
) -> None:
    """The retry without the option fails the same way: the user sees the server's reason."""
    oa_server.script = openai_server.Script(status=400, error_message="messages must not be empty")
    from facilitair_tui.core.provider import ProviderError

    with pytest.raises(ProviderError, match="messages must not be empty"):
        await collect(oa_provider, request("m"))
    assert len(oa_server.requests) == 2


# -- Anthropic: a forced tool ---------------------------------------------------------------


@pytest.fixture
def an_server() -> Iterator[anthropic_server.AnthropicSSEServer]:
    with anthropic_server.AnthropicSSEServer() as srv:
        yield srv


@pytest.fixture
async def an_provider(an_server: anthropic_server.AnthropicSSEServer) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(base_url=an_server.base_url, api_key="sk-ant-test", timeout_s=30.0)
    yield provider
    await provider.aclose()


async def test_anthropic_forces_one_tool_whose_input_is_the_schema(
    an_server: anthropic_server.AnthropicSSEServer, an_provider: AnthropicProvider
) -> None:
    an_server.script = anthropic_server.Script(deltas=PIECES, tool_use=SCHEMA.name, stop_reason="tool_use")
    items = await collect(an_provider, request("claude-test"))
    body = an_server.requests[0].body
    assert body["tools"] == [
        {"name": SCHEMA.name, "description": SCHEMA.description, "input_schema": SCHEMA.schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": SCHEMA.name}
    assert text_of(items) == json.dumps(ANSWER)
    usage = items[-1]
    assert isinstance(usage, Usage) and usage.stop_reason == "end"  # "tool_use": it finished


async def test_anthropic_without_a_schema_sends_no_tools(
    an_server: anthropic_server.AnthropicSSEServer, an_provider: AnthropicProvider
) -> None:
    await collect(an_provider, request("claude-test", schema=False))
    body = an_server.requests[0].body
    assert "tools" not in body and "tool_choice" not in body


async def test_anthropic_tool_input_cut_at_max_tokens_is_reported_cut(
    an_server: anthropic_server.AnthropicSSEServer, an_provider: AnthropicProvider
) -> None:
    an_server.script = anthropic_server.Script(
        deltas=PIECES[:5], tool_use=SCHEMA.name, stop_reason="max_tokens"
    )
    items = await collect(an_provider, request("claude-test"))
    usage = items[-1]
    assert isinstance(usage, Usage) and usage.stop_reason == "max_tokens"
    assert parse_synthesis(text_of(items), AGENTS).agreed == ANSWER["agreed"]
