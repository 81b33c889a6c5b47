"""Sentence embeddings on the installed all-MiniLM-L6-v2, computed natively (no torch).

>>> from facilitair_tui.native import Embedder
>>> embedder = Embedder.load()            # finds the model under FACILITAIR_HOME
>>> vectors = embedder.encode(["sort a list", "order a list"])
>>> float(vectors[0] @ vectors[1])        # cosine: the rows are L2-normalised
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facilitair_tui import _native, embedded_models

ModelFileError = _native.ModelFileError
MAX_TOKENS: int = _native.MAX_TOKENS


def default_threads() -> int:
    """One compute thread per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Embedder:
    """all-MiniLM-L6-v2: 384-dim, mean-pooled over the real tokens, L2-normalised, at most
    ``MAX_TOKENS`` tokens per text (longer texts are cut, as sentence-transformers does).

    Encoding releases the GIL, so other Python threads (the UI, the event loop) keep running.
    One instance may be used from several threads.
    """

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        """Load the model files (``model.safetensors``, ``tokenizer.json``, ``config.json``)
        from ``folder``. Raises ``FileNotFoundError`` naming a missing file and
        ``ModelFileError`` for one that cannot be read."""
        count = default_threads() if threads is None else threads
        if count < 1:
            raise ValueError(f"threads must be at least 1, got {count}")
        self.folder = folder
        self._model = _native.MiniLmEmbedder(str(folder), count)

    @classmethod
    def load(cls, *, threads: int | None = None) -> Embedder:
        """The installed model (``facilitair models install`` puts it under FACILITAIR_HOME).

        Raises ``ModelNotInstalled``, saying the command to run, when it is not there.
        """
        if not embedded_models.MINILM.installed():
            raise embedded_models.ModelNotInstalled(
                f"the embedding model {embedded_models.MINILM.name} is not installed "
                f"(looked in {embedded_models.MINILM.directory}). Run: {embedded_models.INSTALL_COMMAND}"
            )
        return cls(embedded_models.MINILM.directory, threads=threads)

    @property
    def dim(self) -> int:
        return self._model.dim

    @property
    def threads(self) -> int:
        return self._model.threads

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The texts' vectors, shape ``(len(texts), 384)``, float32, each row of length 1."""
        batch = _as_texts(texts)
        raw = self._model.encode(batch)
        return np.frombuffer(raw, dtype=np.float32).reshape(len(batch), self.dim)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text is encoded from (special tokens included, after truncation)."""
        return self._model.token_counts(_as_texts(texts))


def _as_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode takes a list of texts; wrap a single text in a list: encode([text])")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str")
    return batch
