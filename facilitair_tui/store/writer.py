"""The store's writer: one thread that turns events into rows, a batch per transaction.

A live session hands each event to ``Writer.put`` (a deque append, nothing more, on the event
loop's thread). The writer thread takes what has queued and commits it as one transaction at most
``WINDOW_S`` after the batch's first event, so a crash (kill -9 included) loses at most the last
~``WINDOW_S`` of tokens. Some events must never be lost once the user has seen them: the caller
waits on a ``barrier`` after them (``barrier_async`` from an event loop, which it does not block),
which commits the session's events at once and says where they are (``BarrierResult``).

The thread sleeps through the window: ``put`` wakes it only for a batch's first item, and a barrier
or the close wake it at once. It never wakes per event: a wakeup per token cost the writer about
40% more CPU and three times the context switches (bench/session_store.py measures the store).

A write that fails for a passing reason (the database locked by another program for longer than
the busy timeout, a full disk, an I/O error) is kept and retried with the next batch; ``problem``
says what went wrong until a write succeeds again, and barriers meanwhile report ``IN_MEMORY``
without waiting. Any other failure belongs to one session (a duplicate id, a row the schema
refuses, text SQLite cannot take): the batch is written session by session, and a session that
still fails is set aside while the others go on being written. A set-aside session's events, all
of them (what the database already has of it too, so the file stands alone), go at once to its
unsaved file beside the database (``unsaved.py``), and every later event of it follows there: its
barriers report ``SET_ASIDE``, and ``aside_problem`` says where the file is. Nothing is dropped
while the process lives; at ``close`` whatever is only in memory (still retried, or a set-aside
session whose file could not be written) is handed back (``Writer.unwritten``) for the caller to
keep elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import heapq
import json
import sqlite3
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from facilitair_tui.core import events as ev

from .unsaved import append_events, unsaved_path

# The longest a queued event waits before it is committed.
WINDOW_S = 0.05
# Events the user has seen as a finished step, or has typed: the caller waits until they are
# committed (a completed chunk is never lost).
BARRIER_EVENTS: tuple[type[ev.Event], ...] = (
    ev.Synthesis,
    ev.SessionFinished,
    ev.Feedback,
    ev.BudgetDecision,
)
# How long a barrier waits for its commit before the session goes on regardless (the write goes
# on; the barrier reports ``IN_MEMORY``).
BARRIER_TIMEOUT_S = 10.0
RETRY_S = 0.5
# Bytes per token event in ``token_log.events``: seq (int64), t (float64), length and deltas (int32).
PACKED_BYTES = 8 + 8 + 4 + 4
# How long ``close`` waits for the writer to finish. Its worst case is a retry pause, a window and
# one last commit that waits the whole busy timeout (about 5.6 s); only a hung disk takes longer.
CLOSE_TIMEOUT_S = 30.0


@dataclass
class Begin:
    """A new session's row: everything known before its first event is written."""

    session_id: str
    task: str
    context: dict[str, str]
    strategy: str
    models: dict[str, str]
    spec: dict[str, object]
    workflow_name: str
    workflow_definition: str | None  # None: not known (an imported recording)
    chunks_total: int
    started_at: float
    pid: int
    parent_id: str | None = None
    reused_chunks: int = 0
    change: str = ""


class BarrierResult(enum.Enum):
    """Where a session's events put before a barrier are when the barrier returns."""

    COMMITTED = "committed"  # in the database
    # The database will not take the session (a row it refuses, text it cannot hold): its events
    # are in its unsaved file, which a crash does not take either (``Writer.aside_problem``).
    SET_ASIDE = "set aside"
    # Only in this process's memory, for now: a passing failure (a lock, a full disk) is being
    # retried, the commit takes longer than the barrier waits, or a set-aside session's file could
    # not be written. A kill -9 would lose them; ``close`` hands back what is still unwritten.
    IN_MEMORY = "in memory"


