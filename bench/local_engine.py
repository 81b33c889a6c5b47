"""The embedded model's engine: one context decoding every agent together, against the designs
before it, all in one run, on the same model, the same prompts, greedy.

- (a) **one after another**: one llama-cpp-python context; the agents queue for it;
- (b) **a context per agent**: the design before the batched engine (``_context_pool.py``): a
  pool of contexts, one thread each, sampling in Python;
- (c) **batched**: ``LocalModelProvider`` now, one context and many sequences decoded together,
  prompt prefixes shared, llama.cpp's own sampler chain.

Two measurements:

1. **Three concurrent streams** (distinct prompts, 128 tokens each) against one stream alone:
   aggregate decode tokens/s (tokens written over the time from the first token to the last).
2. **The default workflow**, four chunks, ``--max-tokens 300``, temperature 0: session wall time,
   prompt tokens actually computed, and in how many chunks every downstream agent's first token
   came while its upstream was still writing.

Prints the machine's cores and the threads used beside the numbers; asserts nothing.
``--quick`` runs the streams only. ``--steps`` times the engine's steps by hand for 1 to 4
sequences writing together (what a step of n tokens costs against a step of one);
``--trace`` runs one batched session and prints when each agent started, wrote its first token
and finished, with its prompt tokens and those reused, and the synthesizer's share of the time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from _context_pool import ContextPoolProvider
from _sessions import TASKS

from facilitair_tui import embedded_models
from facilitair_tui.core import events as ev
from facilitair_tui.core.provider import ChatMessage, ChatRequest, TextDelta
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL
from facilitair_tui.providers.local import LocalModelProvider
from facilitair_tui.session import prepare

STREAM_TOKENS = 128
SESSION_MAX_TOKENS = 300
PROMPTS = (
    "Design a REST API for a todo list with user accounts. Short bullet points.",
    "Write a Python function that merges overlapping intervals, with a docstring.",
    "List the risks of storing session tokens in browser local storage.",
)


def _threads() -> int:
    return os.cpu_count() or 1


def designs() -> dict[str, Any]:
    """Fresh providers for each design (nothing carried over between measurements)."""
    threads = _threads()
    return {
        "(a) one after another": lambda: ContextPoolProvider(max_contexts=1, threads=threads),
        "(b) a context per agent": lambda: ContextPoolProvider(max_contexts=4, threads=threads),
        "(c) batched": lambda: LocalModelProvider(max_contexts=4, threads=threads),
    }


async def _one(provider: Any, model: str, prompt: str, times: list[float]) -> int:
    request = ChatRequest(
        model=model,
        messages=(ChatMessage("system", "You are a careful software engineer."), ChatMessage("user", prompt)),
        max_tokens=STREAM_TOKENS,
        temperature=0.0,
    )
    count = 0
    async for item in provider.stream(request):
        if isinstance(item, TextDelta):
            times.append(time.perf_counter())
            count += 1
    return count


async def decode_rate(make: Any, model: str, streams: int) -> float:
    provider = make()
    try:
        await _one(provider, model, "Say hello.", [])  # load the model and warm its context(s)
        times: list[float] = []
        counts = await asyncio.gather(*(_one(provider, model, p, times) for p in PROMPTS[:streams]))
    finally:
        await provider.aclose()
    span = max(times) - min(times)
    return (sum(counts) - 1) / span if span > 0 else 0.0


@dataclass
class SessionRun:
    wall_s: float = 0.0
    status: str = ""
    output_tokens: int = 0
    prompt_tokens: int = 0
    computed: int = 0
    overlapped: list[bool] = field(default_factory=list)  # per chunk


def greedy_workflow(directory: Path) -> Path:
    """The default workflow at temperature 0, so every design is asked for the same answers."""
    text = (resources.files("facilitair_tui") / "data" / "workflows" / "default.toml").read_text("utf-8")
    text = re.sub(r"^temperature = [0-9.]+$", "temperature = 0.0", text, count=1, flags=re.MULTILINE)
    path = directory / "default-greedy.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def session(make: Any, model: str, workflow: Path) -> SessionRun:
    task, context = TASKS[0]
    prepared = prepare(
        task, context=context, model=model, workflow=workflow, max_tokens=SESSION_MAX_TOKENS, no_cache=True
    )
    provider = make()
    prepared.registry.install("local", provider)
    reads = {r.name: list(r.reads) for r in prepared.collaboration.workflow.roles}
    first: dict[tuple[int, str], float] = {}
    finished: dict[tuple[int, str], float] = {}
    run = SessionRun()
    start = time.perf_counter()
    try:
        async for event in prepared.collaboration.events():
            now = time.perf_counter()
            if isinstance(event, ev.Token):
                first.setdefault((event.chunk, event.agent), now)
            elif isinstance(event, ev.AgentFinished):
                finished[(event.chunk, event.agent)] = now
            elif isinstance(event, ev.SessionFinished):
                run.status = event.status
                run.output_tokens = event.output_tokens
        run.wall_s = time.perf_counter() - start
        if isinstance(provider, ContextPoolProvider):
            run.prompt_tokens, run.computed = provider.prompt_tokens, provider.prompt_tokens_computed
        else:
            stats = provider.engine_stats()[model.removeprefix("local:")]
            run.prompt_tokens, run.computed = stats.prompt_tokens, stats.computed_tokens
    finally:
        await prepared.aclose()
    for chunk in sorted({c for c, _ in finished}):
        run.overlapped.append(
            all(
                (chunk, agent) in first
                and all(first[(chunk, agent)] < finished.get((chunk, up), 0.0) for up in ups)
                for agent, ups in reads.items()
                if ups
            )
        )
    return run


def steps(name: str) -> None:
    """Time steps of 1 to 4 writing sequences, the engine stepped by hand (no thread, no asyncio):
    from the step where all of them write to the step where the first ends."""
    from facilitair_tui.providers.llama_batch import BatchEngine, Sampling

    engine = BatchEngine(
        embedded_models.require(name),
        sequences=4,
        n_ctx_seq=4096,
        threads=_threads(),
        run=False,
        hold_after=1 << 30,  # nobody takes the text here: never hold a sequence for it
    )
    template = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    one = 0.0
    try:
        for n in (1, 2, 3, 4):
            written = [0] * n
            ended: list[int] = []
            for i, prompt in enumerate((PROMPTS * 2)[:n]):
                engine.submit(
                    engine.tokenize(template.format(prompt)),
                    max_tokens=STREAM_TOKENS,
                    sampling=Sampling(0.0),
                    on_text=functools.partial(_count, written, i),
                    on_done=functools.partial(_ended, ended, i),
                )
            while not ended and min(written) == 0:
                engine.tick()
            before, start = engine.stats.steps, time.perf_counter()
            while not ended:
                engine.tick()
            per_step = (time.perf_counter() - start) / max(1, engine.stats.steps - before)
            while len(ended) < n:
                engine.tick()
            one = one or per_step
            print(f"{n} sequence(s) writing: {per_step * 1000:5.1f} ms a step, {per_step / one:4.2f}x one")
    finally:
        engine.close()


def _count(written: list[int], i: int, _text: str) -> None:
    written[i] += 1


def _ended(ended: list[int], i: int, _finished: object) -> None:
    ended.append(i)


async def trace(model: str, workflow: Path) -> None:
    task, context = TASKS[0]
    prepared = prepare(
        task, context=context, model=model, workflow=workflow, max_tokens=SESSION_MAX_TOKENS, no_cache=True
    )
    prepared.registry.install("local", LocalModelProvider(max_contexts=4, threads=_threads()))
    synthesizer = prepared.collaboration.workflow.merger.name
    start = time.perf_counter()
    began: dict[tuple[int, str], float] = {}
    first: dict[tuple[int, str], float] = {}
    in_synthesis = 0.0
    try:
        async for event in prepared.collaboration.events():
            now = time.perf_counter() - start
            if isinstance(event, ev.AgentStarted):
                began[(event.chunk, event.agent)] = now
            elif isinstance(event, ev.Token):
                first.setdefault((event.chunk, event.agent), now)
            elif isinstance(event, ev.AgentFinished):
                key = (event.chunk, event.agent)
                if event.agent == synthesizer:
                    in_synthesis += now - began[key]
                print(
                    f"chunk {event.chunk} {event.agent:12} started {began[key]:6.1f} s, first token"
                    f" {first.get(key, now):6.1f} s, finished {now:6.1f} s; prompt {event.input_tokens:5d}"
                    f" tokens, {event.cached_input_tokens:5d} reused; {event.output_tokens} written"
                )
    finally:
        await prepared.aclose()
    total = time.perf_counter() - start
    print(f"session {total:.1f} s; the synthesizer's turns {in_synthesis:.1f} s ({in_synthesis / total:.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the concurrent streams only")
    parser.add_argument("--steps", action="store_true", help="time steps of 1 to 4 writing sequences")
    parser.add_argument("--trace", action="store_true", help="one batched session, agent by agent")
    parser.add_argument("--model", default=DEFAULT_CHAT_MODEL.name)
    args = parser.parse_args()
    name = args.model
    embedded_models.require(name)
    model = f"local:{name}"
    threads = _threads()
    print(f"machine: {os.cpu_count()} cores; llama.cpp threads: {threads}; model: {name}")
    if args.steps:
        steps(name)
        return 0
    if args.trace:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(trace(model, greedy_workflow(Path(tmp))))
        return 0

    print(f"\n== decode tokens/s, {STREAM_TOKENS} tokens per stream, greedy ==")
    made = designs()
    one = asyncio.run(decode_rate(made["(c) batched"], name, 1))
    print(f"one stream alone (batched engine):  {one:6.1f} tok/s  (the baseline)")
    for label in ("(b) a context per agent", "(c) batched"):
        rate = asyncio.run(decode_rate(made[label], name, 3))
        print(f"3 concurrent streams, {label:24} {rate:6.1f} tok/s  {rate / one:4.2f}x one stream")
    if args.quick:
        return 0

    print(f"\n== the default workflow, 4 chunks, --max-tokens {SESSION_MAX_TOKENS}, temperature 0 ==")
    with tempfile.TemporaryDirectory() as tmp:
        workflow = greedy_workflow(Path(tmp))
        runs = {label: asyncio.run(session(make, model, workflow)) for label, make in made.items()}
    today = runs["(b) a context per agent"]
    print(
        f"{'design':26} {'wall s':>7} {'x (b)':>6} {'prompt tok':>10} {'computed':>9} {'x (b)':>6}"
        f" {'out tok':>7}  downstream wrote while upstream wrote"
    )
    for label, run in runs.items():
        print(
            f"{label:26} {run.wall_s:7.1f} {run.wall_s / today.wall_s:6.2f} {run.prompt_tokens:10d}"
            f" {run.computed:9d} {run.computed / max(1, today.computed):6.2f} {run.output_tokens:7d}"
            f"  {sum(run.overlapped)}/{len(run.overlapped)} chunks ({run.status})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
