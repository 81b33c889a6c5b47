"""The native layer's public API: what scripts, notebooks and the cache use.

``Embedder`` turns texts into all-MiniLM-L6-v2 vectors; ``VectorIndex`` finds the nearest ones.
Both run in the Rust extension (``facilitair_tui._native``, private) and release the GIL while
working; the classes here wrap it with plain Python types, argument checks and documentation.
"""

from __future__ import annotations

from .embedder import MAX_TOKENS, Embedder, ModelFileError
from .index import IndexFileError, VectorIndex

__all__ = ["MAX_TOKENS", "Embedder", "IndexFileError", "ModelFileError", "VectorIndex"]
