"""End to end: ``facilitair sessions`` on sessions recorded by real ``facilitair collaborate`` runs.

The real CLI, the real ``openai`` SDK against a local server speaking OpenAI's streaming format,
the real session database. Replay must print exactly what the live run printed and call no
model; a fork must call the models only for the chunks after its branch point.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.store import SCHEMA_VERSION
from tests.conftest import CliRunner, with_env
from tests.support.documents import section
from tests.support.openai_sse_server import OpenAISSEServer, Script

pytestmark = pytest.mark.e2e

KEY = "sk-test-sessions-0123456789abcdef"
DELTAS = ["AGREED:\n- ", "cursor pagination", "\nCONFIDENCE: 0.7\nMERGED:\n", "Use cursor ", "pagination."]
TASK = "Add cursor-based pagination to the orders endpoint"
CALLS_PER_CHUNK = 4  # three roles and the synthesizer


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script = Script(deltas=DELTAS, prompt_tokens=100, completion_tokens=len(DELTAS))
        yield srv


@pytest.fixture
def run(cli: CliRunner, server: OpenAISSEServer) -> CliRunner:
    return with_env(cli, {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url})


def collaborate(run: CliRunner, task: str = TASK) -> list[str]:
    proc = run(
        "collaborate", "--model", "openai:gpt-4o-mini", "--no-cache", "--json", "-c", "language=python", task
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def events(lines: list[str]) -> list[ev.AnyEvent]:
    return [ev.from_json(line) for line in lines]


def db_path(home: Path) -> Path:
    return home / "data" / "sessions" / "sessions.db"


def test_a_recorded_session_lists_replays_exactly_and_exports(
    run: CliRunner, server: OpenAISSEServer, facilitair_home: Path
) -> None:
    live = collaborate(run)
    sid = events(live)[0].session_id
    assert {e.session_id for e in events(live)} == {sid}
    requests = len(server.requests)

    listed = run("sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert {"id", "status", "task", "started_at", "cost_usd"} <= set(item)
    assert (item["id"], item["status"], item["task"]) == (sid, "done", TASK)
    assert item["cost_usd"] == pytest.approx(events(live)[-1].cost_usd)  # type: ignore[union-attr]

    replayed = run("sessions", "replay", sid[:8], "--speed", "instant", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == live  # byte for byte, session_id, seq and t included
    rendered = run("sessions", "replay", sid, "--speed", "4")
    assert rendered.returncode == 0, rendered.stderr
    assert "Use cursor pagination." in rendered.stdout and "Collaboration complete" in rendered.stdout
    assert len(server.requests) == requests  # no model was called

    markdown = run("sessions", "export", sid[:8], "--format", "md")
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith(f"# {TASK}\n\n_Collaboration complete: ")
    for title in ("Requirements", "Architecture", "Implementation", "Review"):
        assert "Use cursor pagination." in section(markdown.stdout, title)
    exported = run("sessions", "export", sid[:8], "--format", "json", "-o", "session.json")
    assert exported.returncode == 0, exported.stderr
    record = json.loads((facilitair_home / "session.json").read_text())
    assert (facilitair_home / "session.json").stat().st_mode & 0o777 == 0o600  # like the database
    again = run("sessions", "export", sid[:8], "--format", "md", "-o", "session.json")
    assert again.returncode == 2 and "exists; add --force" in again.stderr
    assert json.loads((facilitair_home / "session.json").read_text()) == record  # kept as it was
    assert record["session"]["id"] == sid and record["session"]["context"] == {"language": "python"}
    assert [e["type"] for e in record["events"]] == [json.loads(line)["type"] for line in live]
    assert len(record["executions"]) == 4 * CALLS_PER_CHUNK
    assert {e["model"] for e in record["executions"]} == {"openai:gpt-4o-mini"}

    shown = run("sessions", "show", sid[:8])
    assert (
        shown.returncode == 0 and "openai:gpt-4o-mini" in shown.stdout and "language=python" in shown.stdout
    )


def test_a_fork_runs_only_the_chunks_after_its_branch_point(run: CliRunner, server: OpenAISSEServer) -> None:
    parent = events(collaborate(run))[0].session_id
    before = len(server.requests)
    forked = run(
        "sessions",
        "fork",
        parent[:8],
        "--at",
        "2",
        "--feedback",
        "paginate with keyset, not offsets",
        "--json",
    )
    assert forked.returncode == 0, forked.stderr
    fork_events = events(forked.stdout.splitlines())
    started = fork_events[0]
    assert isinstance(started, ev.SessionStarted)
    assert (started.parent_id, started.reused_chunks) == (parent, 2)
    assert started.change == "feedback: paginate with keyset, not offsets"
    assert isinstance(fork_events[-1], ev.SessionFinished) and fork_events[-1].status == "done"
    # Chunks 1-2 came from the store; only chunks 3-4 called a model, and chunk 3 had the feedback.
    calls = server.requests[before:]
    assert len(calls) == 2 * CALLS_PER_CHUNK
    prompts = [json.dumps(call.body) for call in calls]
    assert all(
        "Current stage: Requirements" not in p and "Stage to merge: Architecture" not in p for p in prompts
    )
    assert sum("paginate with keyset" in p for p in prompts) == CALLS_PER_CHUNK

    listed = {item["id"]: item for item in json.loads(run("sessions", "list", "--json").stdout)}
    child = listed[started.session_id]
    assert child["parent_id"] == parent and child["reused_chunks"] == 2
    assert 0 < child["cost_usd"] < listed[parent]["cost_usd"]  # it paid for two chunks, not four
    table = run("sessions", "list").stdout
    assert "fork of" in table and parent[:8] in table

    refused = run("sessions", "resume", parent[:8])
    assert refused.returncode == 2 and "fork it" in refused.stderr


def test_delete_asks_without_yes_and_removes_with_it(run: CliRunner) -> None:
    sid = events(collaborate(run))[0].session_id
    refused = run("sessions", "delete", sid[:8])
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert run("sessions", "delete", sid[:8], "--yes").returncode == 0
    assert json.loads(run("sessions", "list", "--json").stdout) == []


def recording(sid: str) -> str:
    started = ev.SessionStarted(
        session_id=sid,
        seq=1,
        task=f"task {sid}",
        context={},
        strategy="local",
        workflow="default",
        chunks=["A"],
    )
    return ev.to_json(started).decode() + "\n"


def test_unknown_and_ambiguous_ids_say_what_to_do(run: CliRunner, facilitair_home: Path) -> None:
    for sid in ("abc123", "abc456"):
        path = facilitair_home / f"{sid}.jsonl"
        path.write_text(recording(sid))
        assert run("sessions", "import", str(path)).returncode == 0
    unknown = run("sessions", "show", "zzz")
    assert unknown.returncode == 2 and "no session id starts with 'zzz'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    ambiguous = run("sessions", "replay", "abc")
    assert ambiguous.returncode == 2 and "matches several sessions (abc" in ambiguous.stderr
    as_json = run("sessions", "replay", "zzz", "--json")
    [error] = events(as_json.stdout.splitlines())
    assert isinstance(error, ev.Error) and "no session id starts with" in error.message
    # An imported recording has no workflow definition: replayable, not resumable.
    resumed = run("sessions", "resume", "abc123")
    assert resumed.returncode == 3 and "can be replayed but not continued" in resumed.stderr
    bad = facilitair_home / "bad.jsonl"
    bad.write_text(recording("abc789") + "{not json\n")
    imported = run("sessions", "import", str(bad))
    assert (
        imported.returncode == 2 and "line 2" in imported.stderr and "nothing was imported" in imported.stderr
    )


def test_a_corrupt_database_is_reported_and_left_alone(
    run: CliRunner, server: OpenAISSEServer, facilitair_home: Path
) -> None:
    path = db_path(facilitair_home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database: half a download, or someone's notes\n" * 100)
    before = path.read_bytes()
    for args in (("sessions", "list"), ("collaborate", "--model", "openai:gpt-4o-mini", "--no-cache", TASK)):
        proc = run(*args)
        assert proc.returncode == 3, proc.stderr
        assert "is damaged" in proc.stderr and f"mv {path} {path}.damaged" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert path.read_bytes() == before
    assert server.requests == []  # nothing ran that could not be recorded


def test_a_locked_database_is_reported_and_works_once_released(run: CliRunner, facilitair_home: Path) -> None:
    sid = events(collaborate(run))[0].session_id
    holder = sqlite3.connect(db_path(facilitair_home), isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = run("sessions", "list")
        assert proc.returncode == 3 and "locked by another program" in proc.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    [item] = json.loads(run("sessions", "list", "--json").stdout)
    assert item["id"] == sid  # nothing was lost


def test_a_database_from_a_newer_facilitair_says_to_upgrade(run: CliRunner, facilitair_home: Path) -> None:
    collaborate(run)
    conn = sqlite3.connect(db_path(facilitair_home))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    proc = run("sessions", "list")
    assert proc.returncode == 3 and "newer Facilitair" in proc.stderr and "Upgrade Facilitair" in proc.stderr


def test_an_id_that_is_a_path_is_refused_and_nothing_is_written(
    run: CliRunner, facilitair_home: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "some" / "dir"
    victim.mkdir(parents=True)
    traversal = "../" * 12 + str(victim / "yarn").lstrip("/")
    path = facilitair_home / "evil.jsonl"
    path.write_text(recording(traversal))
    imported = run("sessions", "import", str(path))
    assert imported.returncode == 2 and "is not a valid session id" in imported.stderr
    assert "Traceback" not in imported.stderr
    assert list(victim.iterdir()) == []  # no yarn.lock made (and removed) outside the data directory
    assert json.loads(run("sessions", "list", "--json").stdout) == []
    # A forked recording naming such a parent is refused the same way.
    started = json.loads(recording("abc123").splitlines()[0])
    forked = facilitair_home / "forked.jsonl"
    forked.write_text(json.dumps({**started, "parent_id": "../../etc"}) + "\n")
    refused = run("sessions", "import", str(forked))
    assert refused.returncode == 2 and "not a valid parent session id" in refused.stderr
    for command in (("sessions", "show", "../x"), ("sessions", "delete", "a/b", "--yes")):
        shown = run(*command)
        assert shown.returncode == 2 and "is not a valid session id" in shown.stderr
    cache = run("cache", "show", "../../x")
    assert cache.returncode == 2 and "is not a valid cache entry id" in cache.stderr
