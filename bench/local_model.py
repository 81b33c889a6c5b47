"""The local models (llama.cpp, in-process): tokens/s and time to first token.

Two comparisons, each against a baseline measured in the same run:

- the default model (Qwen2.5-Coder-0.5B) against SmolLM2-135M, the tiny option and the former
  default, both through ``LocalModelProvider``: what the coder model costs in speed;
- for each model, ``LocalModelProvider`` (context pool, threads, asyncio hand-off) against
  llama-cpp-python called directly on the same prompt with the same settings: what our layer costs.

Then three concurrent streams on the default model, as a chunk's agents run: aggregate tokens/s
and each stream's first token, to show they really stream side by side.

Last, one whole session of the default workflow (four chunks, three agents and a synthesizer,
default settings) on each model, SmolLM2 the baseline: wall time, output tokens, tokens/s and
how many syntheses parsed. ``--no-session`` leaves it out (it takes minutes).

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _sessions import TASKS, run_session

from facilitair_tui import embedded_models
from facilitair_tui.core.provider import ChatMessage, ChatRequest, TextDelta
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL, SMOLLM2, EmbeddedModel
from facilitair_tui.providers.local import DEFAULT_CONTEXT_TOKENS, LocalModelProvider

SESSION_TASK = TASKS[0]
MAX_TOKENS = 128
REPEATS = 3
MESSAGES = (
    ChatMessage("system", "You are the software architect in a small team of AI agents."),
    ChatMessage("user", "Design a REST API for a todo list with user accounts. Short bullet points."),
)
# (tokens/s, first token in seconds, tokens)
Sample = tuple[float, float, int]


def messages_for(repeat: int) -> tuple[ChatMessage, ...]:
    """A different prompt per repeat, so neither side is served from llama's prompt cache."""
    return (MESSAGES[0], ChatMessage("user", f"{MESSAGES[1].content} (variant {repeat})"))


@dataclass
class Measured:
    model: EmbeddedModel
    direct: list[Sample] = field(default_factory=list)
    ours: list[Sample] = field(default_factory=list)

    @staticmethod
    def medians(samples: list[Sample]) -> tuple[float, float]:
        return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples) * 1e3


def direct_baseline(llm: Any, model: EmbeddedModel, repeat: int) -> Sample:
    messages = [{"role": m.role, "content": m.content} for m in messages_for(repeat)]
    start = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=messages,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        repeat_penalty=model.repeat_penalty,
        stream=True,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter() - start
            n += 1
    elapsed = time.perf_counter() - start
    return n / elapsed, first or elapsed, n


async def ours(provider: LocalModelProvider, model: str, repeat: int) -> Sample:
    request = ChatRequest(model, messages_for(repeat), MAX_TOKENS, temperature=0.0)
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

    models = (SMOLLM2, DEFAULT_CHAT_MODEL)  # the baseline first
    llms = {
        m.name: Llama(
            model_path=str(embedded_models.require(m.name)),
            n_ctx=DEFAULT_CONTEXT_TOKENS,
            n_threads=threads,
            verbose=False,
        )
        for m in models
    }
    provider = LocalModelProvider(threads=threads)
    for m in models:  # every side warm: model loaded, first evaluation done
        direct_baseline(llms[m.name], m, -1)
        await ours(provider, m.name, -1)
    measured = {m.name: Measured(m) for m in models}
    for repeat in range(REPEATS):  # interleaved so machine noise hits every side alike
        for m in models:
            measured[m.name].direct.append(direct_baseline(llms[m.name], m, repeat))
            measured[m.name].ours.append(await ours(provider, m.name, repeat))

    print(
        f"== Local models, one stream, {threads} threads, {MAX_TOKENS} tokens max, temperature 0 "
        f"(medians of {REPEATS}) =="
    )
    base_tps, base_ttft = Measured.medians(measured[SMOLLM2.name].ours)
    print(f"  baseline, {SMOLLM2.name:<20}  {base_tps:7.1f} tok/s   first token {base_ttft:7.1f} ms")
    tps, ttft = Measured.medians(measured[DEFAULT_CHAT_MODEL.name].ours)
    print(
        f"  default,  {DEFAULT_CHAT_MODEL.name:<20}  {tps:7.1f} tok/s   first token {ttft:7.1f} ms"
        f"   (ratio {tps / base_tps:.2f}x tok/s, {ttft / base_ttft:.2f}x first token)"
    )
    print("== LocalModelProvider against llama-cpp-python called directly (the baseline), same settings ==")
    for m in models:
        d_tps, d_ttft = Measured.medians(measured[m.name].direct)
        o_tps, o_ttft = Measured.medians(measured[m.name].ours)
        print(f"  {m.name:<20} direct: {d_tps:7.1f} tok/s  first token {d_ttft:7.1f} ms")
        print(
            f"  {'':<20} ours:   {o_tps:7.1f} tok/s  first token {o_ttft:7.1f} ms"
            f"   (ratio {o_tps / d_tps:.2f}x tok/s)"
        )
    for llm in llms.values():
        llm.close()

    for _ in range(2):  # the pool grows to three contexts on the first round
        start = time.perf_counter()
        results = await asyncio.gather(*(ours(provider, DEFAULT_CHAT_MODEL.name, 100 + i) for i in range(3)))
        wall = time.perf_counter() - start
    total = sum(r[2] for r in results)
    firsts = ", ".join(f"{r[1] * 1e3:.0f}" for r in results)
    print(f"== Three concurrent streams on {DEFAULT_CHAT_MODEL.name} (a chunk's agents), one shared pool ==")
    print(f"  aggregate {total / wall:7.1f} tok/s over {wall:.2f}s; first tokens at {firsts} ms")
    print(f"  ratio to one stream: {total / wall / tps:.2f}x aggregate throughput")
    await provider.aclose()
    if "--no-session" not in sys.argv:
        await whole_sessions()


async def whole_sessions() -> None:
    task, context = SESSION_TASK
    print(f"== One default-workflow session per model: {task!r} ==")
    base = None
    for m in (SMOLLM2, DEFAULT_CHAT_MODEL):  # the baseline first
        outcome = await run_session(f"local:{m.name}", task, context)
        parsed = sum(s.parsed for s in outcome.syntheses)
        line = (
            f"  {m.name:<20} {outcome.status:<7} wall {outcome.wall_s:6.1f} s"
            f"   {outcome.output_tokens:5d} tokens"
            f"   {outcome.tokens_per_s:5.1f} tok/s   syntheses parsed {parsed} of {len(outcome.syntheses)}"
        )
        if base is None:
            base = outcome
            print(line + "   (baseline)")
        else:
            print(line + f"   (ratio {outcome.wall_s / base.wall_s:.2f}x wall time)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
