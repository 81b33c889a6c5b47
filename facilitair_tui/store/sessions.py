"""The session store: every session's events in SQLite, written as they happen.

``SessionStore.open(path)`` opens (or creates) the database: WAL mode, files readable by the user
only, the schema brought up to date (``schema.migrate``), and sessions whose process died marked
``interrupted``. A running session holds an advisory lock on ``running/<id>.lock`` beside the
database for as long as it runs; the operating system drops it when the process dies, however it
dies, so a ``running`` row whose lock can be taken belongs to a dead process. That check runs
whenever the sessions are listed, so the history is true even while another process crashes.

``store.recorder(spec, session_id)`` gives the ``EventSink`` a live session writes to (``record``,
or ``record_async`` on an event loop, which a barrier then does not block); the store
also reads: ``list`` / ``events`` (the ``SessionHistory`` the TUI's history screen uses),
``resolve`` (a unique id prefix), ``load`` (what resuming or forking needs) and ``delete``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
from pydantic import ValidationError

from facilitair_tui import paths
from facilitair_tui.core import events as ev
from facilitair_tui.core.session_spec import SessionSpec
from facilitair_tui.core.workflow import Workflow
from facilitair_tui.library import Recording, SessionStatus, SessionSummary

from . import schema
from .analytics import Analytics
from .evals import EvalRuns
from .writer import BARRIER_EVENTS, PACKED_BYTES, BarrierResult, Begin, Writer, stored_events

# Aliases: ``list`` is also a method name of SessionStore (the SessionHistory protocol).
Rows = list[Any]
Statements = list[tuple[str, tuple[object, ...]]]
ExecutionRows = list[dict[str, Any]]
ChunkRows = list[tuple[int, str, str]]

DB_NAME = "sessions.db"
BUSY_TIMEOUT_MS = 5000
# Statuses a session can be continued from (a done one can be forked, not resumed).
CONTINUABLE = ("interrupted", "stopped", "failed")


class StoreError(Exception):
    """The session store cannot do what was asked; the message says what to do."""


class StoreDamaged(StoreError):
    """The database file is not a usable SQLite database."""


class SessionNotFound(StoreError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class StoredSession:
    """One recorded session in full: what resuming or forking it needs."""

    summary: SessionSummary
    context: dict[str, str]
    strategy: str
    models: dict[str, str]  # role -> "provider:model", the latest in the session
    spec: dict[str, Any]  # max_tokens, read_after_tokens, model_override, role_models, fallbacks
    workflow: Workflow | None  # None: the recorded definition no longer validates
    syntheses: list[ev.Synthesis]  # the finished chunks, 1..N in order
    feedback: list[ev.Feedback]
    output: str
    pid: int | None

    def pending_feedback(self, after: int) -> dict[int, list[str]]:
        """The feedback given for the chunks after chunk ``after``, by chunk: what a continuation
        from there still owes the user."""
        pending: dict[int, list[str]] = {}
        for item in self.feedback:
            if item.chunk > after:
                pending.setdefault(item.chunk, []).append(item.text)
        return pending


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    # A commit in WAL mode with synchronous=NORMAL survives the process being killed (the OS has
    # it); only a power cut can lose the last commits, never the database's consistency.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _damaged(path: Path, exc: sqlite3.Error) -> StoreDamaged:
    return StoreDamaged(
        f"the session database {path} is damaged ({exc}). Nothing was changed. Move it aside "
        f"(mv {path} {path}.damaged) to start a new one; the old file keeps what could still be read"
    )


def _locked(path: Path) -> StoreError:
    return StoreError(
        f"the session database {path} is locked by another program (waited {BUSY_TIMEOUT_MS // 1000} s). "
        "Close whatever holds it (another facilitair writing, or a database browser with a transaction "
        "open) and try again"
    )


def _failure(path: Path, exc: sqlite3.Error) -> StoreError:
    """What a failed statement means for the user: another program holds the file, or it is damaged."""
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return _locked(path)
    return _damaged(path, exc)


class SessionStore:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn  # reads and the occasional write (recovery, delete) on the caller's thread
        self._locks_dir = path.parent / "running"
        self._writer: Writer | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open_default(cls) -> SessionStore:
        """The user's session store, in the data directory."""
        return cls.open(cls.default_path())

    @staticmethod
    def default_path() -> Path:
        return paths.data_dir() / "sessions" / DB_NAME

    @classmethod
    def open(cls, path: Path) -> SessionStore:
        """Open or create the database at ``path``. Raises ``StoreError`` saying what to do."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():  # created 0600; SQLite gives its -wal and -shm files the same mode
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the session database {path}: {exc.strerror or exc}") from None
        try:
            conn = _connect(path)
        except sqlite3.Error as exc:
            raise _failure(path, exc) from None
        try:
            if schema.version(conn) > schema.SCHEMA_VERSION:  # before anything changes the file
                raise schema.SchemaTooNew(schema.version(conn))
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the session database {path} cannot use WAL mode (it is in {mode} mode)")
            schema.migrate(conn)
        except schema.SchemaTooNew as exc:
            conn.close()
            raise StoreError(
                f"the session database {path} was written by a newer Facilitair (schema {exc.found}; "
                f"this one knows up to {schema.SCHEMA_VERSION}). Upgrade Facilitair, or set FACILITAIR_HOME "
                "to use another data directory; the file was not changed"
            ) from None
        except sqlite3.Error as exc:
            conn.close()
            raise _failure(path, exc) from None
        except StoreError:
            conn.close()
            raise
        store = cls(path, conn)
        store.recover()
        return store

    def close(self) -> list[ev.Event]:
        """Commit what is queued and close; returns the events that could not be written."""
        unwritten: list[ev.Event] = []
        if self._writer is not None:
            unwritten = self._writer.close()
            self._writer = None
        self._conn.close()
        return unwritten

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def problem(self) -> str | None:
        """Why the latest write failed, while it keeps failing; None when all is written."""
        return self._writer.problem if self._writer is not None else None

    def _writer_started(self) -> Writer:
        if self._writer is None:
            # A session the database will not take goes to its unsaved file beside it.
            self._writer = Writer(lambda: _connect(self.path), self.path.parent)
        return self._writer

    # ------------------------------------------------------------------ crash recovery

    def recover(self) -> list[str]:
        """Mark the ``running`` sessions whose process is gone ``interrupted``; return their ids."""
        running = [row[0] for row in self._read("SELECT id FROM sessions WHERE status = 'running'")]
        dead = []
        for sid in running:
            lock = self._try_lock(sid)
            if lock is None:
                continue  # its process holds the lock: it is running
            try:
                self._write(
                    [
                        (
                            "UPDATE sessions SET status = 'interrupted', ended_at = updated_at"
                            " WHERE id = ? AND status = 'running'",
                            (sid,),
                        ),
                        (
                            "UPDATE chunks SET status = 'interrupted'"
                            " WHERE session_id = ? AND status = 'running'",
                            (sid,),
                        ),
                        (
                            "UPDATE agent_executions SET status = 'interrupted'"
                            " WHERE session_id = ? AND status = 'running'",
                            (sid,),
                        ),
                    ]
                )
                dead.append(sid)
            finally:
                self._unlock(sid, lock, remove=True)
        self._sweep_locks(set(running))
        return dead

    def _sweep_locks(self, running: set[str]) -> None:
        """Remove lock files no live process holds (left by one that died before its first row
        was written, or between its last commit and removing its lock)."""
        with contextlib.suppress(OSError):
            for path in self._locks_dir.glob("*.lock"):
                sid = path.stem
                if sid in running:
                    continue
                lock = self._try_lock(sid)  # held: its process is about to write the first row
                if lock is not None:
                    self._unlock(sid, lock, remove=True)

    def _lock_path(self, session_id: str) -> Path:
        try:  # the id names a file: never let it name one outside the locks directory
            ev.check_id(session_id)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        return self._locks_dir / f"{session_id}.lock"

    def _try_lock(self, session_id: str) -> IO[bytes] | None:
        """Take the session's lock without waiting; None when a live process holds it."""
        self._locks_dir.mkdir(mode=0o700, exist_ok=True)
        path = self._lock_path(session_id)
        while True:
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return None
            # Another process may have removed the file between our open and our lock: a lock on
            # a removed file guards nothing, so take the one at the path again.
            try:
                if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()

    def _unlock(self, session_id: str, handle: IO[bytes], *, remove: bool) -> None:
        if remove:
            with contextlib.suppress(OSError):
                self._lock_path(session_id).unlink()
        handle.close()

    # ------------------------------------------------------------------ recording

    @property
    def analytics(self) -> Analytics:
        """What the stats are computed from (``facilitair stats``)."""
        return Analytics(self._conn, lambda exc: _failure(self.path, exc))

    @property
    def evals(self) -> EvalRuns:
        """The eval runs kept in this store (``facilitair eval``)."""
        return EvalRuns(self._conn, lambda exc: _failure(self.path, exc))

    def recorder(self, spec: SessionSpec | None, session_id: str) -> SessionRecorder:
        """The sink for one live session's events (nothing is written before its first event).
        Without ``spec`` the session can be replayed but not continued (its workflow is unknown)."""
        return SessionRecorder(self, spec, session_id)

    def import_events(self, events: Iterable[ev.Event], *, started_at: float | None = None) -> str:
        """Store a recording made elsewhere (JSON Lines of events); returns its session id. It
        replays like any session; without its workflow definition it cannot be continued. Of a
        session the store has, only what it lacks is added: the rest a full disk kept out, or what
        a set-aside session's unsaved file (the whole session) holds beyond the stored part."""
        events = list(events)
        # Everything is checked before anything is written: a bad file leaves no trace.
        if not events:
            raise StoreError("the recording holds no events; nothing was imported")
        try:
            ev.check_id(events[0].session_id)
            for event in events:
                if isinstance(event, ev.SessionStarted) and event.parent_id is not None:
                    ev.check_id(event.parent_id, "parent session id")
        except ValueError as exc:
            raise StoreError(f"{exc}; nothing was imported") from None
        if any(event.session_id != events[0].session_id for event in events):
            raise StoreError(
                "a recording holds one session; this one mixes several session ids; nothing was imported"
            )
        recorder: SessionRecorder | None = None
        stored_up_to = 0  # the events up to this seq are in the store already
        added = 0
        for event in events:
            if recorder is None:
                sid = event.session_id
                recorder = SessionRecorder(self, None, sid, started_at=started_at)
                if self.exists(sid):
                    last = self._read(
                        "SELECT max(seq) FROM (SELECT seq FROM events WHERE session_id = ?"
                        " UNION ALL SELECT last_seq FROM token_log WHERE session_id = ?)",
                        (sid, sid),
                    )
                    stored_up_to = last[0][0] or 0
                    if isinstance(event, ev.SessionStarted):
                        if self._started(sid) != event:
                            raise StoreError(f"session {sid} is already in the store; nothing was imported")
                    elif event.seq <= stored_up_to:
                        raise StoreError(f"session {sid} already has these events; nothing was imported")
                    recorder.append_to_stored()
                elif not isinstance(event, ev.SessionStarted):
                    raise StoreError(
                        "a recording must start with its session_started event; nothing was imported"
                    )
            elif event.session_id != recorder.session_id:
                raise StoreError("a recording holds one session; this one mixes several session ids")
            if not stored_up_to or event.seq > stored_up_to:  # seq-less events are numbered on
                recorder.record(event)
                added += 1
        if recorder is None:
            raise StoreError("the recording holds no events")
        if not added:
            raise StoreError(f"session {recorder.session_id} already has these events")
        recorder.close()
        if recorder.last_barrier is not BarrierResult.COMMITTED:
            problem = recorder.problem or "the session database did not confirm the import in time"
            raise StoreError(f"{problem}. Import the file again once that is solved: what is stored is kept")
        return recorder.session_id

    def _started(self, session_id: str) -> ev.Event | None:
        rows = self._read(
            "SELECT body FROM events WHERE session_id = ? AND type = 'session_started'", (session_id,)
        )
        return ev.from_json(rows[0][0]) if rows else None

    def exists(self, session_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM sessions WHERE id = ?", (session_id,)))

    # ------------------------------------------------------------------ reading

    def list(self) -> list[SessionSummary]:
        """Every session, newest first (``SessionHistory``)."""
        with contextlib.suppress(StoreError):  # listing must work even when recovery cannot write
            self.recover()
        rows = self._read(f"SELECT {_SUMMARY_COLUMNS} FROM sessions ORDER BY started_at DESC, id DESC")
        return [_summary(row) for row in rows]

    def summary(self, session_id: str) -> SessionSummary:
        rows = self._read(f"SELECT {_SUMMARY_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise SessionNotFound(f"no session {session_id}")
        return _summary(rows[0])

    def events(self, id: str) -> Recording:
        """The recorded events in their order (``SessionHistory``); KeyError for an unknown id."""
        self.summary(id)
        try:
            return stored_events(self._conn, id)
        except sqlite3.Error as exc:
            raise _failure(self.path, exc) from None

    def resolve(self, prefix: str) -> str:
        """The id of the one session whose id starts with ``prefix``."""
        prefix = prefix.strip()
        if not prefix:
            raise SessionNotFound("give a session id (facilitair sessions list shows them)")
        try:
            ev.check_id(prefix)
        except ValueError as exc:
            raise SessionNotFound(str(exc)) from None
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._read(
            "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY started_at DESC LIMIT 6",
            (escaped + "%",),
        )
        ids = [row[0] for row in rows if row[0].startswith(prefix)]  # LIKE ignores case
        if prefix in ids:
            return prefix
        if not ids:
            raise SessionNotFound(
                f"no session id starts with {prefix!r} (facilitair sessions list shows them)"
            )
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
            raise StoreError(f"{prefix!r} matches several sessions ({shown}); give more of the id")
        return str(ids[0])

    def load(self, session_id: str) -> StoredSession:
        summary = self.summary(session_id)
        rows = self._read(
            "SELECT s.context, s.strategy, s.models, s.spec, s.output, s.pid, w.definition"
            " FROM sessions s LEFT JOIN workflows w ON w.id = s.workflow_id WHERE s.id = ?",
            (session_id,),
        )
        context, strategy, models, spec, output, pid, definition = rows[0]
        workflow = None
        if definition is not None:
            with contextlib.suppress(ValidationError, ValueError):
                workflow = Workflow.model_validate_json(definition)
        syntheses = [
            ev.Synthesis(
                session_id=session_id,
                chunk=chunk,
                agreed=json.loads(agreed),
                debated=msgspec.json.decode(debated, type=list[ev.DebatedPoint]),
                confidence=confidence,
                text=text,
                parsed=bool(parsed),
                confidence_parts=None
                if parts is None
                else msgspec.json.decode(parts, type=ev.ConfidenceParts),
            )
            for chunk, agreed, debated, confidence, text, parsed, parts in self._read(
                "SELECT chunk, agreed, debated, confidence, text, parsed, confidence_parts FROM syntheses"
                " WHERE session_id = ? ORDER BY chunk",
                (session_id,),
            )
        ]
        # Only the unbroken run 1..N counts as finished chunks.
        finished = [s for number, s in enumerate(syntheses, start=1) if s.chunk == number]
        feedback = [
            ev.Feedback(session_id=session_id, seq=seq, t=t, chunk=chunk, applies_to=applies_to, text=text)
            for seq, t, chunk, applies_to, text in self._read(
                "SELECT seq, t, chunk, applies_to, text FROM feedback WHERE session_id = ? ORDER BY seq",
                (session_id,),
            )
        ]
        return StoredSession(
            summary=summary,
            context=json.loads(context),
            strategy=strategy,
            models=json.loads(models),
            spec=json.loads(spec),
            workflow=workflow,
            syntheses=finished,
            feedback=feedback,
            output=output or "",
            pid=pid,
        )

    def executions(self, session_id: str) -> ExecutionRows:
        """Each agent execution of a session: chunk, agent, model, status, tokens, latency, cost."""
        rows = self._read(
            "SELECT chunk, agent, model, status, input_tokens, output_tokens, latency_ms, cost_usd,"
            f" (SELECT coalesce(sum(length(k.events)), 0) / {PACKED_BYTES} FROM token_log k"
            " WHERE k.execution_id = e.id)"
            " FROM agent_executions e WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        keys = (
            "chunk",
            "agent",
            "model",
            "status",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "cost_usd",
        )
        return [{**dict(zip(keys, row[:-1], strict=True)), "token_events": row[-1]} for row in rows]

    def finished(self, session_id: str) -> ev.SessionFinished | None:
        """The session's ``session_finished`` event, if it has one (without reading its tokens)."""
        rows = self._read(
            "SELECT body FROM events WHERE session_id = ? AND type = 'session_finished'", (session_id,)
        )
        event = ev.from_json(rows[0][0]) if rows else None
        return event if isinstance(event, ev.SessionFinished) else None

    def chunks(self, session_id: str) -> ChunkRows:
        """(number, title, status) of each chunk the session started."""
        rows = self._read(
            "SELECT chunk, title, status FROM chunks WHERE session_id = ? ORDER BY chunk", (session_id,)
        )
        return [(chunk, title, status) for chunk, title, status in rows]

    def partial_text(self, session_id: str, chunk: int) -> dict[str, str]:
        """What each agent had streamed in ``chunk`` (its latest attempt), in the order they began."""
        rows = self._read(
            "SELECT e.agent, k.text FROM token_log k JOIN agent_executions e ON e.id = k.execution_id"
            " WHERE k.session_id = ? AND k.chunk = ? AND e.id IN"
            " (SELECT max(id) FROM agent_executions WHERE session_id = ? AND chunk = ? GROUP BY agent)"
            " ORDER BY e.id, k.seq",
            (session_id, chunk, session_id, chunk),
        )
        texts: dict[str, str] = {}
        for agent, text in rows:
            texts[agent] = texts.get(agent, "") + text
        return texts

    def delete(self, session_id: str) -> None:
        """Delete a session and everything recorded about it; its forks keep their own records."""
        summary = self.summary(session_id)
        if summary.status == "running":
            lock = self._try_lock(session_id)
            if lock is None:
                raise StoreError(f"session {session_id} is running; stop it before deleting it")
            self._unlock(session_id, lock, remove=True)
        self._write([("DELETE FROM sessions WHERE id = ?", (session_id,))])

    # ------------------------------------------------------------------ SQL on the caller's thread

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> Rows:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _failure(self.path, exc) from None

    def _write(self, statements: Statements) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _failure(self.path, exc) from None


_SUMMARY_COLUMNS = (
    "id, started_at, task, status, cost_usd, cost_unknown, last_t, chunks_done, chunks_total,"
    " workflow_id IS NOT NULL, parent_id, reused_chunks, change"
)


def _summary(row: tuple[Any, ...]) -> SessionSummary:
    (
        sid,
        started,
        task,
        status,
        cost,
        cost_unknown,
        last_t,
        done,
        total,
        has_workflow,
        parent,
        reused,
        change,
    ) = row
    status_: SessionStatus = status
    return SessionSummary(
        id=sid,
        started_at=datetime.fromtimestamp(started, UTC),
        task=task,
        status=status_,
        cost_usd=None if cost_unknown else (cost or 0.0),
        duration_s=last_t,
        chunks_done=done,
        chunks_total=total,
        # Even with every chunk done (killed before its end): resuming then finishes it.
        resumable=bool(has_workflow) and status in CONTINUABLE,
        parent_id=parent,
        reused_chunks=reused,
        change=change,
    )


class SessionRecorder:
    """Records one live session: an ``EventSink``. ``record`` only queues, except after the
    events in ``BARRIER_EVENTS`` (and the first), where it waits until they are safe, blocking
    its thread; ``record_async`` waits without blocking the event loop. Either way
    ``last_barrier`` says where the latest such event is, and ``problem`` says why, when it is
    not in the database."""

    def __init__(
        self,
        store: SessionStore,
        spec: SessionSpec | None,
        session_id: str,
        *,
        started_at: float | None = None,
    ) -> None:
        self.store = store
        self.spec = spec
        self.session_id = session_id
        self._started_at = started_at
        self._writer: Writer | None = None
        self._lock: IO[bytes] | None = None
        self._seq = 0
        self.last_barrier: BarrierResult | None = None  # None: no barrier yet
        self._late = False  # the latest barrier timed out without a failure to tell

    @property
    def problem(self) -> str | None:
        """Why the session's events are not (all) in the database; None when they are."""
        writer = self._writer
        if writer is None:
            return self.store.problem
        problem = writer.aside_problem(self.session_id) or writer.problem
        if problem is None and self._late:
            problem = (
                "saving the session is slow (the disk is busy?): what you see is not saved yet; "
                "it is kept and written as soon as the disk allows"
            )
        return problem

    def record(self, event: ev.Event) -> None:
        writer = self._put(event)
        if writer is not None:
            self._settle(writer, writer.barrier(self.session_id), event)

    async def record_async(self, event: ev.Event) -> None:
        """``record`` for a coroutine: a barrier is awaited, the event loop runs on meanwhile."""
        writer = self._put(event)
        if writer is not None:
            self._settle(writer, await writer.barrier_async(self.session_id), event)

    def _put(self, event: ev.Event) -> Writer | None:
        """Queue the event; the writer when the event must be safe before it is shown."""
        writer = self._writer
        first = writer is None
        if writer is None:
            if not isinstance(event, ev.SessionStarted):
                raise ValueError("a session's recording starts with its session_started event")
            writer = self._begin(event)
        if event.seq <= self._seq:  # a recording made without sequence numbers
            event = msgspec.structs.replace(event, seq=self._seq + 1)
        self._seq = event.seq
        writer.put(event)
        if type(event) is ev.Token:  # most events: no barrier, no end
            return None
        # The first event shows the session's id: once shown, the session must be in the store.
        return writer if first or isinstance(event, BARRIER_EVENTS) else None

    def _settle(self, writer: Writer, result: BarrierResult, event: ev.Event | None) -> None:
        self.last_barrier = result
        self._late = result is BarrierResult.IN_MEMORY and writer.problem is None
        if isinstance(event, ev.SessionFinished):
            # Its barrier above wrote it, or says where it is: the recording is over either way.
            self._release()

    def append_to_stored(self) -> None:
        """Record the rest of a session already in the store (no new session row)."""
        self._writer = self.store._writer_started()

    def _begin(self, started: ev.SessionStarted) -> Writer:
        store, spec = self.store, self.spec
        if store.exists(self.session_id):
            raise StoreError(f"a session with id {self.session_id} is already recorded")
        self._lock = store._try_lock(self.session_id)
        if self._lock is None:
            raise StoreError(f"session {self.session_id} is already being recorded by another process")
        definition = spec.workflow.model_dump_json() if spec is not None else None
        writer = self._writer = store._writer_started()
        writer.put(
            Begin(
                session_id=self.session_id,
                task=started.task,
                context=dict(started.context),
                strategy=started.strategy,
                models=dict(started.models),
                spec=spec_record(spec) if spec is not None else {},
                workflow_name=started.workflow,
                workflow_definition=definition,
                chunks_total=len(started.chunks),
                started_at=self._started_at if self._started_at is not None else time.time() - started.t,
                pid=os.getpid(),
                parent_id=started.parent_id,
                reused_chunks=started.reused_chunks,
                change=started.change,
            )
        )
        return writer

    def close(self) -> None:
        """The recording ends here (without session_finished, e.g. an import or a cut): commit
        what is queued and release the session's lock."""
        if self._writer is not None:
            self._settle(self._writer, self._writer.barrier(self.session_id), None)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self.store._unlock(self.session_id, self._lock, remove=True)
            self._lock = None


def spec_record(spec: SessionSpec) -> dict[str, Any]:
    """What continuing a session needs from its spec, besides the task, context and workflow."""
    return {
        "strategy": spec.strategy,
        "model_override": str(spec.model_override) if spec.model_override else None,
        "max_tokens": spec.max_tokens,
        "read_after_tokens": spec.read_after_tokens,
        "fallbacks": {name: [str(ref) for ref in refs] for name, refs in spec.fallbacks.items()},
    }
