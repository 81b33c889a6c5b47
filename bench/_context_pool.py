"""The local provider as it was before the batched engine, kept as ``bench/local_engine.py``'s
baseline: a pool of llama-cpp-python ``Llama`` contexts, one per stream, each sampled in Python.

With ``max_contexts=1`` it runs the agents one after another. ``prompt_tokens_computed`` counts
the prompt tokens each context actually decoded (``Llama`` reuses the longest prefix of what its
own context last held, so a context that happens to get a similar prompt reads less).

One llama context serves one stream, so the provider keeps a small pool of contexts over one
model file: the agents of a chunk generate side by side, each in its own thread (llama.cpp
releases the GIL while it computes), rather than queueing behind each other. The CPU threads
of the machine are shared among the streams running at that moment.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facilitair_tui import embedded_models
from facilitair_tui.core.provider import (
    ChatRequest,
    OutputSchema,
    ProviderError,
    StreamItem,
    TextDelta,
    Usage,
)
from facilitair_tui.providers.llama_batch import quiet_llama_logs
from facilitair_tui.providers.local import DEFAULT_CONTEXT_TOKENS, _load_fix, _repeat_penalty

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import LlamaGrammar


class _Done(Exception):
    """Sentinel: the generation thread finished normally."""


_DONE = _Done()


class _KeepStandardStreams:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``, which does nothing here."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _KeepStandardStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _keep_standard_streams() -> None:
    """Stop llama-cpp-python from pointing fds 1 and 2 (and sys.stdout/err) at /dev/null.

    With ``verbose=False`` it silences model loading that way, for the whole process: a context
    loads in a worker thread while the event loop writes events, and whatever the program wrote
    meanwhile (JSON events, rendered lines) was lost. Its log callback already drops llama.cpp's
    logs below ERROR when not verbose, so nothing extra is printed without the redirection.
    """
    import llama_cpp._internals
    import llama_cpp.llama

    llama_cpp._internals.suppress_stdout_stderr = _KeepStandardStreams  # type: ignore[attr-defined,assignment]
    llama_cpp.llama.suppress_stdout_stderr = _KeepStandardStreams  # type: ignore[attr-defined,assignment]
    quiet_llama_logs()


class _Context:
    """One llama context and the chat formatter built from the model's own template."""

    def __init__(self, model_path: Path, n_ctx: int, repeat_penalty: float) -> None:
        _keep_standard_streams()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=1, verbose=False)
        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            self.llm.close()
            raise ValueError("it has no chat template (tokenizer.chat_template in its GGUF header)")
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.stop = [eos]
        self.n_ctx = n_ctx
        self.repeat_penalty = repeat_penalty

    def set_threads(self, n: int) -> None:
        import llama_cpp

        llama_cpp.llama_set_n_threads(self.llm._ctx.ctx, n, n)

    def prompt_tokens(self, request: ChatRequest) -> list[int]:
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        prompt = self.formatter(messages=messages).prompt
        tokens: list[int] = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        return tokens


@functools.lru_cache(maxsize=16)
def _grammar_for(schema_json: str) -> LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def _grammar(schema: OutputSchema | None) -> LlamaGrammar | None:
    """llama.cpp's grammar for the schema: the sampler can then only pick tokens that keep the
    answer valid JSON of that shape, so the answer always parses (unless cut at max_tokens)."""
    if schema is None:
        return None
    return _grammar_for(json.dumps(schema.schema, sort_keys=True))


