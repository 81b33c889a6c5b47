"""The session store: every session in SQLite, as it happens (see ``sessions.py``).

No Textual, no provider here: the store reads and writes events and the rows made from them.
"""

from __future__ import annotations

from .schema import SCHEMA_VERSION
from .sessions import (
    CONTINUABLE,
    DB_NAME,
    SessionNotFound,
    SessionRecorder,
    SessionStore,
    StoreDamaged,
    StoredSession,
    StoreError,
)
from .writer import BarrierResult

__all__ = [
    "CONTINUABLE",
    "DB_NAME",
    "SCHEMA_VERSION",
    "BarrierResult",
    "SessionNotFound",
    "SessionRecorder",
    "SessionStore",
    "StoreDamaged",
    "StoreError",
    "StoredSession",
]
