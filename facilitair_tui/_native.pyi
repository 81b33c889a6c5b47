"""The native (Rust) layer: sentence embeddings, the vector index and the token router.

``MiniLmEmbedder`` computes all-MiniLM-L6-v2 vectors and ``VectorIndex`` finds entries by
cosine similarity; their typed fronts are ``facilitair_tui.native.Embedder`` and
``facilitair_tui.native.VectorIndex``, which document them.

Several agents stream text deltas concurrently within a chunk (a stage of
work). ``StreamRouter`` is where they meet:

* fan-out: each agent's transcript and delta count for the current chunk, read
  by the agents that build on it (``text``, ``text_since``);
* fan-in: one ordered log of every delta with a sequence number (0, 1, ... in
  push order) and a timestamp that never decreases, drained as frames (runs of
  consecutive deltas of one agent merged, never reordered);
* flow control: a hold (nothing pushed after it drains until ``release``,
  nothing is lost), a capacity of pending deltas past which ``push`` tells the
  producer to wait, and a frame policy saying when a drain is due.

``coalesce`` merges a list of deltas into frames the same way.
"""

import os
from os import PathLike
from typing import Literal, Self, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_TOKENS",
    "IndexFileError",
    "MiniLmEmbedder",
    "ModelFileError",
    "StreamRouter",
    "VectorIndex",
    "__version__",
    "coalesce",
]

__version__: str
"""Version of the native crate."""

MAX_TOKENS: int
"""Tokens a text is cut to before embedding (special tokens included)."""

class ModelFileError(OSError):
    """A model file is there but could not be read (corrupt, truncated or of another model)."""

@final
class MiniLmEmbedder:
    """all-MiniLM-L6-v2 (f16 weights, f32 arithmetic): mean over the real tokens, L2-normalised rows."""

    def __new__(cls, folder: str | PathLike[str], threads: int = 1) -> Self:
        """Load ``model.safetensors``, ``tokenizer.json`` and ``config.json`` from ``folder``.

        Raises ``FileNotFoundError`` for a missing file, ``ModelFileError`` for one that cannot
        be read, ``ValueError`` for ``threads < 1``.
        """

    @property
    def dim(self) -> int:
        """Dimensions of a vector."""

    @property
    def threads(self) -> int:
        """Compute threads."""

    def encode(self, texts: list[str]) -> bytearray:
        """``len(texts) * dim`` float32s in native byte order, row-major; the GIL is released."""

    def token_counts(self, texts: list[str]) -> list[int]:
        """Tokens each text is encoded from (special tokens included, after truncation)."""

@final
class StreamRouter:
    """Transcripts, fan-in log and flow control of one collaboration.

    Thread-safe: one instance may be shared by several Python threads. Times are
    seconds on one monotonic clock: the caller's when it passes ``t``/``now``,
    else the router's own (seconds since it was made). Use one or the other.
    """

    def __new__(cls, capacity: int = 4096, frame_s: float = 0.0, frame_deltas: int = 256) -> StreamRouter:
        """Create an empty router.

        ``capacity``: pending deltas (held ones included) at which ``push`` starts
        returning ``False``. ``frame_s``, ``frame_deltas``: a drain is due at most
        once per ``frame_s`` seconds, or at once when ``frame_deltas`` deltas wait
        (``frame_s=0``: due whenever anything waits). Raises ``ValueError`` for a
        capacity or ``frame_deltas`` below 1, or a negative or infinite ``frame_s``.
        """

    @property
    def capacity(self) -> int:
        """Pending deltas at which producers are told to wait."""

    @property
    def frame_policy(self) -> tuple[float, int]:
        """``(frame_s, frame_deltas)``."""

    def push(self, agent: str, text: str, t: float | None = None) -> bool:
        """Append a delta to ``agent``'s transcript and to the fan-in log.

        ``t`` is its timestamp (raised to the previous delta's if earlier; the
        router's clock when omitted). Returns whether there is room for more:
        ``False`` once the pending deltas reach the capacity, when the producer
        should wait for a drain. A delta is never refused. An empty ``text`` is
        ignored: not counted, not logged, no new agent.
        """

    def has_room(self) -> bool:
        """Whether fewer deltas than the capacity are pending."""

    def text(self, agent: str) -> str:
        """The agent's transcript in the current chunk (``""`` for an agent not seen)."""

    def text_since(self, agent: str, start: int) -> str:
        """``text(agent)[start:]``, without copying the part before ``start``.

        What a reader that has seen ``start`` characters has not seen yet.
        """

    def count(self, agent: str) -> int:
        """The agent's delta count in the current chunk (``0`` for an agent not seen)."""

    def total(self) -> int:
        """Deltas counted across all agents in the current chunk."""

    def agents(self) -> list[str]:
        """Agents of the current chunk in first-seen order."""

    def reset(self, agent: str) -> None:
        """Forget one agent's transcript and count: its generation restarts.

        The agent keeps its place in the first-seen order, with an empty
        transcript; its pending deltas are still drained. Resetting an agent not
        seen does nothing.
        """

    def clear(self) -> None:
        """Start a new chunk: forget every transcript. Pending deltas stay in the log."""

    def snapshot(self) -> dict[str, str]:
        """Every agent's transcript in the current chunk, in first-seen order."""

    def next_seq(self) -> int:
        """The sequence number the next delta will get.

        As a ``before`` barrier of ``drain``, it keeps everything pushed so far
        before whatever the caller puts at that point of its own stream.
        """

    def pending(self) -> int:
        """Deltas pushed and not drained yet, held ones included."""

    def available(self) -> int:
        """Pending deltas a drain would take now (not held)."""

    def drain(
        self, before: int | None = None, now: float | None = None
    ) -> list[tuple[str, str, int, int, float]]:
        """Take the pending deltas with a sequence number below ``before`` (all when
        ``None``) and before the hold point, merged into frames.

        A frame is ``(agent, text, seq, count, t)``: the text of ``count``
        consecutive deltas of ``agent``, the first with sequence number ``seq``
        (the others follow without a gap) and timestamp ``t``. Frames come in
        push order; within one drain, two frames in a row are of different agents.

        ``now`` is when the drain happens, for the frame interval (the router's
        clock when omitted).
        """

    def hold(self) -> None:
        """Hold every delta pushed from now on until ``release``; earlier ones still drain.

        Holding again while held keeps the first hold point.
        """

    def release(self) -> None:
        """End the hold: the held deltas drain as usual, in order."""

    def held(self) -> bool:
        """Whether deltas are held."""

    def due_in(self, now: float | None = None) -> float | None:
        """Seconds from ``now`` until a drain is due under the frame policy.

        ``0.0``: due now; ``None``: nothing to drain (nothing pending, or all held).
        """

