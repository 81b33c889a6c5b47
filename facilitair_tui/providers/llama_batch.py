"""One llama.cpp context decoding every stream of a model together (continuous batching).

Each stream is a *sequence* of one context. A single engine thread builds one batch per step:
the next token of every sequence that is writing, plus a piece of the prompt of each sequence
still reading one, and decodes it with one ``llama_decode`` call. A sequence joins at the next
step and leaves when it ends; a long prompt is read in pieces between the others' steps, so a
new agent never stalls the ones already writing. Sampling is llama.cpp's own sampler chain
(penalties, top-k, top-p, min-p, temperature, a grammar for JSON answers), so Python only moves
tokens and text; ctypes releases the GIL for every call into llama.cpp.

Prompts that begin alike share their KV cache: when a sequence joins, the engine finds the
longest token prefix it has in common with any sequence in memory (writing, or finished and
kept) and copies those cells (``llama_memory_seq_cp``) instead of reading them again. Each
sequence has its own stream of cells (``kv_unified`` off): a copy is the source's stream, cut
after the prefix, so the new sequence's cells lie exactly as if it had read the prefix itself,
and with the prefix shared in whole pieces of the grid prompts are read on (``PROMPT_PIECE``)
a greedy answer is the same with or without the reuse. A finished sequence's cells stay in its
stream until another sequence takes it, so the next chunk's agents find the task, the context
and the earlier syntheses ready.

Backpressure is per sequence: a sequence whose text is not taken (the consumer lags, or the
session is paused) skips steps once ``hold_after`` pieces wait, and the others go on.

Only the engine thread touches the llama context. Other threads submit, cancel and acknowledge
through the engine's lock; closing waits for the thread, since freeing a context under a
running decode crashes the process.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Stop = Literal["end", "max_tokens"]
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data

# Prompts are read in pieces of this many tokens, aligned to their positions; while other
# sequences write, one piece per step, so they keep their pace.
PROMPT_PIECE = 64
BATCH_TOKENS = 512


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float
    repeat_penalty: float = 1.0
    seed: int | None = None
    grammar: str | None = None  # GBNF, root rule "root"


@dataclass(frozen=True, slots=True)
class Finished:
    """How a sequence ended: the prompt's tokens, how many of them came from cells already in
    memory (not computed), the tokens written, and why it stopped."""

    prompt_tokens: int
    reused_tokens: int
    output_tokens: int
    stop_reason: Stop
    error: str | None = None
    # Seconds from the submit to a slot in the batch: how long it waited for other sequences.
    queued_s: float = 0.0


@dataclass(slots=True)
class EngineStats:
    prompt_tokens: int = 0  # prompt tokens of every sequence
    computed_tokens: int = 0  # of those, the ones decoded (the rest reused from memory)
    output_tokens: int = 0
    steps: int = 0
    peak_batch: int = 0  # most sequences decoded in one step


class EngineError(Exception):
    """The model could not be loaded, or the engine is closed."""


class Handle:
    """A submitted sequence, as its consumer sees it (any thread)."""

    def __init__(self, engine: BatchEngine, seq: _Seq) -> None:
        self._engine = engine
        self._seq = seq

    def taken(self) -> None:
        """The consumer took one piece of text: the sequence may run again if it was held."""
        self._engine._taken(self._seq)

    def pause(self, paused: bool = True) -> None:
        self._engine._set_paused(self._seq, paused)

    def cancel(self) -> None:
        self._engine._cancel(self._seq)


class _Seq:
    __slots__ = (
        "admitted",
        "cancelled",
        "decoder",
        "fed",
        "generated",
        "grammar",
        "max_tokens",
        "on_done",
        "on_text",
        "paused",
        "prompt",
        "reused",
        "sampler",
        "sampling",
        "slot",
        "submitted",
        "tokens",
        "waiting",
    )

    def __init__(
        self,
        prompt: list[int],
        max_tokens: int,
        sampling: Sampling,
        on_text: Callable[[str], None],
        on_done: Callable[[Finished], None],
    ) -> None:
        self.prompt = prompt
        self.tokens = list(prompt)  # prompt, then the tokens written; tokens[:fed] are in memory
        self.fed = 0
        self.reused = 0
        self.generated = 0
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.sampler: Any = None
        self.grammar: Any = None  # checked apart from the chain (see ``_sample``)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.on_text = on_text
        self.on_done = on_done
        self.slot = -1
        self.submitted = time.monotonic()
        self.admitted: float | None = None  # when it got its slot
        self.waiting = 0  # pieces of text handed over and not yet taken
        self.paused = False
        self.cancelled = False


@dataclass(slots=True)
class _Slot:
    """A sequence id of the context: the sequence using it, or the tokens it keeps in memory."""

    index: int
    seq: _Seq | None = None
    kept: tuple[int, ...] = ()
    last_used: int = 0

    def in_memory(self) -> Sequence[int]:
        return self.seq.tokens[: self.seq.fed] if self.seq is not None else self.kept


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchEngine:
    """One model file, one context, up to ``sequences`` streams decoded together."""

    def __init__(
        self,
        model_path: Path,
        *,
        sequences: int = 4,
        n_ctx_seq: int = 8192,
        threads: int = 1,
        hold_after: int = 8,
        share_prefixes: bool = True,
        prompt_piece: int = PROMPT_PIECE,
        run: bool = True,
    ) -> None:
        import llama_cpp

        quiet_llama_logs()
        self._ll = llama_cpp
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), mparams)
        if not model:
            raise EngineError("llama.cpp could not load it")
        self._model = model
        self.n_ctx_seq = n_ctx_seq
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx_seq * sequences  # a stream of n_ctx_seq cells per sequence
        cparams.n_batch = BATCH_TOKENS
        cparams.n_ubatch = BATCH_TOKENS
        cparams.n_seq_max = sequences
        cparams.kv_unified = False
        # Flash attention visits a sequence's own cells in order and skips the others: what a
        # sequence computes does not depend on where its cells sit or who else is in memory.
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        if not ctx:
            llama_cpp.llama_model_free(model)
            raise EngineError("llama.cpp could not make a context for it (out of memory?)")
        self._ctx = ctx
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self._mem = llama_cpp.llama_get_memory(ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self._ids = np.arange(self._n_vocab, dtype=np.int32)
        self._batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self._pieces: dict[int, bytes] = {}
        self._hold_after = hold_after
        self._share = share_prefixes
        self._grid = prompt_piece
        self._slots = [_Slot(i) for i in range(sequences)]
        self._queue: list[_Seq] = []  # submitted, no slot yet
        self._clock = itertools.count(1)
        self._cond = threading.Condition()
        self._closing = False
        self._freed = False
        self.stats = EngineStats()
        self._thread: threading.Thread | None = None
        if run:
            self._thread = threading.Thread(
                target=self._run, name=f"llama-batch-{model_path.name}", daemon=True
            )
            self._thread.start()

    # -- the model's text ------------------------------------------------------------------

    def metadata(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self._ll.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def token_text(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", "replace")

    def special_tokens(self) -> tuple[int, int]:
        return self._ll.llama_vocab_bos(self.vocab), self._ll.llama_vocab_eos(self.vocab)

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        out = (self._ll.llama_token * size)()
        n = self._ll.llama_tokenize(self.vocab, data, len(data), out, size, False, True)
        if n < 0:
            size = -n
            out = (self._ll.llama_token * size)()
            n = self._ll.llama_tokenize(self.vocab, data, len(data), out, size, False, True)
        return list(out[:n])

    def _piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    # -- what other threads call -----------------------------------------------------------

    def submit(
        self,
        prompt: list[int],
        *,
        max_tokens: int,
        sampling: Sampling,
        on_text: Callable[[str], None],
        on_done: Callable[[Finished], None],
    ) -> Handle:
        """Start a sequence; it joins the batch at the next step (or when a slot frees)."""
        if not prompt:
            raise ValueError("an empty prompt")
        seq = _Seq(prompt, max_tokens, sampling, on_text, on_done)
        with self._cond:
            if self._closing:
                raise EngineError("the engine is closed")
            self._queue.append(seq)
            self._cond.notify()
        return Handle(self, seq)

    def _taken(self, seq: _Seq) -> None:
        with self._cond:
            seq.waiting -= 1
            if seq.waiting == self._hold_after - 1:
                self._cond.notify()

    def _set_paused(self, seq: _Seq, paused: bool) -> None:
        with self._cond:
            seq.paused = paused
            self._cond.notify()

    def _cancel(self, seq: _Seq) -> None:
        with self._cond:
            if not seq.cancelled:
                seq.cancelled = True
                self._cond.notify()

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop every sequence, wait for the engine thread, free the context and the model."""
        with self._cond:
            if self._freed:
                return
            self._closing = True
            self._cond.notify()
        if self._thread is None:
            self._end_all()
        else:
            self._thread.join(timeout_s)
            if self._thread.is_alive():  # never free memory a decode may still use
                return
        self._freed = True
        self._ll.llama_batch_free(self._batch)
        self._ll.llama_free(self._ctx)
        self._ll.llama_model_free(self._model)

    # -- the engine thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug of ours or llama.cpp's: end every stream with it
            with self._cond:
                self._closing = True
                ended = [s.seq for s in self._slots if s.seq is not None] + self._queue
                self._queue.clear()
            for seq in ended:
                self._finish(seq, "end", error=f"the batch engine stopped: {exc!r}")

    def _ready(self) -> list[_Seq]:
        return [
            s.seq
            for s in self._slots
            if s.seq is not None
            and not s.seq.cancelled
            and not s.seq.paused
            and s.seq.waiting < self._hold_after
        ]

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    break
                if not self._has_work():
                    self._cond.wait()
                    continue
            self.tick()
        self._end_all()

    def _has_work(self) -> bool:
        return (
            any(s.seq is not None and s.seq.cancelled for s in self._slots)
            or any(q.cancelled for q in self._queue)
            or bool(self._ready())
            or self._can_admit()
        )

    def _end_all(self) -> None:
        with self._cond:
            ended = [s.seq for s in self._slots if s.seq is not None] + self._queue
            self._queue.clear()
        for seq in ended:
            self._finish(seq, "end", error="closed")

    def tick(self) -> None:
        """One round: end the cancelled sequences, admit waiting ones, decode one step.

        The engine thread calls it; an engine made with ``run=False`` has no thread, and its
        caller steps it by hand (tests that need the exact same steps twice)."""
        with self._cond:
            cancelled = [s.seq for s in self._slots if s.seq is not None and s.seq.cancelled]
            cancelled += [q for q in self._queue if q.cancelled]
            self._queue = [q for q in self._queue if not q.cancelled]
        for seq in cancelled:
            self._finish(seq, "end", error="cancelled")
        self._admit()
        self._step()

    def _can_admit(self) -> bool:
        return bool(self._queue) and any(s.seq is None for s in self._slots)

    def _admit(self) -> None:
        """Give each waiting sequence a slot, with the longest prefix in memory copied to it."""
        later: list[_Seq] = []
        while True:
            with self._cond:
                free = [s for s in self._slots if s.seq is None]
                if not self._queue or not free:
                    self._queue[:0] = later
                    return
                seq = self._queue.pop(0)
            if self._share and self._worth_waiting(seq):
                later.append(seq)
                continue
            try:
                seq.sampler, seq.grammar = self._sampler(seq.sampling)
            except EngineError as exc:
                self._finish(seq, "end", error=str(exc))
                continue
            source, shared = None, 0
            if self._share:
                for slot in self._slots:
                    n = _common_prefix(slot.in_memory(), seq.prompt)
                    if n > shared:
                        source, shared = slot, n
            # The last prompt token is always decoded: its logits give the first token. A prefix
            # is shared in whole pieces of the grid prompts are read on (see ``_step``).
            shared = min(shared, len(seq.prompt) - 1) // self._grid * self._grid
            if (
                source is not None
                and shared > 0
                and source.seq is None
                and (shared == len(source.kept) or len(free) == 1)
            ):
                target = source  # it loses nothing it kept, or there is no other room
                self._ll.llama_memory_seq_rm(self._mem, target.index, shared, -1)
            else:
                others = [s for s in free if s is not source] or free
                target = min(others, key=lambda s: (len(s.kept) > 0, s.last_used))
                self._ll.llama_memory_seq_rm(self._mem, target.index, -1, -1)
                if source is not None and shared > 0:
                    self._ll.llama_memory_seq_cp(self._mem, source.index, target.index, -1, -1)
                    self._ll.llama_memory_seq_rm(self._mem, target.index, shared, -1)
            seq.fed = seq.reused = shared
            seq.slot = target.index
            seq.admitted = time.monotonic()
            self.stats.prompt_tokens += len(seq.prompt)
            self.stats.computed_tokens += len(seq.prompt) - shared
            with self._cond:
                target.seq, target.kept = seq, ()

    def _worth_waiting(self, seq: _Seq) -> bool:
        """Whether a sequence still reading its prompt will soon hold a good part of this one's:
        sequences that start together (samples of one prompt, agents given the same context)
        then read what they share once, instead of each reading it at the same time."""
        for slot in self._slots:
            reader = slot.seq
            if reader is None or reader.paused or reader.fed >= len(reader.prompt):
                continue
            if _common_prefix(reader.prompt, seq.prompt) - reader.fed >= PROMPT_PIECE // 2:
                return True
        return False

    def _drop(self, slot: _Slot) -> None:
        self._ll.llama_memory_seq_rm(self._mem, slot.index, -1, -1)
        slot.kept = ()

    def _sampler(self, sampling: Sampling) -> tuple[Any, Any]:
        """The sampler chain for ``sampling``, and the grammar sampler kept beside it."""
        ll = self._ll
        grammar = None
        if sampling.grammar:
            grammar = ll.llama_sampler_init_grammar(self.vocab, sampling.grammar.encode(), b"root")
            if not grammar:
                raise EngineError("llama.cpp refused the answer's grammar")
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        if sampling.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
            return chain, grammar
        if sampling.repeat_penalty != 1.0:
            ll.llama_sampler_chain_add(chain, _penalties(64, sampling.repeat_penalty))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(40))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(0.95, 1))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_min_p(0.05, 1))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(sampling.temperature))
        seed = sampling.seed if sampling.seed is not None else 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: random
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain, grammar

    def _sample(self, seq: _Seq, index: int) -> int:
        """The next token of ``seq``, from the logits of batch row ``index``.

        With a grammar, the token is first picked as if there were none and only that token is
        checked against the grammar; the grammar is applied to the whole vocabulary only when
        it refuses it (as llama.cpp's own common sampler does). Applying it to every token at
        every step doubled the time per token of a JSON answer."""
        ll = self._ll
        if seq.grammar is None:
            return int(ll.llama_sampler_sample(seq.sampler, self._ctx, index))
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(self._ctx, index), shape=(self._n_vocab,))
        token = self._pick(seq.sampler, logits, None)
        if not self._allowed(seq.grammar, token):
            token = self._pick(seq.sampler, logits, seq.grammar)
        ll.llama_sampler_accept(seq.grammar, token)
        ll.llama_sampler_accept(seq.sampler, token)
        return token

    def _pick(self, chain: Any, logits: Any, grammar: Any) -> int:
        ll = self._ll
        candidates = np.empty(self._n_vocab, dtype=_TOKEN_DATA)
        candidates["id"] = self._ids
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = ll.llama_token_data_array(
            candidates.ctypes.data_as(ll.llama_token_data_p), self._n_vocab, -1, False
        )
        if grammar is not None:
            ll.llama_sampler_apply(grammar, ctypes.byref(array))
        ll.llama_sampler_apply(chain, ctypes.byref(array))  # samplers sort and cut it in place
        return int(candidates["id"][array.selected])

    def _allowed(self, grammar: Any, token: int) -> bool:
        ll = self._ll
        one = (ll.llama_token_data * 1)(ll.llama_token_data(token, 1.0, 0.0))
        array = ll.llama_token_data_array(one, 1, -1, False)
        ll.llama_sampler_apply(grammar, ctypes.byref(array))
        return bool(np.isfinite(one[0].logit))

    def _step(self) -> None:
        """One decode: a token from each writing sequence, then prompt pieces."""
        with self._cond:
            active = self._ready()
        writing = [s for s in active if len(s.tokens) - s.fed == 1]
        reading = sorted((s for s in active if len(s.tokens) - s.fed > 1), key=lambda s: s.slot)
        # Prompts are read on a grid: a step reads at most the rest of one grid piece of each
        # (positions [k*grid, (k+1)*grid)). llama.cpp's kernels round differently for batches of
        # other sizes, so a prompt read twice, or read after a shared prefix of whole pieces,
        # goes through the same batches and holds the same cells (given the same neighbours).
        budget = (self._grid if writing else BATCH_TOKENS) if reading else 0
        plan: list[tuple[_Seq, int]] = [(s, 1) for s in writing]
        for seq in reading:
            take = min(len(seq.tokens) - seq.fed, self._grid - seq.fed % self._grid)
            if take > budget:
                break
            plan.append((seq, take))
            budget -= take
        if not plan and reading:  # a piece bigger than the room left: read it alone
            plan.append((reading[0], min(len(reading[0].tokens) - reading[0].fed, self._grid)))
        if not plan:
            return
        batch = self._batch
        n = 0
        outputs: list[tuple[_Seq, int]] = []
        for seq, take in plan:
            for i in range(seq.fed, seq.fed + take):
                batch.token[n] = seq.tokens[i]
                batch.pos[n] = i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.slot
                last = i == len(seq.tokens) - 1
                batch.logits[n] = last
                if last:
                    outputs.append((seq, n))
                n += 1
        batch.n_tokens = n
        rc = self._ll.llama_decode(self._ctx, batch)
        if rc == 1:  # no room left in a stream (lengths are checked before): cut the longest
            longest = max((s for s, _ in plan), key=lambda s: len(s.tokens))
            self._finish(longest, "max_tokens")
            return
        if rc != 0:
            for seq, _ in plan:
                self._finish(seq, "end", error=f"llama_decode failed ({rc})")
            return
        self.stats.steps += 1
        self.stats.peak_batch = max(self.stats.peak_batch, len(plan))
        for seq, take in plan:
            seq.fed += take
        for seq, index in outputs:
            self._took(seq, self._sample(seq, index))

    def _took(self, seq: _Seq, token: int) -> None:
        if self._ll.llama_vocab_is_eog(self.vocab, token):
            self._finish(seq, "end")
            return
        seq.tokens.append(token)
        seq.generated += 1
        self.stats.output_tokens += 1
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._piece(token)
        text = seq.decoder.decode(piece)
        if text:
            self._hand(seq, text)
        if seq.generated >= seq.max_tokens or len(seq.tokens) >= self.n_ctx_seq:
            self._finish(seq, "max_tokens")

    def _hand(self, seq: _Seq, text: str) -> None:
        with self._cond:
            seq.waiting += 1
        seq.on_text(text)

    def _finish(self, seq: _Seq, stop: Stop, *, error: str | None = None) -> None:
        rest = seq.decoder.decode(b"", final=True)
        if rest and error is None:
            self._hand(seq, rest)
        for sampler in (seq.sampler, seq.grammar):
            if sampler is not None:
                self._ll.llama_sampler_free(sampler)
        seq.sampler = seq.grammar = None
        if seq.slot >= 0:
            slot = self._slots[seq.slot]
            with self._cond:
                slot.seq = None
                slot.kept = tuple(seq.tokens[: seq.fed])
                slot.last_used = next(self._clock)
            if not self._share:
                self._drop(slot)
        waited = (seq.admitted if seq.admitted is not None else time.monotonic()) - seq.submitted
        seq.on_done(Finished(len(seq.prompt), seq.reused, seq.generated, stop, error, waited))


