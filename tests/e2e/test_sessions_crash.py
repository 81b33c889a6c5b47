"""End to end: ``kill -9`` a running ``facilitair collaborate`` at many moments, then recover and resume.

A real ``facilitair collaborate --json`` process streams from a local server speaking OpenAI's
streaming format (a few milliseconds between deltas, so a session lasts a few seconds) and is
killed with SIGKILL at moments drawn from a seeded generator: before it has shown anything, just
after ``session_started``, just after a chunk's ``synthesis``, after a random number of printed
events (mostly mid-chunk, among the tokens) and after a random time. Every kill uses the same
FACILITAIR_HOME, so the database ends up holding several interrupted sessions.

After each kill:

* the database exactly as the crash left it (copied aside before anything opens it) passes
  ``PRAGMA integrity_check`` and, once ``session_started`` was shown, holds the session;
* ``facilitair sessions list --json`` (which recovers) shows the session ``interrupted``, with
  nothing of it left ``running``, and no other session changed;
* read-only, the database passes ``integrity_check`` and ``foreign_key_check``; what it holds of
  the session is an unbroken prefix of the events by sequence number, and every event printed
  that is stored is stored as printed; every event the user must never lose (a synthesis...)
  that was printed is stored; every chunk whose synthesis was printed has its syntheses row and,
  for each agent, the same tokens as were printed; every chunk with a syntheses row has tokens
  for each of its agent executions.

Then one session for each number of finished chunks the kills left (none to all four: killed
after the last synthesis, before the end) is resumed by an id prefix: each resume finishes
``done``, says its parent and how many chunks it reused, replays those as recorded and asks the
server only about the chunks that had not finished.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.store.writer import token_events
from tests.conftest import CLI_TIMEOUT_S, run_cli
from tests.support.openai_sse_server import OpenAISSEServer, Script
from tests.support.team_session import stage_prompt

pytestmark = pytest.mark.e2e

KEY = "sk-test-crash-0123456789abcdef"
TASK = "Add cursor-based pagination to the orders endpoint"
_MERGED = "Cursor pagination over the orders table, keyed by id, with an opaque next token."
# Parsable by the synthesizer (AGREED / CONFIDENCE / MERGED), in 30 small deltas.
_WORDS = [word + " " for word in f"{_MERGED} {_MERGED}".split()]
DELTAS = ["AGREED:\n- ", "paginate with cursors", "\nCONFIDENCE: 0.7\nMERGED:\n", *_WORDS[:27]]
DELAY_S = 0.008  # between two deltas: a session then lasts a few seconds
CHUNKS = 4  # the default workflow: four chunks ...
CALLS_PER_CHUNK = 4  # ... each run by three roles and the synthesizer
SEED = 20250611
# Events the user must never lose once shown: the caller waits until they are committed.
BARRIER_TYPES = {"synthesis", "session_finished", "feedback", "budget_decision"}


@dataclass(frozen=True)
class Moment:
    """When to kill: ``delay_s`` after the start, or as soon as ``trigger(n, event)`` holds for
    the n-th event printed."""

    label: str
    delay_s: float | None = None
    trigger: Callable[[int, dict[str, Any]], bool] | None = None


def after_time(delay_s: float) -> Moment:
    return Moment(f"{delay_s:.3f} s after the start", delay_s=delay_s)


def after_event_number(n: int) -> Moment:
    return Moment(f"after printed event #{n}", trigger=lambda count, _event: count >= n)


def after_synthesis(chunk: int) -> Moment:
    return Moment(
        f"after chunk {chunk}'s synthesis",
        trigger=lambda _count, event: event["type"] == "synthesis" and event["chunk"] == chunk,
    )


def kill_moments(rng: random.Random) -> list[Moment]:
    # The first kill lands in a fresh home: possibly while the database is being created.
    first = after_time(rng.uniform(0.0, 0.15))
    others = [
        after_time(rng.uniform(0.15, 0.45)),  # around the session's start
        after_event_number(1),  # just after session_started was shown
        after_synthesis(rng.randint(1, 3)),
        after_synthesis(CHUNKS),  # every chunk done, the session not finished
        # Mid-chunk: a full run prints about 520 events, most of them tokens (fewer when a lagging
        # reader gets several deltas as one token event).
        *(after_event_number(rng.randint(3, 400)) for _ in range(3)),
        *(after_time(rng.uniform(0.5, 4.0)) for _ in range(2)),
    ]
    rng.shuffle(others)
    return [first, *others]


@dataclass
class Killed:
    moment: str
    shown: list[dict[str, Any]]  # the events the process printed before it died
    returncode: int
    stderr: str
    crashed_copy: Path | None  # the database files as the crash left them

    @property
    def session_id(self) -> str | None:
        started = [e for e in self.shown if e["type"] == "session_started"]
        return str(started[0]["session_id"]) if started else None


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer(max_lifetime_s=600.0) as srv:
        srv.script = Script(deltas=DELTAS, prompt_tokens=100, completion_tokens=len(DELTAS), delay_s=DELAY_S)
        yield srv


def server_env(server: OpenAISSEServer) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url}


def sessions_dir(home: Path) -> Path:
    return home / "data" / "sessions"


def run_and_kill(home: Path, server: OpenAISSEServer, moment: Moment, scratch: Path) -> Killed:
    """Run ``facilitair collaborate --json`` and SIGKILL it at ``moment``."""
    env = {**os.environ, "FACILITAIR_HOME": str(home), **server_env(server)}
    command = [
        sys.executable,
        "-m",
        "facilitair_tui.cli.main",
        "collaborate",
        "--model",
        "openai:gpt-4o-mini",
    ]
    stderr_path = scratch / "stderr.txt"
    shown: list[dict[str, Any]] = []
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [*command, "--no-cache", "--json", TASK],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdout is not None

    def kill() -> None:
        # The process is not reaped before reader.join(): its pid cannot have been reused.
        os.kill(proc.pid, signal.SIGKILL)

    def read() -> None:
        assert proc.stdout is not None
        killed = False
        for line in proc.stdout:  # what was printed before the kill is still in the pipe
            if not line.endswith(b"\n"):
                break  # a line cut short was not shown
            event = json.loads(line)
            shown.append(event)
            if not killed and moment.trigger is not None and moment.trigger(len(shown), event):
                kill()
                killed = True

    reader = threading.Thread(target=read, name="collaborate-stdout", daemon=True)
    reader.start()
    if moment.delay_s is not None:
        time.sleep(moment.delay_s)  # only chooses the moment; nothing is asserted about time
        kill()
    reader.join(CLI_TIMEOUT_S)
    if reader.is_alive():
        kill()
        reader.join(10)
        pytest.fail(f"collaborate did not end ({moment.label})")
    returncode = proc.wait(CLI_TIMEOUT_S)
    proc.stdout.close()
    return Killed(
        moment.label,
        shown,
        returncode,
        stderr_path.read_text(errors="replace"),
        copy_crashed_database(home, scratch),
    )


def copy_crashed_database(home: Path, scratch: Path) -> Path | None:
    """The database and its WAL as the dead process left them (no -shm: SQLite rebuilds it)."""
    db = sessions_dir(home) / "sessions.db"
    if not db.exists():
        return None
    target = scratch / "crashed"
    target.mkdir()
    for suffix in ("", "-wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copyfile(source, target / source.name)
    return target / db.name


@contextmanager
def read_only(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def list_sessions(home: Path) -> dict[str, dict[str, Any]]:
    proc = run_cli("sessions", "list", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    return {s["id"]: s for s in json.loads(proc.stdout)}


def stored_events(conn: sqlite3.Connection, sid: str) -> dict[int, dict[str, Any]]:
    """The session's recorded events by seq: ``events`` rows as JSON, tokens rebuilt from ``token_log``."""
    stored: dict[int, dict[str, Any]] = {}
    for seq, kind, body in conn.execute("SELECT seq, type, body FROM events WHERE session_id = ?", (sid,)):
        event = json.loads(body)
        assert event["type"] == kind and event["seq"] == seq
        stored[seq] = event
    for row in conn.execute("SELECT * FROM token_log WHERE session_id = ?", (sid,)):
        for token in token_events(row):
            assert token.seq not in stored, f"seq {token.seq} is both an event and a token"
            stored[token.seq] = ev.to_dict(token)
    return stored