def coalesce(deltas: list[tuple[str, str]], max_chars: int = 4096) -> list[tuple[str, str]]:
    """Merge runs of consecutive same-agent deltas into ``(agent, text)`` frames.

    Never reorders. A frame holds at most ``max_chars`` characters unless a
    single delta is longer, in which case that delta is a frame of its own.
    Empty deltas are dropped. Raises ``ValueError`` if ``max_chars < 1``.
    """

class IndexFileError(ValueError):
    """An index file that cannot be loaded: corrupt, truncated, foreign or of another format
    version. The index can be rebuilt from its entries."""

@final
class VectorIndex:
    """Entries (string id, vector, optional namespace) searchable by cosine similarity.

    Vectors are L2-normalised when added. Thread-safe: searches run side by side, changes one
    at a time; searches, big adds, ``save`` and ``load`` release the GIL.
    """

    def __new__(cls, dim: int, *, mode: str = "auto") -> VectorIndex:
        """An empty index; ``mode`` is ``"auto"``, ``"exact"`` or ``"approximate"``.

        Raises ``ValueError`` for a ``dim`` outside 1..=65536 or an unknown mode.
        """

    @property
    def dim(self) -> int:
        """Values per vector."""

    @property
    def mode(self) -> Literal["auto", "exact", "approximate"]:
        """The mode given at creation."""

    @property
    def approximate(self) -> bool:
        """Whether searches currently probe only the ``nprobe`` nearest lists."""

    @property
    def nlist(self) -> int:
        """Lists (k-means groups) kept; 0 below 1,024 entries."""

    @property
    def nprobe(self) -> int:
        """Lists an approximate search probes."""

    @nprobe.setter
    def nprobe(self, value: int | None) -> None: ...
    @property
    def memory_bytes(self) -> int:
        """Heap bytes held by the index."""

    def add(self, ids: list[str], vectors: npt.NDArray[np.float32], *, namespace: str | None = None) -> None:
        """Add (or replace) one entry per id; ``vectors`` is a float32 array of shape
        ``(len(ids), dim)`` (any buffer of that format and shape). All or nothing: raises
        ``ValueError`` for a wrong shape, a duplicate id, or a zero or non-finite vector."""

    def remove(self, ids: list[str]) -> int:
        """Remove these ids; return how many were present."""

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int = 5,
        min_similarity: float = 0.0,
        *,
        namespace: str | None = None,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """The ``k`` most similar entries, best first, as ``(id, similarity)``; ties in id
        order. ``query`` is a 1-dimensional float32 array of ``dim`` values."""

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically. Raises ``OSError`` if writing fails (the old
        file, if any, is then untouched)."""

    @staticmethod
    def load(path: str | os.PathLike[str]) -> VectorIndex:
        """Read an index written by ``save``. Raises ``IndexFileError`` if the file is not a
        loadable index, ``OSError`` if it cannot be read."""

    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...
