"""The budget guard from the command line: --budget, --on-budget, and no terminal to ask."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.store.spend import spent_today
from tests.conftest import CliRunner
from tests.support.openai_sse_server import OpenAISSEServer, Script

pytestmark = pytest.mark.e2e

KEY = "sk-test-budget-0123456789"


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script = Script(deltas=["AGREED:\n- ok", "\nMERGED:\n", "done"], prompt_tokens=400)
        yield srv


def run(cli: CliRunner, server: OpenAISSEServer, *options: str) -> tuple[int, list[ev.Event], str]:
    proc = cli(
        "collaborate",
        "--json",
        "--model",
        "openai:gpt-4o",
        "--no-cache",  # every run must call the model: the cache would answer the same task
        *options,
        "Build a REST API",
        env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url},
    )
    return proc.returncode, [ev.from_json(line) for line in proc.stdout.splitlines()], proc.stderr


def test_without_a_terminal_the_guard_stops_before_the_chunk_and_says_how_to_decide_ahead(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    code, events, stderr = run(cli, server, "--budget", "0.001")
    assert code == 130
    (alert,) = [e for e in events if isinstance(e, ev.BudgetExceeded)]
    assert alert.chunk == 1 and alert.limit_usd == 0.001 and alert.forecast_usd > 0.001
    (decision,) = [e for e in events if isinstance(e, ev.BudgetDecision)]
    assert decision.choice == "stop"
    assert isinstance(events[-1], ev.SessionFinished) and events[-1].status == "stopped"
    assert server.requests == []  # nothing was spent
    assert "--on-budget continue" in stderr


def test_on_budget_continue_goes_on_and_the_day_total_is_kept(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    code, events, _ = run(cli, server, "--budget", "0.001", "--on-budget", "continue")
    assert code == 0
    assert len([e for e in events if isinstance(e, ev.BudgetExceeded)]) == 4  # asked before every chunk
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done" and final.cost_usd
    # The day's spend is counted from the session store, where every call's cost is recorded.
    spent = spent_today(facilitair_home / "data" / "sessions" / "sessions.db")
    assert spent == pytest.approx(final.cost_usd, rel=1e-9)


def test_the_daily_budget_from_the_config_counts_earlier_sessions(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    config = facilitair_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[budget]\ndaily_usd = 0.05\n", encoding="utf-8")
    code, events, _ = run(cli, server, "--on-budget", "continue")
    assert code == 0 and not [e for e in events if isinstance(e, ev.BudgetExceeded)]
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.cost_usd is not None
    # A second session the same day: what the first spent counts against the day's budget.
    runs_left = int((0.05 - final.cost_usd) // final.cost_usd)
    for _ in range(runs_left):
        run(cli, server, "--on-budget", "continue")
    code, events, _ = run(cli, server, "--on-budget", "stop")
    alerts = [e for e in events if isinstance(e, ev.BudgetExceeded)]
    assert alerts and alerts[0].scope == "day"


def test_two_sessions_at_once_count_each_others_spend(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    """Two sessions running together: each one's guard sees what the other spends meanwhile. A
    total read once at the start (or a tally written at each session's end, which also lost one
    of two writes) lets both finish, and the day's budget is passed by most of a session."""
    import subprocess
    import sys

    options = ("--on-budget", "stop", "--max-tokens", "3")  # estimates close to what is spent
    _, events, _ = run(cli, server, *options)
    one = events[-1].cost_usd  # type: ignore[attr-defined]
    # The day's budget: the session above, and room for one and a half more.
    config = facilitair_home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[budget]\ndaily_usd = {2.5 * one}\n", encoding="utf-8")
    server.script.delay_s = 0.05  # both stream at once for a while
    env = {**os.environ, "FACILITAIR_HOME": str(facilitair_home), "OPENAI_API_KEY": KEY}
    env["OPENAI_BASE_URL"] = server.base_url
    args = [sys.executable, "-m", "facilitair_tui.cli", "collaborate", "--json", "--model", "openai:gpt-4o"]
    args += ["--no-cache", *options, "Build a REST API"]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    finals = [ev.from_json(proc.communicate(timeout=120)[0].splitlines()[-1]) for proc in procs]
    assert all(isinstance(f, ev.SessionFinished) for f in finals)
    assert [f.status for f in finals].count("done") < 2  # type: ignore[attr-defined]
    total = spent_today(facilitair_home / "data" / "sessions" / "sessions.db")
    assert total == pytest.approx(one + sum(f.cost_usd for f in finals), rel=1e-9)  # type: ignore[attr-defined]
