"""A vector index for looking up entries by cosine similarity (the native one, typed).

The semantic cache stores one embedding per past task and asks, for a new task, which past ones
are most similar. ``VectorIndex`` answers that:

* Each entry is a string id, a vector and optionally a namespace. Vectors are L2-normalised when
  added, so the similarity is the cosine of the angle between the vectors (a number in [-1, 1])
  whatever their length; a vector of zeros (no direction) or with NaN or infinity is refused.
* Adding an id that is present replaces its vector (and namespace). Passing the same id twice in
  one ``add`` call is an error: which vector was meant is ambiguous. Every ``add`` is all or
  nothing: when it raises, the index is unchanged.
* ``search`` returns the ``k`` most similar entries, best first, as ``(id, similarity)`` pairs,
  only those at least ``min_similarity`` similar, only those in ``namespace`` if given. Equal
  similarities come in ascending id order, so results are deterministic.
* Searches are exact (the same answer as comparing with every entry) unless the index is
  approximate: in ``mode="auto"`` from 200,000 entries on, in ``mode="approximate"`` from 1,024.
  An approximate search compares only with the entries in the ``nprobe`` groups (k-means lists)
  nearest the query; ``search(..., exact=True)`` is exact in any mode.
* ``save`` writes one file atomically (the path holds the old file or the new one, never a
  partial one); ``load`` raises ``IndexFileError`` for a file that is corrupt, truncated,
  foreign or of another format version, so the caller can rebuild the index from its entries.
  Reading or writing errors raise ``OSError``.
* One index may be shared by threads: searches run side by side, changes one at a time. Searches,
  big adds, ``save`` and ``load`` release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from facilitair_tui import _native
from facilitair_tui._native import IndexFileError

__all__ = ["IndexFileError", "Mode", "VectorIndex"]

Mode = Literal["auto", "exact", "approximate"]


def _ids(ids: Iterable[str], what: str) -> list[str]:
    if isinstance(ids, str):
        raise TypeError(f"{what} must be a list of ids, not one string: write [{ids!r}]")
    return list(ids)


def _rows(vectors: npt.ArrayLike, dim: int, count: int) -> npt.NDArray[np.float32]:
    """``vectors`` as a C-contiguous float32 array of ``count`` rows of ``dim`` values."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1 and count == 1:
        array = array.reshape(1, -1)
    elif array.ndim == 1 and array.size == 0:
        array = array.reshape(0, dim)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(
            f"vectors must have shape (n, {dim}), one row of {dim} values per id; got {array.shape}"
        )
    if array.shape[0] != count:
        raise ValueError(f"got {count} ids but {array.shape[0]} vectors: pass one vector per id")
    return np.ascontiguousarray(array)


def _query(vector: npt.ArrayLike, dim: int) -> npt.NDArray[np.float32]:
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (dim,):
        raise ValueError(f"the query must be one vector of {dim} values; got shape {array.shape}")
    return np.ascontiguousarray(array)


class VectorIndex:
    """Entries (id, vector, namespace) searchable by cosine similarity; see the module docs."""

    __slots__ = ("_index",)

    _index: _native.VectorIndex

    def __init__(self, dim: int, *, mode: Mode = "auto") -> None:
        """An empty index of ``dim``-dimensional vectors (1 to 65536).

        ``mode``: ``"auto"`` (exact, approximate from 200,000 entries), ``"exact"`` or
        ``"approximate"`` (from 1,024 entries).
        """
        self._index = _native.VectorIndex(dim, mode=mode)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """The index saved at ``path``.

        Raises ``IndexFileError`` if the file is not a loadable index (corrupt, truncated,
        foreign or of another format version): rebuild the index from its entries then.
        Raises ``OSError`` if it cannot be read.
        """
        index = cls.__new__(cls)
        index._index = _native.VectorIndex.load(os.fspath(path))
        return index

    @property
    def dim(self) -> int:
        """Values per vector."""
        return self._index.dim

    @property
    def mode(self) -> Mode:
        """The mode the index was created with."""
        return self._index.mode

    @property
    def approximate(self) -> bool:
        """Whether searches are currently approximate (see ``nprobe``)."""
        return self._index.approximate

    @property
    def nprobe(self) -> int:
        """Lists an approximate search compares with; more is slower and finds more."""
        return self._index.nprobe

    @nprobe.setter
    def nprobe(self, value: int | None) -> None:
        # None restores the default for the index's size.
        self._index.nprobe = value

    @property
    def memory_bytes(self) -> int:
        """Memory the index holds, in bytes."""
        return self._index.memory_bytes

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike, *, namespace: str | None = None) -> None:
        """Add one entry per id; ``vectors`` is anything numpy turns into an ``(n, dim)`` array
        (one ``(dim,)`` vector for one id is fine).

        Ids already present are replaced. Raises ``ValueError`` (and adds nothing) for a wrong
        shape, an id given twice, or a vector that is zero or has NaN or infinity.
        """
        id_list = _ids(ids, "ids")
        self._index.add(id_list, _rows(vectors, self.dim, len(id_list)), namespace=namespace)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove the entries with these ids; return how many were present."""
        return self._index.remove(_ids(ids, "ids"))

    def search(
        self,
        vector: npt.ArrayLike,
        k: int = 5,
        min_similarity: float = 0.0,
        *,
        namespace: str | None = None,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """The ``k`` entries most similar to ``vector``, best first, as ``(id, similarity)``.

        Only entries at least ``min_similarity`` similar, and only those added with
        ``namespace`` if one is given. Raises ``ValueError`` for a wrong shape, a zero or
        non-finite query, ``k < 1`` or a NaN ``min_similarity``.
        """
        query = _query(vector, self.dim)
        return self._index.search(query, k, min_similarity, namespace=namespace, exact=exact)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically: an interrupted save leaves the old file."""
        self._index.save(os.fspath(path))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and id in self._index

    def __repr__(self) -> str:
        return repr(self._index)
