"""The session store on a real SQLite file: recording, reading back, recovery, migrations, bad files.

Live sessions run on the scripted provider through the real engine; crash recovery uses a real
second process that dies with SIGKILL while it holds a session's lock.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver
from facilitair_tui.store import (
    SCHEMA_VERSION,
    SessionNotFound,
    SessionStore,
    StoreDamaged,
    StoreError,
    schema,
)
from facilitair_tui.store.writer import Begin
from tests.support.scripted import chunk_of

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
SYNTHESIS = ["AGREED:\n- small ", "steps\n", "CONFIDENCE: 0.8\n", "MERGED:\n", "Plan of chunk"]


def reply(request: object) -> Reply:
    if "Merge." in request.messages[0].content:  # type: ignore[attr-defined]
        return Reply(deltas=SYNTHESIS)
    return Reply(deltas=[f"c{chunk_of(request)} ", "word ", "word"])  # type: ignore[arg-type]


def run_session(store: SessionStore, task: str = "Build a URL shortener") -> list[ev.Event]:
    spec = SessionSpec(task=task, workflow=WORKFLOW, strategy="test", context={"language": "python"})
    collaboration = Collaboration(spec, SingleProviderResolver(ScriptedProvider(reply)))
    recorder = store.recorder(spec, collaboration.session_id)

    async def drive() -> list[ev.Event]:
        seen = []
        async for event in collaboration.events():
            recorder.record(event)
            seen.append(event)
        return seen

    return asyncio.run(drive())


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    opened = SessionStore.open(tmp_path / "sessions" / "sessions.db")
    yield opened  # type: ignore[misc]
    opened.close()


def test_a_live_session_reads_back_event_for_event_with_its_rows(store: SessionStore) -> None:
    live = run_session(store)
    sid = live[0].session_id
    assert store.events(sid) == live
    [summary] = store.list()
    assert (summary.id, summary.status, summary.task) == (sid, "done", "Build a URL shortener")
    assert (summary.chunks_done, summary.chunks_total) == (4, 4) and not summary.resumable
    finished = live[-1]
    assert isinstance(finished, ev.SessionFinished)
    assert summary.duration_s == finished.duration_s
    executions = store.executions(sid)
    assert len(executions) == 16 and {e["status"] for e in executions} == {"done"}
    assert all(e["token_events"] > 0 for e in executions)
    assert [(c, status) for c, _, status in store.chunks(sid)] == [(n, "done") for n in range(1, 5)]
    stored = store.load(sid)
    assert [s.chunk for s in stored.syntheses] == [1, 2, 3, 4]
    assert stored.workflow == WORKFLOW
    assert stored.context == {"language": "python"} and stored.output == finished.output


def test_files_are_the_users_only(tmp_path: Path, store: SessionStore) -> None:
    run_session(store)
    directory = store.path.parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("sessions.db", "sessions.db-wal", "sessions.db-shm"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name


def test_ids_resolve_by_unique_prefix(store: SessionStore) -> None:
    for task in ("one", "two", "three"):
        run_session(store, task)
    ids = [s.id for s in store.list()]
    assert store.resolve(ids[0][:10]) == ids[0]
    with pytest.raises(SessionNotFound, match="no session id starts with 'zzz'"):
        store.resolve("zzz")
    with pytest.raises(SessionNotFound, match="give a session id"):
        store.resolve("  ")
    with pytest.raises(KeyError):
        store.events("not-an-id")
    # One character shared by several ids is ambiguous; the message lists them.
    first = ids[0][0]
    if sum(i.startswith(first) for i in ids) > 1:
        with pytest.raises(StoreError, match="matches several sessions"):
            store.resolve(first)


def test_delete_removes_every_row_and_keeps_the_others(store: SessionStore) -> None:
    keep = run_session(store, "keep")[0].session_id
    gone = run_session(store, "gone")[0].session_id
    store.delete(gone)
    assert [s.id for s in store.list()] == [keep]
    conn = sqlite3.connect(store.path)
    for table in ("token_log", "events", "agent_executions", "syntheses", "chunks"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", (gone,)).fetchone() == (0,)
    assert len(store.events(keep)) > 0


# ---------------------------------------------------------------------------- crash recovery

_DIE_WHILE_RECORDING = textwrap.dedent(
    """
    import sys, os, signal
    from pathlib import Path
    from facilitair_tui.core import events as ev
    from facilitair_tui.core.orchestrator import SessionSpec
    from facilitair_tui.core.workflow import load_workflow
    from facilitair_tui.store import SessionStore

    store = SessionStore.open(Path(sys.argv[1]))
    spec = SessionSpec(task="dies", workflow=load_workflow(sys.argv[2]), strategy="test")
    recorder = store.recorder(spec, "dying-session")
    recorder.record(ev.SessionStarted(session_id="dying-session", seq=1, task="dies", context={},
                                      strategy="test", workflow="scripted", chunks=["A", "B"]))
    recorder.record(ev.ChunkStarted(session_id="dying-session", seq=2, chunk=1, title="A", total=2))
    recorder.record(ev.AgentStarted(session_id="dying-session", seq=3, chunk=1, agent="coder", model="m"))
    recorder.record(ev.Synthesis(session_id="dying-session", seq=4, chunk=1, agreed=[], debated=[],
                                 confidence=None, text="chunk one"))  # a barrier: committed now
    print("ready", flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_process_leaves_its_session_running_until_its_lock_is_free(store: SessionStore) -> None:
    workflow_file = Path(__file__).parents[1] / "data" / "scripted_workflow.toml"
    child = subprocess.Popen(
        [sys.executable, "-c", _DIE_WHILE_RECORDING, str(store.path), str(workflow_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        # Alive: it holds the lock, so the session is truly running.
        [summary] = store.list()
        assert summary.status == "running"
        with pytest.raises(StoreError, match="is running"):
            store.delete("dying-session")
        assert child.stdin is not None
        child.stdin.write("die\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
    [summary] = store.list()
    assert summary.status == "interrupted"
    assert summary.resumable and (summary.chunks_done, summary.chunks_total) == (1, 2)
    assert store.executions("dying-session")[0]["status"] == "interrupted"
    assert [status for _, _, status in store.chunks("dying-session")] == ["done"]
    assert store.load("dying-session").syntheses[0].text == "chunk one"
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------------- migrations and bad files


def test_a_version_1_database_is_migrated_with_its_sessions(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn, target=1) == [1]
    conn.execute(
        "INSERT INTO sessions (id, task, context, strategy, models, spec, status, started_at, updated_at,"
        " chunks_total) VALUES ('old1', 'An old task', '{}', 'local', '{}', '{}', 'done', 1.0, 2.0, 4)"
    )
    conn.close()
    with SessionStore.open(path) as store:
        [summary] = store.list()
        assert (summary.id, summary.task, summary.parent_id, summary.reused_chunks) == (
            "old1",
            "An old task",
            None,
            0,
        )
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_every_migration_step_applies_in_order_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert schema.migrate(conn) == list(range(1, SCHEMA_VERSION + 1))
    assert schema.migrate(conn) == []


def test_a_database_from_a_newer_facilitair_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer Facilitair") as raised:
        SessionStore.open(path)
    assert "Upgrade Facilitair" in str(raised.value)
    assert path.read_bytes() == before


def test_a_corrupt_file_says_what_to_do_and_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database, but someone's notes\n" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreDamaged) as raised:
        SessionStore.open(path)
    message = str(raised.value)
    assert "is damaged" in message and f"mv {path} {path}.damaged" in message
    assert path.read_bytes() == before


def test_a_locked_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sessions.db"
    SessionStore.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr("facilitair_tui.store.sessions.BUSY_TIMEOUT_MS", 200)
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            SessionStore.open(path).list()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with SessionStore.open(path) as store:
        assert store.list() == []


def test_a_recording_made_elsewhere_imports_and_its_tail_can_follow(store: SessionStore) -> None:
    live = run_session(store)
    copy = [ev.from_json(ev.to_json(e).replace(live[0].session_id.encode(), b"copied")) for e in live]
    assert store.import_events(copy[:10]) == "copied"
    assert store.summary("copied").status == "running" or store.summary("copied").status == "interrupted"
    store.import_events(copy[10:])  # what a full disk had kept out
    assert store.events("copied") == copy
    assert store.summary("copied").status == "done"
    assert not store.summary("copied").resumable  # no workflow definition came with it
    with pytest.raises(StoreError, match="already"):
        store.import_events(copy)


def test_a_session_that_cannot_be_written_is_set_aside_and_the_others_go_on(store: SessionStore) -> None:
    first = run_session(store, "first")
    sid = first[0].session_id
    # A recorder refuses an id that is already recorded, before anything is written.
    spec = SessionSpec(task="again", workflow=WORKFLOW, strategy="test")
    with pytest.raises(StoreError, match="already recorded"):
        store.recorder(spec, sid).record(first[0])
    # Should a session's rows still fail (here: its row again, straight to the writer), only that
    # session is set aside: its events go to its unsaved file, the next session is written.
    writer = store._writer_started()
    writer.put(
        Begin(
            session_id=sid,
            task="dup",
            context={},
            strategy="test",
            models={},
            spec={},
            workflow_name="w",
            workflow_definition=None,
            chunks_total=1,
            started_at=0.0,
            pid=0,
        )
    )
    writer.put(ev.ChunkStarted(session_id=sid, seq=999, chunk=1, title="A", total=1))
    second = run_session(store, "second")
    assert store.events(second[0].session_id) == second
    assert store.events(sid) == first
    assert store.close() == []
    # Only its own events: what the database holds under that id is the first session's.
    unsaved = (store.path.parent / f"unsaved-{sid}.jsonl").read_bytes().splitlines()
    assert [ev.from_json(line) for line in unsaved] == [
        ev.ChunkStarted(session_id=sid, seq=999, chunk=1, title="A", total=1)
    ]


def test_events_a_locked_database_keeps_out_are_handed_back_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("facilitair_tui.store.sessions.BUSY_TIMEOUT_MS", 100)
    store = SessionStore.open(tmp_path / "sessions.db")
    spec = SessionSpec(task="locked out", workflow=WORKFLOW, strategy="test")
    recorder = store.recorder(spec, "locked-out")
    started = ev.SessionStarted(
        session_id="locked-out",
        seq=1,
        task="locked out",
        context={},
        strategy="test",
        workflow="w",
        chunks=["A"],
    )
    recorder.record(started)  # committed before it is shown
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program takes the write lock and keeps it
    try:
        later: list[ev.Event] = [
            ev.ChunkStarted(session_id="locked-out", seq=2, chunk=1, title="A", total=1),
            ev.Synthesis(
                session_id="locked-out", seq=3, chunk=1, agreed=[], debated=[], confidence=None, text="x"
            ),
        ]
        for event in later:
            recorder.record(event)  # the synthesis's commit fails: the session goes on regardless
        assert store.problem is not None and "locked by another program" in store.problem
        assert store.close() == later
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with SessionStore.open(tmp_path / "sessions.db") as reopened:
        assert reopened.events("locked-out") == [started]
        assert reopened.import_events(later) == "locked-out"  # what the front end saved, taken back
        assert reopened.events("locked-out") == [started, *later]


def test_text_sqlite_cannot_take_sets_its_session_aside_and_the_writer_goes_on(store: SessionStore) -> None:
    spec = SessionSpec(task="bad text", workflow=WORKFLOW, strategy="test")
    recorder = store.recorder(spec, "bad-text")
    recorder.record(
        ev.SessionStarted(session_id="bad-text", seq=1, task="t", context={}, strategy="test", workflow="w")
    )
    bad = ev.Token(session_id="bad-text", seq=2, agent="coder", chunk=1, text="half a pair: \ud800")
    recorder.record(bad)  # a server sent an escaped lone surrogate; UTF-8 cannot hold it
    good = run_session(store, "the next session")
    assert store.events(good[0].session_id) == good
    assert store.close() == []
    unsaved = (store.path.parent / "unsaved-bad-text.jsonl").read_bytes().splitlines()
    kept = [ev.from_json(line) for line in unsaved]
    assert kept[-1] == msgspec.structs.replace(bad, text="half a pair: \ufffd")  # UTF-8 can hold that
