"""``facilitair eval humaneval`` on the embedded model: offline, no key, HumanEval from its wheel.

One problem in each mode (the bench runs all 164): the single call and the team both answer,
the official test runs in the sandbox, and the team's session can be replayed.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import CliRunner

pytestmark = pytest.mark.e2e


def test_humaneval_runs_offline_on_the_embedded_model(cli: CliRunner) -> None:
    no_keys = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "OPENROUTER_API_KEY": ""}
    for mode in (["--single"], []):
        done = cli("eval", "humaneval", "--limit", "1", "--json", *mode, env=no_keys)
        assert done.returncode == 0, done.stderr
        *results, summary = [json.loads(line) for line in done.stdout.splitlines()]
        assert [r["task_id"] for r in results] == ["HumanEval/0"]
        assert summary["problems"] == 1 and summary["output_tokens"] > 0
    assert results[0]["session_id"]
    replay = cli("sessions", "replay", results[0]["session_id"], "--json", "--speed", "instant")
    assert '"code_run"' in replay.stdout
