"""The native layer's public API: what scripts, notebooks and the cache use.

``Embedder`` turns texts into all-MiniLM-L6-v2 vectors; ``VectorIndex`` finds the nearest ones.
Both run in the Rust extension (``facilitair_tui._native``) and release the GIL while working.
"""

from facilitair_tui.native.embedder import MAX_TOKENS, Embedder, ModelFileError

__all__ = ["MAX_TOKENS", "Embedder", "ModelFileError"]
