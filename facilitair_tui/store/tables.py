"""What the store's table groups (eval runs, analytics) share: one connection, and its errors
raised as the ``StoreError`` that says what to do."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator


class Tables:
    """Some of one store's tables, on its connection (autocommit: each write is its own
    transaction). A database error is raised as what ``failure`` makes of it."""

    def __init__(self, conn: sqlite3.Connection, failure: Callable[[sqlite3.Error], Exception]) -> None:
        self._conn = conn
        self._failure = failure

    @contextlib.contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
