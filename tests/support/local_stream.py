"""One request to the real embedded model, its whole answer collected."""

from __future__ import annotations

from facilitair_tui.core.provider import ChatRequest, TextDelta, Usage
from facilitair_tui.providers.local import LocalModelProvider


async def complete(request: ChatRequest) -> tuple[str, Usage]:
    """The answer and its usage, on one context with 2 threads; the provider is closed after."""
    provider = LocalModelProvider(max_contexts=1, threads=2)
    text: list[str] = []
    usage = None
    try:
        async for item in provider.stream(request):
            if isinstance(item, TextDelta):
                text.append(item.text)
            elif isinstance(item, Usage):
                usage = item
    finally:
        await provider.aclose()
    assert usage is not None, "the stream ended without its usage"
    return "".join(text), usage