def agent_texts(events: list[dict[str, Any]], chunk: int) -> dict[str, str]:
    """What each agent streamed in ``chunk``, from token events."""
    texts: dict[str, str] = {}
    for e in events:
        if e["type"] == "token" and e["chunk"] == chunk:
            texts[e["agent"]] = texts.get(e["agent"], "") + e["text"]
    return texts


def check_recorded(db: Path, sid: str, shown: list[dict[str, Any]]) -> int:
    """Check what the store holds of session ``sid`` against the events that were printed;
    return how many syntheses it holds."""
    with read_only(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = stored_events(conn, sid)
        # Batches commit in order: what survived is the stream's beginning, without a gap.
        assert sorted(stored) == list(range(1, len(stored) + 1)), "the stored events have a gap"
        assert [e["seq"] for e in shown] == list(range(1, len(shown) + 1))
        for printed in shown:
            if printed["seq"] in stored:
                recorded = stored[printed["seq"]]
                assert recorded == {k: printed[k] for k in recorded}, f"event {printed['seq']} differs"
            else:
                assert printed["type"] not in BARRIER_TYPES, f"a printed {printed['type']} was lost"

        syntheses = dict(
            conn.execute("SELECT chunk, text FROM syntheses WHERE session_id = ?", (sid,)).fetchall()
        )
        printed_syntheses = {e["chunk"]: e["text"] for e in shown if e["type"] == "synthesis"}
        for chunk, text in printed_syntheses.items():
            assert syntheses.get(chunk) == text, f"chunk {chunk}'s synthesis was printed, not stored"
        # Every chunk with a synthesis: each agent that ran in it has its tokens, as printed.
        for chunk in syntheses:
            executions = conn.execute(
                "SELECT id, agent, status FROM agent_executions"
                " WHERE session_id = ? AND chunk = ? ORDER BY id",
                (sid, chunk),
            ).fetchall()
            by_execution: dict[int | None, str] = {}
            by_agent: dict[str, str] = {}
            tokens = conn.execute(
                "SELECT execution_id, agent, text FROM token_log"
                " WHERE session_id = ? AND chunk = ? ORDER BY seq",
                (sid, chunk),
            )
            for execution, agent, text in tokens:
                by_execution[execution] = by_execution.get(execution, "") + text
                by_agent[agent] = by_agent.get(agent, "") + text
            assert set(by_execution) == {execution for execution, *_ in executions}, (
                f"chunk {chunk}: an agent execution without tokens, or tokens without an execution"
            )
            for execution, agent, status in executions:
                assert status == "done", f"chunk {chunk} has a synthesis but {agent} is {status}"
                assert by_execution[execution], f"chunk {chunk}: no text recorded for {agent}"
            if chunk in printed_syntheses:
                ran = {e["agent"] for e in shown if e["type"] == "agent_started" and e["chunk"] == chunk}
                assert {agent for _, agent, _ in executions} == ran
                assert by_agent == agent_texts(shown, chunk), (
                    f"chunk {chunk}: the stored tokens are not what was printed"
                )
        (chunks_done,) = conn.execute("SELECT chunks_done FROM sessions WHERE id = ?", (sid,)).fetchone()
        assert chunks_done == len(syntheses)
        # The finished chunks are 1..N: a synthesis needs every chunk before it.
        assert sorted(syntheses) == list(range(1, len(syntheses) + 1))
        return len(syntheses)


def check_crashed_copy(copy: Path | None, sid: str | None) -> None:
    """The database as the kill left it, before any process recovered it: consistent; the
    session, if recorded, still marked running."""
    if copy is None:
        assert sid is None, "the session was shown started but there is no database"
        return
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        if sid is not None:  # it was shown started: it was recorded
            rows = conn.execute("SELECT status FROM sessions WHERE id = ?", (sid,)).fetchall()
            assert rows in ([("running",)], [("done",)])
    finally:
        conn.close()


def stage_of(request_body: Any, titles: list[str]) -> int:
    """Which chunk (1-based) a model request works on, from the message that names its stage."""
    prompt = stage_prompt(request_body)
    found = [
        number
        for number, title in enumerate(titles, start=1)
        if f"Current stage: {title}." in prompt or f"Stage to merge: {title}." in prompt
    ]
    assert len(found) == 1, f"cannot tell the chunk of a request: {found}"
    return found[0]


def test_kill_9_at_random_moments_loses_no_finished_chunk_and_resume_finishes(
    facilitair_home: Path, server: OpenAISSEServer, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    home = facilitair_home
    db = sessions_dir(home) / "sessions.db"
    known: dict[str, str] = {}  # session id -> status expected from now on
    interrupted: dict[str, int] = {}  # killed session -> syntheses stored
    titles: list[str] = []
    killed_mid_chunk = 0

    for number, moment in enumerate(kill_moments(rng)):
        scratch = tmp_path / f"kill-{number}"
        scratch.mkdir()
        run = run_and_kill(home, server, moment, scratch)
        where = f"kill {number} ({run.moment}, {len(run.shown)} events shown)"
        finished = [e for e in run.shown if e["type"] == "session_finished"]
        expected_codes = (0, -signal.SIGKILL) if finished else (-signal.SIGKILL,)
        assert run.returncode in expected_codes, f"{where}: {run.stderr}"
        check_crashed_copy(run.crashed_copy, run.session_id)

        listed = list_sessions(home)
        new = set(listed) - set(known)
        assert len(new) <= 1, f"{where}: one run made several sessions: {new}"
        for sid, status in known.items():  # recovery touched no other session
            assert listed[sid]["status"] == status, f"{where}: session {sid} changed"
        sid = run.session_id
        if sid is None:  # killed before session_started was shown: maybe nothing was recorded
            if not new:
                continue
            (sid,) = new
        assert new == {sid}, f"{where}: session {sid} was shown started but is not in the store"
        status = listed[sid]["status"]
        if finished:
            assert status == finished[0]["status"]
        else:
            # Killed between recording session_finished and printing it, the session is done.
            assert status in ("interrupted", "done"), f"{where}: {sid} is {status}"
        assert not (sessions_dir(home) / "running" / f"{sid}.lock").exists()
        known[sid] = status

        stored = check_recorded(db, sid, run.shown)
        with read_only(db) as conn:  # recovery left nothing of the dead process "running"
            for table in ("chunks", "agent_executions"):
                running = f"SELECT count(*) FROM {table} WHERE session_id = ? AND status = 'running'"
                assert conn.execute(running, (sid,)).fetchone() == (0,), f"{where}: {table} still running"
        assert listed[sid]["chunks_done"] == stored
        if status == "interrupted":
            assert listed[sid]["resumable"], f"{where}: {sid} is not resumable"
            interrupted[sid] = stored
            shown_chunks = [e["chunk"] for e in run.shown if e["type"] == "chunk_started"]
            shown_syntheses = [e for e in run.shown if e["type"] == "synthesis"]
            if shown_chunks and len(shown_syntheses) < shown_chunks[-1]:
                killed_mid_chunk += 1
        started = [e for e in run.shown if e["type"] == "session_started"]
        if started:
            titles = started[0]["chunks"]

    # The event-triggered kills alone make several interrupted sessions, some killed mid-chunk.
    assert len(interrupted) >= 4, interrupted
    assert killed_mid_chunk >= 2
    assert len(titles) == CHUNKS

    # Resume one session for each number of finished chunks the kills left (none to all).
    by_done: dict[int, str] = {}
    for sid, done in sorted(interrupted.items()):
        by_done.setdefault(done, sid)
    chosen = sorted(by_done.items())
    assert len(chosen) >= 3, f"the kills left too little variety to resume: {interrupted}"
    for done, sid in chosen:
        before = len(server.requests)
        proc = run_cli("sessions", "resume", sid[:10], "--json", home=home, env=server_env(server))
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        started, final = events[0], events[-1]
        assert started["type"] == "session_started"
        assert started["parent_id"] == sid and started["reused_chunks"] == done
        assert final["type"] == "session_finished" and final["status"] == "done"
        child = started["session_id"]
        assert child != sid

        # The finished chunks were replayed as recorded, without a model; the others ran.
        syntheses = [e for e in events if e["type"] == "synthesis"]
        assert [s["chunk"] for s in syntheses] == list(range(1, CHUNKS + 1))
        with read_only(db) as conn:
            parent = dict(conn.execute("SELECT chunk, text FROM syntheses WHERE session_id = ?", (sid,)))
        assert [s["text"] for s in syntheses[:done]] == [parent[c] for c in range(1, done + 1)]
        ran = sorted({e["chunk"] for e in events if e["type"] == "agent_started"})
        assert ran == list(range(done + 1, CHUNKS + 1))
        requests = server.requests[before:]
        assert len(requests) == CALLS_PER_CHUNK * (CHUNKS - done)
        asked = sorted(stage_of(r.body, titles) for r in requests)
        assert asked == [c for c in range(done + 1, CHUNKS + 1) for _ in range(CALLS_PER_CHUNK)]

        assert check_recorded(db, child, events) == CHUNKS
        known[child] = "done"

    listed = list_sessions(home)
    for sid, status in known.items():
        assert listed[sid]["status"] == status
    for done, sid in chosen:
        (child,) = [s for s in listed.values() if s["parent_id"] == sid]
        assert child["status"] == "done" and child["reused_chunks"] == done
        assert child["chunks_done"] == child["chunks_total"] == CHUNKS
    with read_only(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