@dataclass(eq=False)
class _Barrier:
    session_id: str
    done: threading.Event = field(default_factory=threading.Event)
    result: BarrierResult = BarrierResult.IN_MEMORY  # set before ``done``
    # The waiting event loop's future (``barrier_async``), resolved from the writer's thread.
    future: asyncio.Future[BarrierResult] | None = None

    def release(self, result: BarrierResult) -> None:
        """Let the waiter go on. A barrier released ``IN_MEMORY`` stays with its retried items
        and is released again, ``COMMITTED``, when they are written."""
        self.result = result
        self.done.set()
        future, self.future = self.future, None
        if future is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
                future.get_loop().call_soon_threadsafe(_resolve, future, result)


def _resolve(future: asyncio.Future[BarrierResult], result: BarrierResult) -> None:
    if not future.done():  # not cancelled (the waiter timed out or was cancelled)
        future.set_result(result)


@dataclass
class _Aside:
    """A session the database will not take, and where its events go instead."""

    reason: str  # why the database refused it
    file: Path  # its unsaved file
    file_error: str | None = None  # set when the file could not be written: its events stay in memory


_CLOSE = object()
Item = ev.Event | Begin | _Barrier


class Writer:
    def __init__(self, connect: Callable[[], sqlite3.Connection], unsaved_dir: Path) -> None:
        self._connect = connect
        self._unsaved_dir = unsaved_dir  # where a set-aside session's unsaved file goes
        self._queue: deque[Item | object] = deque()
        self._wake = threading.Event()
        self._idle = False  # the thread waits for a batch's first item: ``put`` must wake it
        self._urgent = False  # a barrier or the close marker is queued: no waiting for the window
        self._pending: list[Item] = []  # taken from the queue, not yet committed
        # The open agent execution of (session, chunk, agent): tokens are tied to it.
        self._executions: dict[tuple[str, int, str], int] = {}
        self.problem: str | None = None  # why a passing failure keeps the events out, while it does
        # A passing failure (a lock, a full disk) is being retried: a barrier would only wait
        # through the retries, so barriers meanwhile return at once.
        self.retrying = False
        self.unwritten: list[ev.Event] = []
        self._aside: dict[str, _Aside] = {}  # sessions whose rows cannot be written
        self._thread = threading.Thread(target=self._run, name="session-store-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ callers' side

    def put(self, item: Item) -> None:
        self._queue.append(item)
        if self._idle:
            self._wake.set()

    def _put_urgent(self, item: _Barrier | object) -> None:
        self._queue.append(item)
        self._urgent = True
        self._wake.set()

    def barrier(self, session_id: str, timeout: float = BARRIER_TIMEOUT_S) -> BarrierResult:
        """Wait until the session's events put so far are written; say where they are. Blocks the
        calling thread: from an event loop, use ``barrier_async``."""
        marker = self._barrier(session_id)
        if marker is None:
            return BarrierResult.IN_MEMORY
        marker.done.wait(timeout)
        return marker.result

    async def barrier_async(self, session_id: str) -> BarrierResult:
        """``barrier`` for a coroutine: the event loop runs on while the commit is waited for
        (the writer's thread resolves a future on the loop)."""
        future: asyncio.Future[BarrierResult] = asyncio.get_running_loop().create_future()
        marker = self._barrier(session_id, future)
        if marker is None:
            return BarrierResult.IN_MEMORY
        try:
            async with asyncio.timeout(BARRIER_TIMEOUT_S):
                return await future
        except TimeoutError:
            return marker.result

    def _barrier(
        self, session_id: str, future: asyncio.Future[BarrierResult] | None = None
    ) -> _Barrier | None:
        """Queue a barrier; None when waiting is pointless (the thread is gone, or a passing
        failure is retried: the wait would last through the retries)."""
        if self.retrying or not self._thread.is_alive():
            return None
        marker = _Barrier(session_id, future=future)
        self._put_urgent(marker)
        return marker

    def aside_problem(self, session_id: str) -> str | None:
        """Why the session is not in the database and where its events are; None while it is."""
        aside = self._aside.get(session_id)
        if aside is None:
            return None
        if aside.file_error is None:
            return (
                f"session {session_id} cannot be saved in the session database ({aside.reason}); its "
                f"events are kept in {aside.file} instead (facilitair sessions import {aside.file})"
            )
        return (
            f"session {session_id} cannot be saved in the session database ({aside.reason}), nor in "
            f"{aside.file} ({aside.file_error}); its events are kept in memory until the program ends"
        )

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> list[ev.Event]:
        """Commit what is queued, stop the thread; return the events that are only in memory."""
        if self._thread.is_alive():
            self._put_urgent(_CLOSE)
            self._thread.join(timeout)
        if not self._thread.is_alive():  # what was put after it stopped (it could not connect)
            self._drain_unwritten()
        return self.unwritten

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            self.problem = f"the session database could not be opened for writing: {exc}"
            self._drain_unwritten()
            return
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        closing = False
        while True:
            if not self.retrying:
                closing = self._collect(block=not self._pending) or closing
            else:  # a failed write waits a little, taking what queued meanwhile
                time.sleep(RETRY_S)
                closing = self._collect(block=False) or closing
            if self._pending:
                self._commit(conn)  # when closing, the last try
            if closing:  # hand back what could not be written
                self._drain_unwritten()
                return

    def _collect(self, *, block: bool) -> bool:
        """Move queued items to ``_pending``: a window's worth after the first (with ``block``, once
        there is one), or at once when a barrier or the close marker comes. True when the close
        marker was met."""
        queued, wake = self._queue, self._wake
        if block:
            while not queued:
                self._idle = True
                if queued:  # put() appended before it could see _idle
                    break
                wake.wait()
                wake.clear()
            self._idle = False
        deadline = time.monotonic() + WINDOW_S
        while not self._urgent:  # sleep through the window; only an urgent item wakes us
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wake.wait(remaining)
            wake.clear()
        self._urgent = False  # before taking: an urgent item queued after this is taken now or next time
        closing = False
        pending = self._pending
        while queued:
            item = queued.popleft()
            if item is _CLOSE:
                closing = True
            else:
                pending.append(item)  # type: ignore[arg-type]
        return closing

    def _commit(self, conn: sqlite3.Connection) -> None:
        batch = self._keep_aside(self._pending) if self._aside else self._pending
        if not batch:  # all of it went to unsaved files
            self._pending, self.retrying, self.problem = [], False, None
            return
        try:
            self._transaction(conn, batch)
        except Exception as exc:  # any failure: a passing one is retried, else its session set aside
            if _passing(exc):
                self._pending = batch
                self._behind(exc, batch)
                return
            self._pending = self._commit_each_session(conn, batch)
        else:
            self._pending = []
            _release(batch, BarrierResult.COMMITTED)
        self.retrying = bool(self._pending)
        if not self.retrying:
            self.problem = None

    def _behind(self, exc: Exception, items: list[Item]) -> None:
        """A passing failure keeps ``items`` out: they are retried."""
        self.problem = _explain(exc)  # before the barriers are released: their waiters read it
        self.retrying = True
        _release(items, BarrierResult.IN_MEMORY)  # the waiters go on now, not through every retry

    def _transaction(self, conn: sqlite3.Connection, items: list[Item]) -> None:
        """One transaction; raises what failed (sqlite3.Error, or e.g. UnicodeEncodeError for text
        SQLite cannot take, such as a lone surrogate a server sent)."""
        executions = dict(self._executions)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _Apply(conn, self._executions).batch(items)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except BaseException:
            self._executions = executions  # the rolled-back rows' ids are not real
            raise

    def _commit_each_session(self, conn: sqlite3.Connection, batch: list[Item]) -> list[Item]:
        """A batch failed for a reason that will not pass: write it session by session, and set
        aside the sessions that still fail. Returns what a passing failure (a lock taken
        meanwhile) keeps out, to be retried."""
        by_session: dict[str, list[Item]] = {}
        for item in batch:
            by_session.setdefault(item.session_id, []).append(item)
        kept: list[Item] = []
        for sid, items in by_session.items():
            if kept:  # the lock or the full disk holds for the rest too: no wait for each
                kept.extend(items)
                _release(items, BarrierResult.IN_MEMORY)
                continue
            try:
                self._transaction(conn, items)
            except Exception as exc:
                if _passing(exc):
                    kept.extend(items)
                    self._behind(exc, items)
                else:
                    self._set_aside(conn, sid, items, exc)
            else:
                _release(items, BarrierResult.COMMITTED)
        return kept

    def _set_aside(self, conn: sqlite3.Connection, sid: str, items: list[Item], exc: Exception) -> None:
        """The database will not take the session: from now on its events go to its unsaved file,
        starting with all of them so far."""
        earlier: list[ev.Event] = []
        # With its row among the failed items, what the database holds under its id (if anything)
        # is another session's; without, the database has the start of this one. Should that not
        # be readable, the file starts where the database stops.
        if not any(isinstance(item, Begin) for item in items):
            with contextlib.suppress(sqlite3.Error, ValueError):
                earlier = stored_events(conn, sid)
        self._aside[sid] = _Aside(str(exc) or type(exc).__name__, unsaved_path(self._unsaved_dir, sid))
        for key in [key for key in self._executions if key[0] == sid]:
            del self._executions[key]
        self._keep(sid, earlier, items)

    def _keep_aside(self, items: list[Item]) -> list[Item]:
        """Move the items of the sessions set aside to their files; return the others."""
        rest: list[Item] = []
        aside: dict[str, list[Item]] = {}
        for item in items:
            if item.session_id in self._aside:
                aside.setdefault(item.session_id, []).append(item)
            else:
                rest.append(item)
        for sid, kept in aside.items():
            self._keep(sid, [], kept)
        return rest

    def _keep(self, sid: str, earlier: list[ev.Event], items: list[Item]) -> None:
        """Append a set-aside session's events to its file (to memory if that fails), then release
        its barriers: the user may see what they cover once it is there."""
        aside = self._aside[sid]
        events = [*earlier, *(item for item in items if isinstance(item, ev.Event))]
        if aside.file_error is None and events:
            try:
                append_events(aside.file, events)
            except Exception as exc:  # a full disk, no permission; the thread must go on either way
                aside.file_error = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        if aside.file_error is None:
            _release(items, BarrierResult.SET_ASIDE)
        else:  # from the failed write on, so that the file and then memory hold the session in order
            self.unwritten.extend(item for item in items if isinstance(item, ev.Event))
            _release(items, BarrierResult.IN_MEMORY)

    def _drain_unwritten(self) -> None:
        """The thread stops: what is left goes to the set-aside sessions' files or to ``unwritten``."""
        items: list[Item] = list(self._pending)
        self._pending = []
        with contextlib.suppress(IndexError):
            while True:
                item = self._queue.popleft()
                if item is not _CLOSE:
                    items.append(item)  # type: ignore[arg-type]
        if self._aside:
            items = self._keep_aside(items)
        self.unwritten.extend(item for item in items if isinstance(item, ev.Event))
        _release(items, BarrierResult.IN_MEMORY)


def _release(items: list[Item], result: BarrierResult) -> None:
    for item in items:
        if type(item) is _Barrier:
            item.release(result)


def _passing(exc: Exception) -> bool:
    """A failure that may go away by itself: another program holds the lock, the disk is full."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in text for word in ("locked", "busy", "full", "disk i/o")
    )


def _explain(exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the session database is locked by another program; the events are kept and retried"
    if "full" in text:
        return "the disk is full; the session's events are kept in memory and retried"
    return f"the session could not be saved ({text}); the events are kept and retried"


def stored_events(conn: sqlite3.Connection, session_id: str) -> list[ev.Event]:
    """A session's events as the database holds them, in their order. Raises sqlite3.Error."""
    others = conn.execute(
        "SELECT body FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
    ).fetchall()
    tokens = [
        token
        for row in conn.execute("SELECT * FROM token_log WHERE session_id = ?", (session_id,)).fetchall()
        for token in token_events(row)
    ]
    tokens.sort(key=lambda token: token.seq)  # runs of different agents interleave
    merged = heapq.merge((ev.from_json(body) for (body,) in others), tokens, key=lambda event: event.seq)
    return list(merged)


class _TokenRun:
    """One agent execution's token events in one batch: one ``token_log`` row."""

    __slots__ = ("deltas", "execution", "seqs", "texts", "times")

    def __init__(self, execution: int | None) -> None:
        self.execution = execution
        self.seqs: array[int] = array("q")
        self.times: array[float] = array("d")
        self.texts: list[str] = []
        self.deltas: array[int] = array("i")

    def row(self, sid: str, chunk: int, agent: str) -> tuple[object, ...]:
        texts = self.texts
        lengths = array("i", map(len, texts))
        events = self.seqs.tobytes() + self.times.tobytes() + lengths.tobytes() + self.deltas.tobytes()
        seqs = self.seqs
        return (sid, seqs[0], seqs[-1], self.execution, chunk, agent, self.times[0], "".join(texts), events)


def token_events(row: tuple[Any, ...]) -> list[ev.Token]:
    """The token events a ``token_log`` row holds (``session_id, seq, last_seq, execution_id, chunk,
    agent, t, text, events``), exactly as they were recorded."""
    sid, _, _, _, chunk, agent, _, text, packed = row
    n = len(packed) // PACKED_BYTES
    seqs, times, lengths, deltas = array("q"), array("d"), array("i"), array("i")
    offset = 0
    for column in (seqs, times, lengths, deltas):
        size = n * column.itemsize
        column.frombytes(packed[offset : offset + size])
        offset += size
    tokens, start = [], 0
    for seq, t, length, count in zip(seqs, times, lengths, deltas, strict=True):
        piece = text[start : start + length]
        start += length
        tokens.append(
            ev.Token(session_id=sid, seq=seq, t=t, agent=agent, chunk=chunk, text=piece, deltas=count)
        )
    return tokens


class _Apply:
    """Writes one batch's rows inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection, executions: dict[tuple[str, int, str], int]) -> None:
        self.conn = conn
        self.executions = executions
        self.events: list[tuple[object, ...]] = []
        self.last: dict[str, float] = {}  # session -> its latest event's t in this batch

    def batch(self, items: list[Item]) -> None:
        # Token events, most of what streams, become one row per agent execution and batch: SQLite
        # then writes a few rows a batch instead of one per event (a row costs as much as the
        # engine's own work per delta).
        runs: dict[tuple[str, int, str, int | None], _TokenRun] = {}
        executions, last = self.executions, self.last  # ``event`` updates them in place
        for item in items:
            if type(item) is ev.Token:
                sid, chunk, agent = item.session_id, item.chunk, item.agent
                execution = executions.get((sid, chunk, agent))
                run = runs.get((sid, chunk, agent, execution))
                if run is None:
                    run = runs[sid, chunk, agent, execution] = _TokenRun(execution)
                run.seqs.append(item.seq)
                run.times.append(item.t)
                run.texts.append(item.text)
                run.deltas.append(item.deltas)
                last[sid] = item.t
            elif isinstance(item, ev.Event):
                self.event(item)
            elif isinstance(item, Begin):
                self.begin(item)
        conn = self.conn
        if runs:
            conn.executemany(
                "INSERT OR REPLACE INTO token_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run.row(sid, chunk, agent) for (sid, chunk, agent, _), run in runs.items()],
            )
        if self.events:
            conn.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?)", self.events)
        now = time.time()
        for sid, t in self.last.items():
            conn.execute(
                "UPDATE sessions SET last_t = max(last_t, ?), updated_at = ? WHERE id = ?", (t, now, sid)
            )

    def begin(self, b: Begin) -> None:
        conn = self.conn
        workflow_id = None
        if b.workflow_definition is not None:
            digest = hashlib.sha256(b.workflow_definition.encode()).hexdigest()
            conn.execute(
                "INSERT OR IGNORE INTO workflows (name, digest, definition, created_at) VALUES (?, ?, ?, ?)",
                (b.workflow_name, digest, b.workflow_definition, b.started_at),
            )
            (workflow_id,) = conn.execute("SELECT id FROM workflows WHERE digest = ?", (digest,)).fetchone()
        conn.execute(
            "INSERT INTO sessions (id, workflow_id, task, context, strategy, models, spec, status,"
            " started_at, updated_at, chunks_total, pid, parent_id, reused_chunks, change)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (
                b.session_id,
                workflow_id,
                b.task,
                _json(b.context),
                b.strategy,
                _json(b.models),
                _json(b.spec),
                b.started_at,
                b.started_at,
                b.chunks_total,
                b.pid,
                b.parent_id,
                b.reused_chunks,
                b.change,
            ),
        )

    def event(self, e: ev.Event) -> None:
        sid = e.session_id
        self.events.append((sid, e.seq, ev.event_type(type(e)), e.t, ev.to_json(e)))
        self.last[sid] = e.t
        conn = self.conn
        if isinstance(e, ev.ChunkStarted):
            conn.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, 'running', ?, NULL)",
                (sid, e.chunk, e.title, e.t),
            )
        elif isinstance(e, ev.AgentStarted):
            cursor = conn.execute(
                "INSERT INTO agent_executions (session_id, chunk, agent, model, reads, status, started_t)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (sid, e.chunk, e.agent, e.model, _json(e.reads), e.t),
            )
            assert cursor.lastrowid is not None
            self.executions[(sid, e.chunk, e.agent)] = cursor.lastrowid
        elif isinstance(e, ev.AgentFinished):
            execution = self.executions.pop((sid, e.chunk, e.agent), None)
            conn.execute(
                "UPDATE agent_executions SET status = ?, finished_t = ?, input_tokens = ?, output_tokens = ?,"
                " latency_ms = ?, cost_usd = ?, usage_estimated = ? WHERE id = ?",
                (
                    e.status,
                    e.t,
                    e.input_tokens,
                    e.output_tokens,
                    e.latency_ms,
                    e.cost_usd,
                    e.usage_estimated,
                    execution,
                ),
            )
            conn.execute(
                "UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,"
                " cost_usd = coalesce(cost_usd, 0) + coalesce(?, 0),"
                " cost_unknown = cost_unknown OR ? WHERE id = ?",
                (e.input_tokens, e.output_tokens, e.cost_usd, e.cost_usd is None, sid),
            )
        elif isinstance(e, ev.Synthesis):
            conn.execute(
                "INSERT OR REPLACE INTO syntheses"
                " (session_id, chunk, agreed, debated, confidence, text, parsed, confidence_parts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    e.chunk,
                    _json(e.agreed),
                    msgspec.json.encode(e.debated).decode(),
                    e.confidence,
                    e.text,
                    e.parsed,
                    None if e.confidence_parts is None else msgspec.json.encode(e.confidence_parts).decode(),
                ),
            )
            conn.execute(
                "UPDATE chunks SET status = 'done', finished_t = ? WHERE session_id = ? AND chunk = ?",
                (e.t, sid, e.chunk),
            )
            conn.execute(
                "UPDATE sessions SET chunks_done = (SELECT count(*) FROM syntheses WHERE session_id = ?)"
                " WHERE id = ?",
                (sid, sid),
            )
        elif isinstance(e, ev.Feedback):
            conn.execute(
                "INSERT INTO feedback (session_id, seq, chunk, applies_to, text, t)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sid, e.seq, e.chunk, e.applies_to, e.text, e.t),
            )
        elif isinstance(e, ev.CacheChecked):
            conn.execute(
                "INSERT OR REPLACE INTO cache_hits VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, e.hit, e.entry_id, e.similarity, e.matched_on, e.saved_usd, e.saved_s, e.age_s),
            )
        elif isinstance(e, ev.BudgetDecision) and e.models:
            conn.execute(
                "UPDATE sessions SET models = json_patch(models, ?) WHERE id = ?", (_json(e.models), sid)
            )
        elif isinstance(e, ev.SessionFinished):
            self.last.pop(sid, None)  # its duration is the session's time, set here
            conn.execute(
                "UPDATE sessions SET status = ?, ended_at = ?, output = ?, input_tokens = ?,"
                " output_tokens = ?, cost_usd = ?, cost_unknown = ?, from_cache = ?, last_t = ? WHERE id = ?",
                (
                    e.status,
                    time.time(),
                    e.output,
                    e.input_tokens,
                    e.output_tokens,
                    e.cost_usd,
                    e.cost_usd is None,
                    e.from_cache,
                    e.duration_s,
                    sid,
                ),
            )
            conn.execute(
                "UPDATE chunks SET status = 'interrupted' WHERE session_id = ? AND status = 'running'", (sid,)
            )
            for key in [k for k in self.executions if k[0] == sid]:
                del self.executions[key]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
