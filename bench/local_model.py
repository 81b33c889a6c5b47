"""The embedded model (SmolLM2-135M, llama.cpp): tokens/s and time to first token.

Baseline, measured in the same run: llama-cpp-python called directly on the same prompt with
the same settings. Ours: the same request through ``LocalModelProvider`` (context pool,
threads, asyncio hand-off). Then three concurrent streams, as a chunk's agents run: aggregate
tokens/s and each stream's first token, to show they really stream side by side.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Any

from facilitair_tui import embedded_models
from facilitair_tui.core.provider import ChatMessage, ChatRequest, TextDelta
from facilitair_tui.providers.local import DEFAULT_CONTEXT_TOKENS, LocalModelProvider

MAX_TOKENS = 128
REPEATS = 3
MESSAGES = (
    ChatMessage("system", "You are the software architect in a small team of AI agents."),
    ChatMessage("user", "Design a REST API for a todo list with user accounts. Short bullet points."),
)


def messages_for(repeat: int) -> tuple[ChatMessage, ...]:
    """A different prompt per repeat, so neither side is served from llama's prompt cache."""
    return (MESSAGES[0], ChatMessage("user", f"{MESSAGES[1].content} (variant {repeat})"))


def direct_baseline(llm: Any, repeat: int) -> tuple[float, float]:
    messages = [{"role": m.role, "content": m.content} for m in messages_for(repeat)]
    start = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=MAX_TOKENS, temperature=0.0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter() - start
            n += 1
    elapsed = time.perf_counter() - start
    return n / elapsed, first or elapsed


async def ours(provider: LocalModelProvider, repeat: int) -> tuple[float, float, int]:
    request = ChatRequest("smollm2-135m", messages_for(repeat), MAX_TOKENS, temperature=0.0)
    start = time.perf_counter()
    first = None
    n = 0
    async for item in provider.stream(request):
        if isinstance(item, TextDelta):
            first = first or time.perf_counter() - start
            n += 1
    elapsed = time.perf_counter() - start
    return n / elapsed, first or elapsed, n


async def main() -> None:
    threads = os.cpu_count() or 1
    from llama_cpp import Llama

    path = str(embedded_models.require("smollm2-135m"))
    llm = Llama(model_path=path, n_ctx=DEFAULT_CONTEXT_TOKENS, n_threads=threads, verbose=False)
    provider = LocalModelProvider(threads=threads)
    direct_baseline(llm, -1)  # both sides warm: model loaded, first evaluation done
    await ours(provider, -1)
    base, mine = [], []
    for repeat in range(REPEATS):  # interleaved so machine noise hits both alike
        base.append(direct_baseline(llm, repeat))
        mine.append(await ours(provider, repeat))
    b_tps = statistics.median(b[0] for b in base)
    b_ttft = statistics.median(b[1] for b in base) * 1e3
    o_tps = statistics.median(m[0] for m in mine)
    o_ttft = statistics.median(m[1] for m in mine) * 1e3
    print(
        f"== Embedded model, one stream, {threads} threads, {MAX_TOKENS} tokens max (medians of {REPEATS}) =="
    )
    print(f"  baseline, llama-cpp-python direct:  {b_tps:7.1f} tok/s   first token {b_ttft:7.1f} ms")
    print(
        f"  LocalModelProvider:                 {o_tps:7.1f} tok/s   first token {o_ttft:7.1f} ms"
        f"   (ratio {o_tps / b_tps:.2f}x tok/s)"
    )

    for _ in range(2):  # the pool grows to three contexts on the first round
        start = time.perf_counter()
        results = await asyncio.gather(*(ours(provider, 100 + i) for i in range(3)))
        wall = time.perf_counter() - start
    total = sum(r[2] for r in results)
    firsts = ", ".join(f"{r[1] * 1e3:.0f}" for r in results)
    print("== Three concurrent streams (a chunk's agents), one shared pool ==")
    print(f"  aggregate {total / wall:7.1f} tok/s over {wall:.2f}s; first tokens at {firsts} ms")
    print(f"  ratio to one stream: {total / wall / o_tps:.2f}x aggregate throughput")
    await provider.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
