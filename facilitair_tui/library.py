"""What the TUI reads about past work: cached solutions and recorded sessions.

The screens that browse them (the cache inspector, the session history) depend only on the two
Protocols here, ``CacheCatalog`` and ``SessionHistory``. The semantic cache (``cache/``) and the
SQLite session store (``store/``) implement them later without any change to the UI; until then:

* ``EmptyCacheCatalog``: there is no cache yet, so the inspector says it is empty;
* ``MemoryCacheCatalog``: entries held in memory, for tests and seeding;
* ``JsonlSessionRecorder`` / ``JsonlSessionHistory``: each session's events as JSON Lines,
  ``<dir>/<session_id>.jsonl``, one ``events.to_json`` per line, written as they happen.

No Textual here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Literal, Protocol

from .core import events as ev
from .core.cost import add_costs

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
    # Something the reader could not use (a corrupt line), in words; empty when all was well.
    note: str = ""


class SessionHistory(Protocol):
    def list(self) -> list[SessionSummary]:
        """Every recorded session, newest first."""
        ...

    def events(self, id: str) -> Recording:
        """The recorded events of one session, in order. KeyError for an unknown id."""
        ...


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _file_stem(session_id: str) -> str:
    stem = _UNSAFE.sub("_", session_id).lstrip(".")
    return stem or "session"


class EventSink(Protocol):
    """Where a live session's events go as they happen (the session store, later)."""

    def record(self, event: ev.Event) -> None: ...


class JsonlSessionRecorder:
    """Appends each event to ``<dir>/<session_id>.jsonl`` and flushes it, so a crash loses nothing.

    A ``session_started`` for an id that already has a file starts a new file (``<id>-2.jsonl``):
    two runs are never mixed in one recording. Files are 0600 in a 0700 directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, IO[bytes]] = {}

    def record(self, event: ev.Event) -> None:
        out = self._files.get(event.session_id)
        if out is None or isinstance(event, ev.SessionStarted):
            if out is not None:
                out.close()
            out = self._files[event.session_id] = self._open(event.session_id)
        out.write(ev.to_json(event) + b"\n")
        out.flush()
        if isinstance(event, ev.SessionFinished):
            self._files.pop(event.session_id).close()

    def _open(self, session_id: str) -> IO[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stem = _file_stem(session_id)
        path = self.directory / f"{stem}.jsonl"
        number = 1
        while path.exists():
            number += 1
            path = self.directory / f"{stem}-{number}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        return os.fdopen(fd, "ab")

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()


@dataclass
class _Reading:
    events: Recording = field(default_factory=list)
    note: str = ""


class JsonlSessionHistory:
    """Reads the sessions ``JsonlSessionRecorder`` wrote. A session's id is its file's name.

    A session without ``session_finished`` is "interrupted" (the program ended during it). A line
    that is not an event (a write cut short, an edit) ends that session's recording there; the
    summary says so. Neither ever raises.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def list(self) -> list[SessionSummary]:
        if not self.directory.is_dir():
            return []
        summaries = [self._summary(path) for path in self.directory.glob("*.jsonl")]
        return sorted(summaries, key=lambda s: (s.started_at, s.id), reverse=True)

    def events(self, id: str) -> Recording:
        path = self.directory / f"{id}.jsonl"
        if _file_stem(id) != id or not path.is_file():
            raise KeyError(id)
        return self._read(path).events

    @staticmethod
    def _read(path: Path) -> _Reading:
        reading = _Reading()
        try:
            with path.open("rb") as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        reading.events.append(ev.from_json(line))
                    except ev.EventFormatError as exc:
                        reading.note = (
                            f"line {number} is not a valid event ({exc}); the recording stops there"
                        )
                        break
        except OSError as exc:
            reading.note = f"could not read the recording: {exc.strerror or exc}"
        return reading

    def _summary(self, path: Path) -> SessionSummary:
        reading = self._read(path)
        events = reading.events
        started = next((e for e in events if isinstance(e, ev.SessionStarted)), None)
        finished = next((e for e in events if isinstance(e, ev.SessionFinished)), None)
        last_t = max((e.t for e in events), default=0.0)
        try:
            ended_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            ended_at = datetime.fromtimestamp(0, UTC)
        chunks_total = len(started.chunks) if started else 0
        chunks_done = sum(isinstance(e, ev.Synthesis) for e in events)
        status: SessionStatus = finished.status if finished else "interrupted"
        if finished:
            cost, duration = finished.cost_usd, finished.duration_s
        else:
            cost = add_costs(e.cost_usd for e in events if isinstance(e, ev.AgentFinished))
            duration = last_t
        note = reading.note or ("" if started else "no session_started event was recorded")
        return SessionSummary(
            id=path.stem,
            # The file was last written when the last event happened, ``last_t`` after the start.
            started_at=ended_at - timedelta(seconds=last_t),
            task=started.task if started else "",
            status=status,
            cost_usd=cost,
            duration_s=duration,
            chunks_done=chunks_done,
            chunks_total=chunks_total,
            resumable=status == "interrupted" and started is not None and chunks_done < chunks_total,
            note=note,
        )


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
