"""The typed Python API of the native (Rust) extension: what the rest of Facilitair imports.

``facilitair_tui._native`` is private; its classes are wrapped here with plain Python types,
argument checks and documentation.
"""

from __future__ import annotations

from .index import IndexFileError, VectorIndex

__all__ = ["IndexFileError", "VectorIndex"]
