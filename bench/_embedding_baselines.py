"""The embedding bench's baselines: all-MiniLM-L6-v2 run by onnxruntime and by sentence-transformers.

Both compute what ``facilitair_tui.native.Embedder`` computes: the same tokenizer, at most
``max_tokens`` tokens per text, the hidden states mean-pooled over the real tokens, L2-normalised.
Both batch as sentence-transformers does by default: texts sorted by length, ``BATCH_SIZE`` at a
time, each batch padded to its longest text.

This module imports only numpy at the top; each baseline imports its runtime when built, so a
cold-start subprocess can time the imports itself, and this module never imports ours.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
BATCH_SIZE = 32  # sentence-transformers' default
DIM = 384


class OnnxMiniLM:
    """The int8 ONNX export (``last_hidden_state`` out) on onnxruntime's CPU provider, tokenised by
    the ``tokenizers`` package from the model's ``tokenizer.json``; pooling in numpy."""

    def __init__(self, model: Path, tokenizer: Path, *, threads: int, max_tokens: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        # The file pads every text to 128 tokens and cuts at 128; pad to the batch's longest and
        # cut where sentence-transformers (and ours) cut instead.
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: -sum(encodings[i].attention_mask))
        out = np.empty((len(encodings), DIM), dtype=np.float32)
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            out[chunk] = self._run([encodings[i] for i in chunk])
        return out

    def _run(self, encodings: list[Any]) -> Vectors:
        # Padded to the longest of the whole call: cut the chunk to its own longest.
        width = max(sum(e.attention_mask) for e in encodings)
        ids = np.array([e.ids[:width] for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask[:width] for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids[:width] for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = np.asarray(self._session.run(["last_hidden_state"], feeds)[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors


class SentenceTransformersMiniLM:
    """sentence-transformers (torch, float32) on the same model files as ours: loaded from the
    folder, it builds the transformer plus mean pooling; ``normalize_embeddings`` normalises."""

    def __init__(self, folder: Path, *, threads: int, max_tokens: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the hub
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in the bench's table
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        from sentence_transformers import SentenceTransformer

        # It says, as a warning, that the folder has no sentence-transformers config and that it
        # builds mean pooling: that is what we want.
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        torch.set_num_threads(threads)
        self._model: Any = SentenceTransformer(str(folder), device="cpu")
        self._model.max_seq_length = max_tokens

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
