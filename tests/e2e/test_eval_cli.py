"""End to end: ``facilitair eval`` on a three-problem file, the team and one call, through the
real CLI, the real ``openai`` SDK against a local server, and the real sandbox.

The server answers as a small model would: ``add`` right at once, ``mul`` wrong until it is told
which example failed, ``neg`` always wrong. So one call passes 1 of 3 and the team 2 of 3. Each
problem's official test carries a marker that must never appear in anything sent to a model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI_TIMEOUT_S, CliRunner, with_env
from tests.support.openai_sse_server import OpenAISSEServer, Script
from tests.support.team_session import deltas, last_prompt

pytestmark = pytest.mark.e2e

KEY = "sk-test-eval-0123456789abcdef"
MARK = "OFFICIAL-TEST-NEVER-SHOWN"
MODEL = "openai:gpt-4o-mini"

PROBLEMS = [
    ("add", "a + b", [("2, 3", "5")], [("2, 3", "5"), ("-1, 1", "0")]),
    ("mul", "a * b", [("2, 4", "8")], [("2, 4", "8"), ("3, 3", "9")]),
    ("neg", "-a", [("2", "-2")], [("2", "-2"), ("0", "0")]),
]
WRONG = {"add": "a + b", "mul": "a + b + 1", "neg": "a"}
REPAIRED = {"add": "a + b", "mul": "a * b", "neg": "a"}


def problem(name: str, examples: list[tuple[str, str]], checks: list[tuple[str, str]]) -> dict[str, str]:
    args = "a, b" if "," in examples[0][0] else "a"
    doc = "\n".join(f"    >>> {name}({call})\n    {out}" for call, out in examples)
    prompt = f'def {name}({args}):\n    """Compute it.\n{doc}\n    """\n'
    asserts = "\n".join(f"    assert candidate({call}) == {out}" for call, out in checks)
    test = f"# {MARK}\n\ndef check(candidate):\n{asserts}\n"
    return {"task_id": f"Toy/{name}", "prompt": prompt, "entry_point": name, "test": test}


def answer(body: Any) -> Script:
    prompt = last_prompt(body)
    name = next(n for n, *_ in PROBLEMS if f"def {n}(" in json.dumps(body["messages"]))
    args = "a, b" if name in ("add", "mul") else "a"
    if "Do not write" in prompt:
        return Script(
            deltas=deltas(f"```python\nassert {name}({'1, 1' if args == 'a, b' else '1'}) is not None\n```")
        )
    body_text = REPAIRED[name] if "I ran your function on tests" in prompt else WRONG[name]
    return Script(deltas=deltas(f"```python\ndef {name}({args}):\n    return {body_text}\n```"))


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script_for = answer
        yield srv


@pytest.fixture
def problems_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(problem(n, e, c)) + "\n" for n, _, e, c in PROBLEMS))
    return path


@pytest.fixture
def run(cli: CliRunner, server: OpenAISSEServer) -> CliRunner:
    return with_env(cli, {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url})


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_one_call_and_the_team_on_three_problems(
    run: CliRunner, server: OpenAISSEServer, problems_file: Path
) -> None:
    single = run("eval", str(problems_file), "--single", "--model", MODEL, "--json")
    assert single.returncode == 0, single.stderr
    *results, summary = lines(single.stdout)
    assert [(r["task_id"], r["passed"]) for r in results] == [
        ("Toy/add", True),
        ("Toy/mul", False),
        ("Toy/neg", False),
    ]
    assert set(results[0]) >= {"task_id", "passed", "input_tokens", "output_tokens", "cost_usd", "duration_s"}
    assert summary["type"] == "eval_summary" and summary["mode"] == "single"
    assert (summary["problems"], summary["passed"]) == (3, 1)
    assert len(server.requests) == 3  # one call per problem

    team = run("eval", str(problems_file), "--model", MODEL, "--json")
    assert team.returncode == 0, team.stderr
    *results, summary = lines(team.stdout)
    assert [r["passed"] for r in results] == [True, True, False]
    assert summary["mode"] == "team" and summary["pass_at_1"] == round(2 / 3, 4)
    assert all(r["session_id"] for r in results)  # each problem is a recorded session
    assert all(MARK not in json.dumps(r.body) for r in server.requests)

    report = run("eval", "report", "--json")
    comparison = lines(report.stdout)[0]["comparisons"][0]
    assert comparison["problems"] == 3 and comparison["points"] == pytest.approx(33.3)
    replay = run("sessions", "replay", results[1]["session_id"], "--json", "--speed", "instant")
    assert '"type":"code_run"' in replay.stdout.replace(" ", "")


def test_an_interrupted_run_goes_on_where_it_stopped(
    facilitair_home: Path, server: OpenAISSEServer, problems_file: Path, run: CliRunner
) -> None:
    env = {**os.environ, "FACILITAIR_HOME": str(facilitair_home), "OPENAI_API_KEY": KEY}
    env["OPENAI_BASE_URL"] = server.base_url
    args = [sys.executable, "-m", "facilitair_tui.cli.main", "eval", str(problems_file), "--single"]
    process = subprocess.Popen(
        [*args, "--model", MODEL, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = json.loads(process.stdout.readline())
    process.send_signal(signal.SIGKILL)  # the hardest stop there is: no clean-up runs
    process.wait(timeout=CLI_TIMEOUT_S)
    asked = len(server.requests)
    assert asked < 3
    again = run("eval", str(problems_file), "--single", "--model", MODEL, "--json")
    *results, summary = lines(again.stdout)
    assert results[0] == first  # kept, not asked again
    assert summary["problems"] == 3
    assert len(server.requests) == asked + 2  # the two problems not kept, and nothing more


def test_bad_input_gets_one_line(run: CliRunner, tmp_path: Path) -> None:
    missing = run("eval", str(tmp_path / "nope.jsonl"), "--model", MODEL)
    assert (
        missing.returncode != 0 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x", "prompt": "p"}\n')
    broken = run("eval", str(bad), "--model", MODEL)
    assert "line 1" in broken.stderr and "entry_point" in broken.stderr
    both = run("eval", "humaneval", "--model", MODEL, "--strategy", "local")
    assert "not both" in both.stderr