def quiet_llama_logs() -> None:
    """Let llama.cpp's log through only from ERROR up, read with its log levels as numbered now.

    llama-cpp-python prints every log line until a ``Llama`` object makes it quiet, and its
    table still has ggml's old numbering (INFO=1, WARN=2, ERROR=3) while the llama.cpp it bundles
    logs DEBUG=1, INFO=2, WARN=3, ERROR=4: warnings were taken for errors and printed in the
    middle of the CLI's output (Qwen2.5's "control-looking token" line on every load), and real
    errors were dropped as debug lines.
    """
    import logging

    import llama_cpp._logger

    llama_cpp._logger.GGML_LOG_LEVEL_TO_LOGGING_LEVEL.update(
        {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
    )
    llama_cpp._logger.set_verbose(False)


@functools.cache
def _penalties_fn() -> Any:
    """llama.cpp's repetition penalty sampler, declared as llama.h has it now: the bundled
    bindings still pass a leading ``n_vocab`` the C function no longer takes, which shifts
    ``penalty_last_n`` to the vocabulary size. A function pointer of our own, so theirs is
    left as it is."""
    import llama_cpp

    fn = llama_cpp.llama_cpp._lib["llama_sampler_init_penalties"]
    fn.argtypes = [ctypes.c_int32, ctypes.c_float, ctypes.c_float, ctypes.c_float]
    fn.restype = llama_cpp.llama_cpp.llama_sampler_p_ctypes
    return fn


def _penalties(last_n: int, repeat: float) -> Any:
    return _penalties_fn()(last_n, repeat, 0.0, 0.0)
