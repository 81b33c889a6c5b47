"""The native (Rust) layer: sentence embeddings and the orchestrator's token router.

``MiniLmEmbedder`` computes all-MiniLM-L6-v2 vectors (the typed API in front of it is
``facilitair_tui.native.Embedder``). Several agents stream text deltas concurrently within a chunk (a stage of
work). ``StreamRouter`` keeps each agent's transcript and delta count for the
current chunk; ``coalesce`` merges a delta stream into frames for UIs.
"""

from os import PathLike
from typing import Self, final

__all__ = ["MAX_TOKENS", "MiniLmEmbedder", "ModelFileError", "StreamRouter", "__version__", "coalesce"]

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
