"""Native (Rust) parts of Facilitair: the orchestrator's token router and the vector index.

Several agents stream text deltas concurrently within a chunk (a stage of
work). ``StreamRouter`` keeps each agent's transcript and delta count for the
current chunk; ``coalesce`` merges a delta stream into frames for UIs.

``VectorIndex`` finds entries by cosine similarity; its typed front is
``facilitair_tui.native.VectorIndex``, which documents it.
"""

import os
from typing import Literal, final

import numpy as np
import numpy.typing as npt

__all__ = ["IndexFileError", "StreamRouter", "VectorIndex", "__version__", "coalesce"]

__version__: str
"""Version of the native crate."""

@final
class StreamRouter:
    """Per-agent transcripts and delta counts of the current chunk.

    Thread-safe: one instance may be shared by several Python threads.
    """

    def __init__(self) -> None:
        """Create an empty router."""

    def append(self, agent: str, text: str) -> int:
        """Append a delta to ``agent``'s transcript.

        Returns the agent's delta count after appending. An empty ``text`` is
        ignored: it is not counted and does not register a new agent.
        """

    def text(self, agent: str) -> str:
        """The agent's transcript so far (``""`` for an agent never seen)."""

    def count(self, agent: str) -> int:
        """The agent's delta count so far (``0`` for an agent never seen)."""

    def total(self) -> int:
        """Deltas counted across all agents."""

    def agents(self) -> list[str]:
        """Agents in first-seen order."""

    def reset(self, agent: str) -> None:
        """Forget one agent's transcript and count: its generation restarts.

        The agent keeps its place in the first-seen order, with an empty
        transcript. Resetting an agent never seen does nothing.
        """

    def clear(self) -> None:
        """Start a new chunk: forget every agent."""

    def snapshot(self) -> dict[str, str]:
        """Every agent's transcript, in first-seen order."""

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
