"""``facilitair stats``: known sessions in a store give known figures (nearest-rank percentiles)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from facilitair_tui.cli.main import main
from facilitair_tui.command_line import EXIT_CONFIG
from facilitair_tui.stats import parse_since, percentile
from facilitair_tui.store import SessionStore
from facilitair_tui.store.schema import SCHEMA_VERSION
from tests.support.stats_store import DAY, HAIKU, LOCAL, MINI, fill_store


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    with SessionStore.open_default() as store:
        fill_store(store, time.time())
    return tmp_path


def stats_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["stats", "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_known_sessions_give_known_percentiles_failures_and_costs(store_home: Path) -> None:
    data = stats_json("--since", "7d")
    assert data["sessions"] == 2 and data["cost_usd"] == pytest.approx(0.11)
    by_model = {m["model"]: m for m in data["models"]}
    assert set(by_model) == {MINI, HAIKU}  # the 30-day-old local session is before --since
    mini = by_model[MINI]
    assert (mini["calls"], mini["requests"], mini["failed_calls"]) == (3, 5, 0)
    assert mini["failures"] == {"rate_limit": 2, "server": 1}
    # Latencies 1000, 3000, 5000: nearest rank p50 = the 2nd, p95 = p99 = the 3rd.
    assert mini["latency_ms"] == {"p50": 3000.0, "p95": 5000.0, "p99": 5000.0}
    assert mini["first_token_ms"] == {"p50": 100.0, "p95": 200.0, "p99": 200.0}
    assert mini["tokens_per_s"] == pytest.approx((50 + 30 + 20) / 9.0)
    assert mini["cost_usd"] == pytest.approx(0.05)
    assert by_model[HAIKU]["latency_ms"] == {"p50": 2000.0, "p95": 4000.0, "p99": 4000.0}
    assert by_model[HAIKU]["failures"] == {}

    (pair,) = data["pairs"]
    assert (pair["coder"], pair["reviewer"], pair["sessions"]) == (MINI, HAIKU, 2)
    assert (pair["debated_points"], pair["review_findings"]) == (3, 2)
    assert pair["test_pass_rate"] == pytest.approx(0.75)
    assert pair["cost_per_session_usd"] == pytest.approx(0.055)
    assert sum(day["sessions"] for day in data["days"]) == 2
    roles = {r["role"]: r for r in data["roles"]}
    assert roles["reviewer"]["cost_usd"] == pytest.approx(0.06) and roles["coder"]["calls"] == 2


def test_without_since_every_session_counts_and_a_session_without_reviewer_pairs_with_none(
    store_home: Path,
) -> None:
    data = stats_json()
    assert data["sessions"] == 3
    pairs = {(p["coder"], p["reviewer"]): p for p in data["pairs"]}
    assert pairs[(LOCAL, "—")]["sessions"] == 1 and pairs[(LOCAL, "—")]["test_pass_rate"] is None


def test_the_tables_and_a_bad_since_say_what_they_should(store_home: Path) -> None:
    result = CliRunner().invoke(main, ["stats", "--since", "2w"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for words in (
        "2 sessions",
        "Models",
        "rate_limit 2, server 1",
        "Model pairs",
        "75%",
        "Per day",
        "Per role",
    ):
        assert words in result.output, words
    bad = CliRunner().invoke(main, ["stats", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "30m, 24h, 7d or 2w" in bad.output and "Traceback" not in bad.output


def test_an_empty_store_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["stats", "--since", "1d"])
    assert result.exit_code == 0 and "No sessions since 1d" in result.output
    assert stats_json()["models"] == []


def test_percentiles_are_nearest_rank_and_since_takes_dates() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert [percentile(values, p) for p in (1, 20, 21, 50, 99, 100)] == [1.0, 1.0, 2.0, 3.0, 5.0, 5.0]
    assert percentile([], 50) is None
    from datetime import datetime

    now = datetime(2026, 12, 5, 12, 0).astimezone()
    assert parse_since("24h", now) == parse_since("1d", now) == now.timestamp() - DAY
    assert parse_since("2026-12-05", now) == datetime(2026, 12, 5).astimezone().timestamp()


def test_a_damaged_or_newer_store_fails_in_one_line_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    path = SessionStore.default_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, someone's notes\n" * 200)
    damaged = CliRunner().invoke(main, ["stats"])
    assert damaged.exit_code == EXIT_CONFIG and "is damaged" in damaged.output
    assert "Traceback" not in damaged.output

    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    newer = CliRunner().invoke(main, ["stats", "--json"])
    assert newer.exit_code == EXIT_CONFIG and "newer Facilitair" in newer.output
    assert "Traceback" not in newer.output
