"""``facilitair cache ...`` as a user runs it: import, list, show, lookup, stats, export, rm, clear.

Real processes, the real embedder and cache in a private FACILITAIR_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CliRunner

pytestmark = pytest.mark.e2e

SHARED = [
    {
        "task": "Add rate limiting to the public search endpoint",
        "context": {"language": "Python", "frameworks": ["FastAPI"]},
        "output": "## Plan\n\nUse a token bucket per API key.",
        "cost_usd": 0.12,
        "duration_s": 64.0,
    },
    {
        "task": "Write a Helm chart for the billing worker",
        "context": {"existing_stack": "kubernetes, postgresql"},
        "output": "## Chart\n\nvalues.yaml ...",
    },
]


def ok(proc: object) -> str:
    assert getattr(proc, "returncode", 1) == 0, getattr(proc, "stderr", "")
    return str(getattr(proc, "stdout", ""))


def test_a_shared_file_is_imported_browsed_questioned_and_exported(
    cli: CliRunner, facilitair_home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "team.jsonl"
    lines = [json.dumps(r) for r in SHARED] + ["{not json", json.dumps({"task": "no output"}), ""]
    shared.write_text("\n".join(lines), encoding="utf-8")
    proc = cli("cache", "import", str(shared))
    assert "Imported 2 cached solutions, skipped 2." in ok(proc)
    assert (
        "line 3: not valid JSON" in proc.stderr
        and "line 4: 'output' must be a non-empty string" in proc.stderr
    )

    listed = json.loads(ok(cli("cache", "list", "--json")))
    assert {e["task"] for e in listed} == {r["task"] for r in SHARED}
    limiter = next(e for e in listed if "rate limiting" in e["task"])
    assert limiter["context"] == {"language": "Python", "frameworks": "FastAPI"}

    shown = ok(cli("cache", "show", limiter["id"][:6]))
    assert "token bucket per API key" in shown and "cost $0.1200" in shown

    def lookup(task: str, *context: str) -> dict[str, object]:
        options = [f"--context={c}" for c in context]
        return json.loads(ok(cli("cache", "lookup", task, *options, "--json")))  # type: ignore[no-any-return]

    hit = lookup("add rate-limiting to the public search endpoint", "language=python", "frameworks=fastapi")
    assert hit["hit"] and hit["entry_id"] == limiter["id"]
    miss = lookup("Add rate limiting to the public search endpoint", "language=go", "frameworks=fastapi")
    assert not miss["hit"] and "language" in str(miss["reason"])
    number = lookup(
        "Add rate limiting to the 3 public search endpoints", "language=python", "frameworks=fastapi"
    )
    assert not number["hit"]

    stats = json.loads(ok(cli("cache", "stats", "--json")))
    assert stats["entries"] == 2 and stats["lookups"] == 0  # a lookup question is not a use

    exported = tmp_path / "out.jsonl"
    ok(cli("cache", "export", str(exported)))
    records = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["task"] for r in records) == sorted(r["task"] for r in SHARED)
    assert all({"task", "context", "output", "created_at"} <= r.keys() for r in records)

    # Removing, and clearing; then the exported file brings everything back.
    assert "Removed" in ok(cli("cache", "rm", limiter["id"]))
    rm_again = cli("cache", "rm", limiter["id"])
    assert rm_again.returncode == 2 and "no cache entry has an id starting with" in rm_again.stderr
    assert "Removed 1 cached solutions." in ok(cli("cache", "clear", "--yes"))
    assert json.loads(ok(cli("cache", "list", "--json"))) == []
    assert "Imported 2 cached solutions." in ok(cli("cache", "import", str(exported)))


def test_a_damaged_cache_is_a_clear_message_and_clear_sets_it_aside(
    cli: CliRunner, facilitair_home: Path
) -> None:
    directory = facilitair_home / "data" / "cache"
    directory.mkdir(parents=True)
    (directory / "cache.db").write_bytes(b"not a database" * 100)
    proc = cli("cache", "list")
    assert proc.returncode == 3 and "damaged" in proc.stderr and "facilitair cache clear" in proc.stderr
    assert "Traceback" not in proc.stderr
    cleared = cli("cache", "clear", "--yes")
    assert cleared.returncode == 0 and "moved to" in cleared.stdout
    assert [
        p.name.startswith("cache.damaged-") for p in directory.parent.iterdir() if p.name != "models"
    ] == [True]
    assert json.loads(ok(cli("cache", "list", "--json"))) == []


def test_clear_never_moves_a_healthy_cache_aside_when_something_else_is_wrong(
    cli: CliRunner, facilitair_home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "one.jsonl"
    shared.write_text(json.dumps(SHARED[0]), encoding="utf-8")
    ok(cli("cache", "import", str(shared)))
    config = facilitair_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[cache]\nthresholds = { paraphrse_min = 0.7 }\n", encoding="utf-8")
    proc = cli("cache", "clear", "--yes")
    assert proc.returncode == 3 and "unknown paraphrse_min" in proc.stderr
    assert not [p for p in (facilitair_home / "data").iterdir() if p.name.startswith("cache.damaged")]
    config.unlink()
    assert len(json.loads(ok(cli("cache", "list", "--json")))) == 1


def test_an_export_is_private_and_never_overwrites_without_force(
    cli: CliRunner, facilitair_home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "team.jsonl"
    shared.write_text(json.dumps(SHARED[0]), encoding="utf-8")
    ok(cli("cache", "import", str(shared)))
    target = tmp_path / "out.jsonl"
    target.write_text("the user's own notes\n", encoding="utf-8")
    refused = cli("cache", "export", str(target))
    assert refused.returncode == 2 and "exists; add --force" in refused.stderr
    assert target.read_text(encoding="utf-8") == "the user's own notes\n"
    ok(cli("cache", "export", str(target), "--force"))
    assert "rate limiting" in target.read_text(encoding="utf-8")
    assert target.stat().st_mode & 0o777 == 0o600
    fresh = tmp_path / "fresh.jsonl"
    ok(cli("cache", "export", str(fresh)))
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_an_imported_solution_keeps_its_age_and_says_it_was_imported(
    cli: CliRunner, facilitair_home: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    made = datetime.now(UTC) - timedelta(days=3)
    too_old = datetime.now(UTC) - timedelta(days=30)
    shared = tmp_path / "team.jsonl"
    lines = [
        {**SHARED[0], "created_at": made.isoformat()},
        {**SHARED[1], "created_at": too_old.isoformat()},
    ]
    shared.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    proc = cli("cache", "import", str(shared))
    assert "Imported 1 cached solutions, skipped 1." in ok(proc)
    assert "line 2: it was cached 30 d ago" in proc.stderr and "ttl_days" in proc.stderr

    [entry] = json.loads(ok(cli("cache", "list", "--json")))
    assert entry["imported"] is True
    assert abs(datetime.fromisoformat(entry["created_at"]).timestamp() - made.timestamp()) < 1
    assert "(imported)" in ok(cli("cache", "list")) and "3 d ago" in ok(cli("cache", "list"))
    assert "imported from a file, made 3 d ago" in ok(cli("cache", "show", entry["id"]))
