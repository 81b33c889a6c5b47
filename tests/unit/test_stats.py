"""``facilitair stats``: known sessions in a store give known figures (nearest-rank percentiles)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from facilitair_tui.cli.main import main
from facilitair_tui.core import events as ev
from facilitair_tui.stats import parse_since, percentile
from facilitair_tui.store import SessionStore

DAY = 86400.0
MINI, HAIKU, LOCAL = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5", "local:qwen2.5-coder-0.5b"


def attempt(sid: str, agent: str, model: str, n: int, **fields: Any) -> ev.ModelAttempt:
    return ev.ModelAttempt(
        session_id=sid, agent=agent, chunk=1, attempt=n, model=model, kind="first" if n == 1 else "retry",
        started_t=0.0, **fields,
    )  # fmt: skip


def call(sid: str, agent: str, model: str, latency_ms: float, out: int, cost: float | None) -> list[ev.Event]:
    return [
        ev.AgentStarted(session_id=sid, agent=agent, chunk=1, model=model),
        ev.AgentFinished(
            session_id=sid, agent=agent, chunk=1, input_tokens=100, output_tokens=out, latency_ms=latency_ms,
            cost_usd=cost, status="done",
        ),
    ]  # fmt: skip


def session(sid: str, models: dict[str, str], body: list[ev.Event], cost: float | None) -> list[ev.Event]:
    events: list[ev.Event] = [
        ev.SessionStarted(session_id=sid, task=f"task {sid}", context={}, strategy="s", workflow="default",
                          models=models, chunks=["Build"]),
        ev.ChunkStarted(session_id=sid, chunk=1, title="Build", total=1),
        *body,
        ev.SessionFinished(session_id=sid, status="done", output="x", input_tokens=0, output_tokens=0,
                           cost_usd=cost, duration_s=10.0),
    ]  # fmt: skip
    for seq, event in enumerate(events, 1):
        event.seq, event.t = seq, float(seq)
    return events


def debated(sid: str, *positions: dict[str, str]) -> ev.Synthesis:
    points = [ev.DebatedPoint(point=f"p{i}", positions=p) for i, p in enumerate(positions)]
    return ev.Synthesis(session_id=sid, chunk=1, agreed=["a"], debated=points, confidence=0.5, text="t")


PAIR = {"coder": MINI, "reviewer": HAIKU, "synthesizer": MINI}


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    now = time.time()
    a = session(
        "aaaa",
        PAIR,
        [
            attempt("aaaa", "coder", MINI, 1, outcome="failed", error="rate_limit", wait_ms=1000.0),
            attempt("aaaa", "coder", MINI, 2, first_token_ms=100.0, duration_ms=900.0, output_tokens=50),
            *call("aaaa", "coder", MINI, 1000.0, 50, 0.01),
            attempt("aaaa", "reviewer", HAIKU, 1, first_token_ms=300.0, output_tokens=40),
            *call("aaaa", "reviewer", HAIKU, 2000.0, 40, 0.02),
            ev.CodeRun(session_id="aaaa", agent="coder", chunk=1, passed=3, failed=1, duration_ms=5.0,
                       output=""),
            debated("aaaa", {"coder": "x", "reviewer": "y"}, {"coder": "only"}),
        ],
        0.03,
    )  # fmt: skip
    b = session(
        "bbbb",
        PAIR,
        [
            attempt("bbbb", "coder", MINI, 1, outcome="failed", error="server"),
            attempt("bbbb", "coder", MINI, 2, outcome="failed", error="rate_limit"),
            attempt("bbbb", "coder", MINI, 3, first_token_ms=200.0),
            *call("bbbb", "coder", MINI, 3000.0, 30, 0.03),
            *call("bbbb", "synthesizer", MINI, 5000.0, 20, 0.01),
            *call("bbbb", "reviewer", HAIKU, 4000.0, 60, 0.04),
            debated("bbbb", {"reviewer": "z"}),
        ],
        0.08,
    )  # fmt: skip
    old = session("cccc", {"coder": LOCAL}, [*call("cccc", "coder", LOCAL, 7000.0, 70, 0.0)], 0.0)
    with SessionStore.open_default() as store:
        store.import_events(a, started_at=now - 1 * DAY)
        store.import_events(b, started_at=now - 2 * DAY)
        store.import_events(old, started_at=now - 30 * DAY)
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
