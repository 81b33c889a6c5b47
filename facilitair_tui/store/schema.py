"""The session database's schema, as numbered migrations.

``PRAGMA user_version`` is the number of the last migration applied. Opening a database applies
the missing ones in order, each in its own transaction, so an older database is brought up to
date and an interrupted upgrade leaves it at the last complete step. A database from a newer
Facilitair (a higher number than we know) is refused with a message saying what to do: guessing
at its meaning could lose data.

Migrations are append-only: once released, one is never edited; a change is a new migration.
"""

from __future__ import annotations

import sqlite3

# The seeds' schema, adapted to SQLite and to what resuming and replaying need:
#
# * ``workflows``: each distinct workflow definition once (roles, prompts, chunks), so a session
#   resumes with exactly the workflow it ran even if the file changed since;
# * ``sessions``: one row per run; ``spec`` holds what continuing it needs besides the workflow;
# * ``chunks``, ``agent_executions`` (model, tokens, latency, cost, status), ``syntheses``,
#   ``feedback``, ``cache_hits``: what happened, for queries and resuming;
# * ``token_log``: every token event delivered, tied to its agent execution; one row holds a run
#   of one execution's events (those committed together): their texts joined, and per event its
#   seq, t, length and deltas packed in ``events`` (int64, float64, int32, int32 arrays);
# * ``events``: every other event, as its JSON, by ``seq``. With ``token_log`` it is the exact
#   recorded stream: replay merges the two by ``seq``.
_V1 = """
CREATE TABLE workflows (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    workflow_id INTEGER REFERENCES workflows(id),
    task TEXT NOT NULL,
    context TEXT NOT NULL,
    strategy TEXT NOT NULL,
    models TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'stopped', 'interrupted', 'failed')),
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    last_t REAL NOT NULL DEFAULT 0,
    chunks_total INTEGER NOT NULL,
    chunks_done INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    cost_unknown INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    from_cache INTEGER NOT NULL DEFAULT 0,
    pid INTEGER
);
CREATE INDEX sessions_by_status ON sessions(status);
CREATE TABLE chunks (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted')),
    started_t REAL NOT NULL,
    finished_t REAL,
    PRIMARY KEY (session_id, chunk)
) WITHOUT ROWID;
CREATE TABLE agent_executions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    reads TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
    started_t REAL NOT NULL,
    finished_t REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_ms REAL,
    cost_usd REAL,
    usage_estimated INTEGER
);
CREATE INDEX agent_executions_by_session ON agent_executions(session_id, chunk);
CREATE TABLE token_log (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    execution_id INTEGER REFERENCES agent_executions(id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    agent TEXT NOT NULL,
    t REAL NOT NULL,
    text TEXT NOT NULL,
    events BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE INDEX token_log_by_execution ON token_log(execution_id);
CREATE TABLE events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    t REAL NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE syntheses (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    agreed TEXT NOT NULL,
    debated TEXT NOT NULL,
    confidence REAL,
    text TEXT NOT NULL,
    parsed INTEGER NOT NULL,
    PRIMARY KEY (session_id, chunk)
) WITHOUT ROWID;
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    applies_to TEXT NOT NULL,
    text TEXT NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX feedback_by_session ON feedback(session_id);
CREATE TABLE cache_hits (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    hit INTEGER NOT NULL,
    entry_id TEXT,
    similarity REAL,
    matched_on TEXT NOT NULL,
    saved_usd REAL,
    saved_s REAL,
    age_s REAL
);
"""

# Branches: a session that resumes or forks another reuses its parent's first chunks.
_V2 = """
ALTER TABLE sessions ADD COLUMN parent_id TEXT REFERENCES sessions(id) ON DELETE SET NULL;
ALTER TABLE sessions ADD COLUMN reused_chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN change TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_by_parent ON sessions(parent_id);
CREATE INDEX sessions_by_start ON sessions(started_at);
"""

# A synthesis's confidence is computed: what it was computed from (JSON of ev.ConfidenceParts).
_V3 = """
ALTER TABLE syntheses ADD COLUMN confidence_parts TEXT;
"""

# Version 4: eval runs (``facilitair eval``) and each problem's result, committed as soon as it is
# known, so an interrupted run goes on where it stopped.
_V4 = """
CREATE TABLE eval_runs (
    id          TEXT PRIMARY KEY,
    created     REAL NOT NULL,
    source      TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('team', 'single')),
    workflow    TEXT NOT NULL,
    strategy    TEXT,
    model       TEXT,
    seed        INTEGER,
    limit_n     INTEGER,
    total       INTEGER NOT NULL,
    finished_at REAL
);
CREATE TABLE eval_results (
    run_id        TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    task_id       TEXT NOT NULL,
    position      INTEGER NOT NULL,
    passed        INTEGER NOT NULL,
    status        TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL,
    duration_s    REAL NOT NULL,
    session_id    TEXT,
    message       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task_id)
);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer Facilitair."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply the migrations after the database's version, up to ``target``; return their numbers.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration is one
    explicit transaction, its version bump included.
    """
    current = version(conn)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(current)
    applied = []
    for number in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) >= number:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied


def _statements(script: str) -> list[str]:
    """A migration's statements (``executescript`` would commit on its own, outside our transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete statement in a migration: {current.strip()[:60]}")
    return statements