class ContextPoolProvider:
    """``local:<model>``: an embedded model's name, a name added with ``facilitair models add``,
    or the path of a GGUF file."""

    name = "local"

    def __init__(
        self, *, max_contexts: int = 4, n_ctx: int = DEFAULT_CONTEXT_TOKENS, threads: int | None = None
    ):
        self._max_contexts = max_contexts
        self._n_ctx = n_ctx
        self._threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._idle: dict[str, list[_Context]] = {}
        self._created: dict[str, int] = {}
        # Generation threads still running, with their stop flags: closing waits for them, since
        # freeing a llama context (or exiting) under a running decode crashes the process.
        self._running: dict[threading.Thread, threading.Event] = {}
        self._active = 0
        self.prompt_tokens_computed = 0
        self.prompt_tokens = 0
        self._available: tuple[asyncio.AbstractEventLoop, asyncio.Condition] | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._available is None or self._available[0] is not loop:
            self._available = (loop, asyncio.Condition())
        return self._available[1]

    async def _acquire(self, model: str) -> _Context:
        path = embedded_models.require(model)
        cond = self._condition()
        ctx: _Context | None = None
        async with cond:
            while True:
                with self._lock:
                    idle = self._idle.setdefault(model, [])
                    if idle:
                        ctx = idle.pop()
                        break
                    if self._created.get(model, 0) < self._max_contexts:
                        self._created[model] = self._created.get(model, 0) + 1
                        break
                await cond.wait()
        if ctx is None:
            try:
                ctx = await asyncio.to_thread(_Context, path, self._n_ctx, _repeat_penalty(model))
            except Exception as exc:
                with self._lock:
                    self._created[model] -= 1
                raise ProviderError(
                    f"could not load the model file {path}: {exc}",
                    provider=self.name,
                    model=model,
                    fix=_load_fix(model, path),
                ) from None
        return ctx

    def _release(self, model: str, ctx: _Context, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._idle.setdefault(model, []).append(ctx)

        async def notify() -> None:
            cond = self._condition()
            async with cond:
                cond.notify()

        if not loop.is_closed():
            asyncio.run_coroutine_threadsafe(notify(), loop)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        ctx = await self._acquire(request.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException] = asyncio.Queue()
        cancelled = threading.Event()
        cut = threading.Event()  # llama.cpp stopped at max_tokens or a full context
        counts = {"input": 0, "output": 0}

        def generate() -> None:
            outcome: BaseException | None = None
            with self._lock:
                self._active += 1
                threads = max(1, self._threads // self._active)
            try:
                ctx.set_threads(threads)  # before the prompt is evaluated: that is when it counts most
                tokens = ctx.prompt_tokens(request)
                counts["input"] = len(tokens)
                held = list(ctx.llm._input_ids[: ctx.llm.n_tokens])
                common = 0
                for a, b in zip(held, tokens, strict=False):
                    if a != b:
                        break
                    common += 1
                with self._lock:
                    self.prompt_tokens += len(tokens)
                    self.prompt_tokens_computed += len(tokens) - min(common, len(tokens) - 1)
                room = ctx.n_ctx - len(tokens)
                if room < 16:
                    raise ProviderError(
                        f"the prompt is {len(tokens)} tokens; this model's context holds {ctx.n_ctx}",
                        provider=self.name,
                        model=request.model,
                        fix="shorten the task or use a model with a larger context",
                    )
                stream = ctx.llm.create_completion(
                    prompt=tokens,
                    max_tokens=min(request.max_tokens, room),
                    temperature=request.temperature,
                    # Greedy decoding asks for the model's own most likely answer (code, tests):
                    # the penalty that keeps free prose from looping would bend it.
                    repeat_penalty=ctx.repeat_penalty if request.temperature > 0 else 1.0,
                    seed=request.seed,
                    stop=ctx.stop,
                    stream=True,
                    grammar=_grammar(request.output_schema),
                )
                for chunk in stream:
                    # Share the cores among the streams running right now, as they come and go.
                    share = max(1, self._threads // max(1, self._active))
                    if share != threads:
                        ctx.set_threads(share)
                        threads = share
                    if cancelled.is_set():
                        break
                    choice: dict[str, Any] = chunk["choices"][0]  # type: ignore[index,assignment]
                    text: str = choice["text"]
                    if choice.get("finish_reason") is None or text:
                        counts["output"] += 1
                    if choice.get("finish_reason") == "length":  # max_tokens, or the context is full
                        cut.set()
                    if text:
                        loop.call_soon_threadsafe(queue.put_nowait, text)
            except BaseException as exc:  # delivered to the consumer, raised there
                outcome = exc
            finally:
                # Give the context back before saying we are done, so the next call finds it.
                with self._lock:
                    self._active -= 1
                    self._running.pop(threading.current_thread(), None)
                self._release(request.model, ctx, loop)
                if not loop.is_closed():
                    loop.call_soon_threadsafe(queue.put_nowait, outcome or _DONE)

        worker = threading.Thread(target=generate, name=f"local-{request.model}", daemon=True)
        with self._lock:
            self._running[worker] = cancelled
        worker.start()
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(
                        f"generation failed: {item}", provider=self.name, model=request.model
                    ) from None
                yield TextDelta(item)
            yield Usage(
                counts["input"], counts["output"], stop_reason="max_tokens" if cut.is_set() else "end"
            )
        finally:
            # On cancellation the thread stops at its next token and returns the context itself.
            cancelled.set()

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Stop every generation, wait for their threads, then free the contexts."""
        with self._lock:
            running = dict(self._running)
        for stop in running.values():
            stop.set()

        def join() -> None:
            for thread in running:
                thread.join(timeout_s)

        await asyncio.to_thread(join)
        with self._lock:
            contexts = [ctx for idle in self._idle.values() for ctx in idle]
            self._idle.clear()
            self._created.clear()
        for ctx in contexts:
            ctx.llm.close()
