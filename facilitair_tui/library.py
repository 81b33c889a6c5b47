"""What the TUI reads about past work: cached solutions and recorded sessions.

The screens that browse them (the cache inspector, the session history) depend only on the two
Protocols here, ``CacheCatalog`` and ``SessionHistory``, implemented by the semantic cache
(``cache/``) and the SQLite session store (``store/``). Also here:

* ``EmptyCacheCatalog``: no cache (it is off), so the inspector says it is empty;
* ``MemoryCacheCatalog``: entries held in memory, for tests and seeding.

No Textual here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from .core import events as ev

# ---------------------------------------------------------------------------- the semantic cache


@dataclass(frozen=True)
class CachedSolution:
    """One cached answer: what was asked, in which context, what came out and what it cost."""

    id: str
    task: str
    context: dict[str, str]
    output: str
    syntheses: list[str]
    models: dict[str, str]
    cost_usd: float | None  # of the original run; None when a model's price was unknown
    duration_s: float
    created_at: datetime
    hits: int = 0
    last_hit: datetime | None = None
    saved_usd: float | None = None  # hits x the original cost, as far as it is known
    imported: bool = False  # came from a file (``facilitair cache import``), not a run here

    def matches(self, query: str, context_filter: dict[str, str] | None = None) -> bool:
        """Every word of ``query`` is in the task or the context; every filter pair is in the context."""
        for key, value in (context_filter or {}).items():
            if self.context.get(key, "").casefold() != value.casefold():
                return False
        haystack = " ".join([self.task, *(f"{k} {k}={v} {v}" for k, v in self.context.items())]).casefold()
        return all(word in haystack for word in query.casefold().split())


class CacheCatalog(Protocol):
    def list(self, query: str = "", context_filter: dict[str, str] | None = None) -> list[CachedSolution]:
        """The entries matching ``query`` (task and context text) and ``context_filter``, newest first."""
        ...

    def get(self, id: str) -> CachedSolution | None: ...

    def delete(self, id: str) -> bool:
        """Remove an entry; False when there was none with this id."""
        ...


class EmptyCacheCatalog:
    """The catalog until the semantic cache exists: nothing is cached yet."""

    def list(self, query: str = "", context_filter: dict[str, str] | None = None) -> list[CachedSolution]:
        return []

    def get(self, id: str) -> CachedSolution | None:
        return None

    def delete(self, id: str) -> bool:
        return False


class MemoryCacheCatalog:
    """A catalog held in memory (tests, seeding)."""

    def __init__(self, entries: Iterable[CachedSolution] = ()) -> None:
        self._entries = {entry.id: entry for entry in entries}

    def list(self, query: str = "", context_filter: dict[str, str] | None = None) -> list[CachedSolution]:
        found = [e for e in self._entries.values() if e.matches(query, context_filter)]
        return sorted(found, key=lambda e: e.created_at, reverse=True)

    def get(self, id: str) -> CachedSolution | None:
        return self._entries.get(id)

    def delete(self, id: str) -> bool:
        return self._entries.pop(id, None) is not None


# ---------------------------------------------------------------------------- recorded sessions

SessionStatus = Literal["running", "done", "stopped", "interrupted", "failed"]
# A session's recorded events, in order (named: ``list`` is also a method name in the classes here).
Recording = list[ev.Event]


@dataclass(frozen=True)
class SessionSummary:
    id: str
    started_at: datetime
    task: str
    status: SessionStatus
    cost_usd: float | None
    duration_s: float
    chunks_done: int
    chunks_total: int
    # The session ended before its last chunk and could be continued from its recorded chunks.
    resumable: bool = False
    # Something the reader could not use, in words; empty when all was well.
    note: str = ""
    # A branch of another session (a resume or a fork): its first ``reused_chunks`` chunks are
    # the parent's; ``change`` says what the branch changed (empty for a resume).
    parent_id: str | None = None
    reused_chunks: int = 0
    change: str = ""


class SessionHistory(Protocol):
    def list(self) -> list[SessionSummary]:
        """Every recorded session, newest first."""
        ...

    def events(self, id: str) -> Recording:
        """The recorded events of one session, in order. KeyError for an unknown id."""
        ...


class NoSessionHistory:
    """The history when sessions are not recorded (the store could not be opened)."""

    def list(self) -> list[SessionSummary]:
        return []

    def events(self, id: str) -> Recording:
        raise KeyError(id)


@dataclass(frozen=True)
class ContinueRequest:
    """Continue a recorded session: a resume (nothing else set) or a fork after ``at_chunk``."""

    session_id: str
    at_chunk: int | None = None
    feedback: list[str] | None = None  # replaces the recorded feedback for the chunks that run
    strategy: str | None = None


class EventSink(Protocol):
    """Where a live session's events go as they happen (the session store's recorder)."""

    def record(self, event: ev.Event) -> None: ...

    def record_async(self, event: ev.Event) -> Awaitable[None]:
        """``record`` on an event loop: waits for the event to be safe without blocking the loop."""
        ...

    @property
    def problem(self) -> str | None:
        """Why the events are not (all) in the database (kept and retried, or in the session's
        unsaved file); None when all is well."""
        ...


def branches(sessions: Sequence[SessionSummary]) -> list[tuple[int, SessionSummary]]:
    """The sessions as a tree, with each one's depth: the sessions that began afresh newest
    first, each followed by its resumes and forks (oldest first, so a branch reads in order)."""
    known = {s.id for s in sessions}
    children: dict[str, list[SessionSummary]] = {}
    roots = []
    for session in sessions:
        if session.parent_id in known and session.parent_id != session.id:
            children.setdefault(session.parent_id, []).append(session)
        else:
            roots.append(session)
    ordered: list[tuple[int, SessionSummary]] = []
    seen: set[str] = set()

    def visit(session: SessionSummary, depth: int) -> None:
        if session.id in seen:
            return
        seen.add(session.id)
        ordered.append((depth, session))
        for child in sorted(children.get(session.id, []), key=lambda s: (s.started_at, s.id)):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    return ordered


def branch_label(session: SessionSummary) -> str:
    """How a branch came to be: "resume of 3f2a… after chunk 2", "fork of 3f2a… after chunk 1: …"."""
    if session.parent_id is None:
        return ""
    kind = "fork" if session.change else "resume"
    text = f"{kind} of {session.parent_id[:8]} after chunk {session.reused_chunks}"
    return f"{text}: {session.change}" if session.change else text


def format_age(then: datetime, now: datetime) -> str:
    """ "just now", "5 min ago", "3 h ago", "2 d ago"."""
    return age_words((now - then).total_seconds())


def age_words(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"
