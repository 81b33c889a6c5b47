"""End to end: ``facilitair collaborate`` against a local server speaking OpenAI's streaming format.

The real CLI, the real ``openai`` SDK and a real HTTP server on loopback: the run's events, its
exact cost, and that a recognisable fake key never shows up in anything the program printed or
wrote, on success and on an authentication failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from tests.conftest import CliRunner
from tests.support.openai_sse_server import OpenAISSEServer, Script

pytestmark = pytest.mark.e2e

FAKE_KEY = "sk-test-RECOGNISABLE-k3y-0123456789"
DELTAS = ["AGREED:\n- ", "use FastAPI", "\nMERGED:\n", "A small ", "REST API."]


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script = Script(deltas=DELTAS, prompt_tokens=120, completion_tokens=len(DELTAS))
        yield srv


def _run(cli: CliRunner, server: OpenAISSEServer) -> subprocess.CompletedProcess[str]:
    return cli(
        "collaborate",
        "--json",
        "--model",
        "openai:gpt-4o-mini",
        "Build a REST API with JWT auth",
        env={"OPENAI_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": server.base_url},
    )


def _every_file_under(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]


def test_a_run_on_an_openai_compatible_endpoint(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    proc = _run(cli, server)
    assert proc.returncode == 0, proc.stderr

    events = [ev.from_json(line) for line in proc.stdout.splitlines()]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finished = [e for e in events if isinstance(e, ev.AgentFinished)]
    assert len(finished) == 16 and all(e.status == "done" for e in finished)
    # Cost is the price table times the usage the server reported, exactly.
    per_call = (120 * 0.15 + len(DELTAS) * 0.60) / 1e6
    assert all(e.cost_usd == pytest.approx(per_call, rel=1e-12) for e in finished)
    assert all((e.input_tokens, e.output_tokens, e.usage_estimated) == (120, 5, False) for e in finished)
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done"
    assert final.cost_usd == pytest.approx(16 * per_call, rel=1e-12)
    syntheses = [e for e in events if isinstance(e, ev.Synthesis)]
    assert [s.agreed for s in syntheses] == [["use FastAPI"]] * 4
    assert all(s.text == "A small REST API." for s in syntheses)

    # The key went to the server, and nowhere else.
    assert len(server.requests) == 16
    assert all(r.headers["authorization"] == f"Bearer {FAKE_KEY}" for r in server.requests)
    assert FAKE_KEY not in proc.stdout + proc.stderr
    for path in _every_file_under(facilitair_home):
        assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_an_authentication_failure_is_a_clear_error_without_the_key(
    cli: CliRunner,
    facilitair_home: Path,
    server: OpenAISSEServer,
) -> None:
    server.script = Script(status=401, echo_auth_in_error=True)
    proc = _run(cli, server)

    assert proc.returncode == 3
    assert "Traceback" not in proc.stdout + proc.stderr
    assert FAKE_KEY not in proc.stdout + proc.stderr
    events = [ev.from_json(line) for line in proc.stdout.splitlines()]
    errors = [e for e in events if isinstance(e, ev.Error)]
    assert any("OPENAI_API_KEY" in e.message for e in errors if e.agent)
    assert errors[-1].recoverable is False
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "failed"
