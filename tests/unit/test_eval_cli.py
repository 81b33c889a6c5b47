"""``facilitair eval`` as a real process, on three toy problems (tests/support/eval_problems.py),
with the real ``openai`` SDK against the local test server and the real sandbox; no real model.

One call passes 1 of 3 (``add``), the team 2 (its repair round fixes ``mul``). Each problem's
official test carries a marker that must never appear in anything sent to a model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI_TIMEOUT_S, run_cli
from tests.support.eval_problems import MARK, answer, asked_about, write_problems
from tests.support.openai_sse_server import OpenAISSEServer, Script
from tests.support.team_session import last_prompt

KEY = "sk-test-eval-0123456789abcdef"
MODEL = "openai:gpt-4o-mini"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def environment(server: OpenAISSEServer) -> dict[str, str]:
    """The test server's URL and key; no other provider's key of the developer's shell."""
    keys = ("OPENROUTER_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url, **dict.fromkeys(keys, "")}


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def is_coder_first_call(body: Any) -> bool:
    prompt = last_prompt(body)
    return "Do not write" not in prompt and "I ran your function" not in prompt


@dataclass
class Runs:
    """One call and the team on the same three problems, in one home."""

    home: Path
    server: OpenAISSEServer
    single: subprocess.CompletedProcess[str]
    team: subprocess.CompletedProcess[str]
    single_requests: list[Any]
    team_requests: list[Any]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        # Wide enough that the report's table never wraps a cell.
        return run_cli(*args, home=self.home, env={**environment(self.server), "COLUMNS": "200"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    home = tmp_path_factory.mktemp("eval-home")
    problems = write_problems(home / "toy.jsonl")
    with OpenAISSEServer() as server:
        server.script_for = answer
        env = environment(server)
        single = run_cli("eval", str(problems), "--single", "--model", MODEL, "--json", home=home, env=env)
        asked = len(server.requests)
        team = run_cli("eval", str(problems), "--model", MODEL, "--json", home=home, env=env)
        bodies = [r.body for r in server.requests]
        yield Runs(home, server, single, team, bodies[:asked], bodies[asked:])


def test_one_call_per_problem_and_its_results(runs: Runs) -> None:
    assert runs.single.returncode == 0, runs.single.stderr
    *results, summary = lines(runs.single.stdout)
    assert [(r["task_id"], r["passed"]) for r in results] == [
        ("Toy/add", True),
        ("Toy/mul", False),
        ("Toy/neg", False),
    ]
    for r in results:
        assert set(r) >= {"task_id", "passed", "input_tokens", "output_tokens", "cost_usd", "duration_s"}
        assert r["input_tokens"] > 0 and r["output_tokens"] > 0 and r["session_id"] is None
    assert summary["type"] == "eval_summary" and summary["mode"] == "single"
    assert (summary["problems"], summary["passed"], summary["pass_at_1"]) == (3, 1, round(1 / 3, 4))
    assert summary["input_tokens"] == sum(r["input_tokens"] for r in results)
    assert summary["output_tokens"] == sum(r["output_tokens"] for r in results)
    assert [asked_about(body) for body in runs.single_requests] == ["add", "mul", "neg"]


def test_the_team_answers_as_recorded_sessions(runs: Runs) -> None:
    assert runs.team.returncode == 0, runs.team.stderr
    *results, summary = lines(runs.team.stdout)
    assert [(r["task_id"], r["passed"]) for r in results] == [
        ("Toy/add", True),
        ("Toy/mul", True),
        ("Toy/neg", False),
    ]
    assert summary["mode"] == "team" and (summary["problems"], summary["passed"]) == (3, 2)
    assert summary["pass_at_1"] == round(2 / 3, 4) and summary["status"] == "done"
    assert all(r["session_id"] for r in results)
    replay = runs.cli("sessions", "replay", results[1]["session_id"], "--json", "--speed", "instant")
    events = [e["type"] for e in lines(replay.stdout)]
    assert "code_run" in events and events[-1] == "session_finished"


def test_the_single_call_is_the_team_coders_first_call(runs: Runs) -> None:
    firsts = [b for b in runs.team_requests if is_coder_first_call(b)]
    for single in runs.single_requests:
        team = next(b for b in firsts if asked_about(b) == asked_about(single))
        for key in ("messages", "temperature", "max_tokens", "max_completion_tokens"):
            assert single.get(key) == team.get(key), key


def test_the_official_test_never_reaches_a_prompt(runs: Runs) -> None:
    bodies = runs.single_requests + runs.team_requests
    assert bodies and all(MARK not in json.dumps(body) for body in bodies)
    assert all("def check(" not in json.dumps(body) for body in bodies)


def test_report_compares_the_team_with_one_call(runs: Runs) -> None:
    report = runs.cli("eval", "report", "--json")
    assert report.returncode == 0, report.stderr
    (data,) = lines(report.stdout)
    assert [(r["mode"], r["done"], r["total"], r["passed"]) for r in data["runs"]] == [
        ("single", 3, 3, 1),
        ("team", 3, 3, 2),
    ]
    (comparison,) = data["comparisons"]
    assert comparison["problems"] == 3 and comparison["points"] == pytest.approx(33.3)
    assert (comparison["team_pass_at_1"], comparison["single_pass_at_1"]) == (
        round(2 / 3, 4),
        round(1 / 3, 4),
    )
    assert comparison["token_ratio"] > 1  # the team made more calls than one

    text = runs.cli("eval", "report")
    assert "+33.3 points" in text.stdout and "toy.jsonl" in text.stdout and MODEL in text.stdout


def test_without_json_a_line_per_problem_and_a_summary(tmp_path: Path) -> None:
    problems = write_problems(tmp_path / "toy.jsonl")
    with OpenAISSEServer() as server:
        server.script_for = answer
        done = run_cli(
            "eval", str(problems), "--single", "--model", MODEL, home=tmp_path, env=environment(server)
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Toy/add: passed" in out and "Toy/neg: failed" in out
    assert "Toy/mul: failed (candidate(2, 4) returned 7, expected 8)" in out  # why, from the check
    assert "3/3, pass@1 33.3%" in out
    assert "single: 1 of 3 passed (pass@1 33.3%)" in out


def held(problem: str, holding: list[bool]) -> Any:
    """``answer``, except that while ``holding[0]`` the answer to ``problem`` stalls after one
    delta: a run can be stopped with that problem under way."""

    def script(body: Any) -> Script:
        scripted = answer(body)
        if holding[0] and asked_about(body) == problem:
            scripted.fault, scripted.fault_after, scripted.stall_s = "stall", 1, 30.0
        return scripted

    return script


@pytest.mark.parametrize(
    ("stop", "mode"),
    [(signal.SIGINT, "single"), (signal.SIGINT, "team"), (signal.SIGKILL, "single")],
    ids=["ctrl-c-single", "ctrl-c-team", "kill-single"],
)
def test_an_interrupted_run_goes_on_where_it_stopped(tmp_path: Path, stop: signal.Signals, mode: str) -> None:
    problems = write_problems(tmp_path / "toy.jsonl", count=4)
    args = ["eval", str(problems), "--limit", "3", "--model", MODEL, "--json"]
    if mode == "single":
        args.append("--single")
    holding = [True]
    with OpenAISSEServer() as server:
        server.script_for = held("mul", holding)
        env = {**os.environ, "FACILITAIR_HOME": str(tmp_path), **environment(server)}
        process = subprocess.Popen(
            [sys.executable, "-m", "facilitair_tui.cli.main", *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # add's result, committed before it is shown
        assert first["task_id"] == "Toy/add"
        process.send_signal(stop)
        rest, errors = process.communicate(timeout=CLI_TIMEOUT_S)
        if stop == signal.SIGINT:  # stopped cleanly: what was done, and how to go on
            assert process.returncode == EXIT_INTERRUPTED, errors
            (summary,) = lines(rest)
            assert (summary["status"], summary["problems"], summary["total"]) == ("stopped", 1, 3)
            assert "run the same command again" in errors and "Traceback" not in errors
            if mode == "team":  # mul's session was stopped, and recorded as such
                listed = run_cli("sessions", "list", "--json", home=tmp_path)
                statuses = sorted(s["status"] for s in json.loads(listed.stdout))
                assert statuses == ["done", "stopped"]
        asked = len(server.requests)

        holding[0] = False
        again = run_cli(*args, home=tmp_path, env=environment(server))
        assert again.returncode == 0, again.stderr
        *results, summary = lines(again.stdout)
        assert results[0] == first  # kept, not asked again
        assert [r["task_id"] for r in results] == ["Toy/add", "Toy/mul", "Toy/neg"]
        assert (summary["problems"], summary["total"], summary["status"]) == (3, 3, "done")
        assert summary["passed"] == (1 if mode == "single" else 2)
        # Only the rest ran: mul (stopped, so not kept) and neg; nothing more, never sub (the limit).
        again_asked = {asked_about(r.body) for r in server.requests[asked:]}
        assert again_asked == {"mul", "neg"}
        if mode == "single":
            assert len(server.requests) == asked + 2


@dataclass(frozen=True)
class BadInput:
    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()


BAD_INPUTS = [
    BadInput("missing-file", ("eval", "{dir}/nope.jsonl"), ("nope.jsonl", "does not exist")),
    BadInput(
        "field-missing",
        ("eval", "{dir}/bad.jsonl"),
        ("bad.jsonl, line 2", "missing field 'entry_point'"),
        (
            (
                "bad.jsonl",
                '{"task_id": "a", "prompt": "p", "entry_point": "f", "test": "t"}\n'
                '{"task_id": "b", "prompt": "p", "test": "t"}\n',
            ),
        ),
    ),
    BadInput(
        "not-json", ("eval", "{dir}/bad.jsonl"), ("bad.jsonl, line 1", "not JSON"), (("bad.jsonl", "{\n"),)
    ),
    BadInput(
        "strategy-and-model", ("eval", "humaneval", "--strategy", "local", "--model", MODEL), ("not both",)
    ),
    BadInput("limit-zero", ("eval", "humaneval", "--limit", "0"), ("--limit must be at least 1",)),
    BadInput("report-with-options", ("eval", "report", "--single"), ("only --json", "--single")),
    BadInput(
        "workflow-without-code",
        ("eval", "humaneval", "--workflow", "default", "--model", MODEL),
        ("'default'", "[code]"),
    ),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_bad_input_gets_one_line(case: BadInput, as_json: bool, tmp_path: Path) -> None:
    for name, text in case.files:
        (tmp_path / name).write_text(text, encoding="utf-8")
    args = [a.replace("{dir}", str(tmp_path)) for a in case.args]
    if as_json:
        args.append("--json")
    done = run_cli(*args, home=tmp_path, env={"OPENAI_API_KEY": KEY})
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    if as_json:
        (event,) = lines(done.stdout)
        assert event["type"] == "error"
        message = event["message"]
    else:
        assert done.stdout == ""
        (message,) = done.stderr.strip().splitlines()
        assert message.startswith("error: ")
    for fragment in case.says:
        assert fragment in message


def test_the_teams_sessions_are_traced_when_a_collector_is_configured(tmp_path: Path) -> None:
    from tests.support.otlp_receiver import OTLPReceiver

    problems = write_problems(tmp_path / "toy.jsonl")
    with OpenAISSEServer() as server, OTLPReceiver() as receiver:
        server.script_for = answer
        env = {**environment(server), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        team = run_cli("eval", str(problems), "--model", MODEL, "--json", home=tmp_path, env=env)
        assert team.returncode == 0, team.stderr
        single = run_cli(
            "eval", str(problems), "--single", "--model", MODEL, "--json", home=tmp_path, env=env
        )
        assert single.returncode == 0, single.stderr
    roots = [s for s in receiver.spans if not s.parent_id]
    sessions = {r["session_id"] for r in lines(team.stdout)[:-1]}
    # One trace per team session, the problems' sessions; the single calls are no sessions.
    assert len(roots) == 3 and {r.attributes["facilitair.session.id"] for r in roots} == sessions
