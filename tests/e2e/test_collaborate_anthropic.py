"""End to end: ``facilitair collaborate`` on the Anthropic Messages API, through the gateway.

The real CLI, the real ``anthropic`` SDK, a real HTTP server on loopback speaking Anthropic's
streaming format (``ANTHROPIC_BASE_URL``): exact cost from the reported usage (cache reads at
their own price), a 529 overloaded answer and a stream broken midway recovered without losing
or repeating text, and a recognisable fake key nowhere but in the requests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from tests.conftest import CliRunner
from tests.support.anthropic_sse_server import AnthropicSSEServer, Script

pytestmark = pytest.mark.e2e

FAKE_KEY = "sk-ant-test-RECOGNISABLE-k3y-0123456789"
DELTAS = ["AGREED:\n- ", "use FastAPI", "\nMERGED:\n", "A small ", "REST API."]
MODEL = "anthropic:claude-haiku-4-5"  # $1.00 in, $0.10 cached in, $5.00 out per million


@pytest.fixture
def server() -> Iterator[AnthropicSSEServer]:
    with AnthropicSSEServer() as srv:
        srv.script = Script(deltas=DELTAS, input_tokens=100, cache_read_input_tokens=40, output_tokens=5)
        yield srv


def _run(cli: CliRunner, server: AnthropicSSEServer) -> subprocess.CompletedProcess[str]:
    return cli(
        "collaborate",
        "--json",
        "--model",
        MODEL,
        "Build a REST API with JWT auth",
        env={"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": server.base_url},
    )


def _events(proc: subprocess.CompletedProcess[str]) -> list[ev.Event]:
    return [ev.from_json(line) for line in proc.stdout.splitlines()]


def _assert_key_only_in_requests(
    proc: subprocess.CompletedProcess[str], home: Path, server: AnthropicSSEServer
) -> None:
    assert all(
        FAKE_KEY in (r.headers.get("x-api-key", "") + r.headers.get("authorization", ""))
        for r in server.requests
    )
    assert FAKE_KEY not in proc.stdout + proc.stderr
    for path in (p for p in home.rglob("*") if p.is_file() and not p.is_symlink()):
        assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_a_run_on_the_messages_api_costs_exactly_the_price_times_the_usage(
    cli: CliRunner, facilitair_home: Path, server: AnthropicSSEServer
) -> None:
    proc = _run(cli, server)
    assert proc.returncode == 0, proc.stderr
    events = _events(proc)
    finished = [e for e in events if isinstance(e, ev.AgentFinished)]
    assert len(finished) == 16 and all(e.status == "done" for e in finished)
    # 140 input tokens of which 40 cache reads, 5 output tokens.
    per_call = (100 * 1.00 + 40 * 0.10 + 5 * 5.00) / 1e6
    assert all((e.input_tokens, e.output_tokens, e.usage_estimated) == (140, 5, False) for e in finished)
    assert all(e.cost_usd == pytest.approx(per_call, rel=1e-12) for e in finished)
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done"
    assert final.cost_usd == pytest.approx(16 * per_call, rel=1e-12)
    assert all(s.text == "A small REST API." for s in events if isinstance(s, ev.Synthesis))
    body = server.requests[0].body
    assert body["model"] == "claude-haiku-4-5" and body["stream"] is True and "system" in body
    _assert_key_only_in_requests(proc, facilitair_home, server)


def test_overloaded_and_broken_streams_are_recovered_without_losing_or_repeating_text(
    cli: CliRunner, facilitair_home: Path, server: AnthropicSSEServer
) -> None:
    # The first call is refused (529), its retry breaks after two deltas with an in-stream
    # overloaded error, and the continuation sends the rest; every later call is clean.
    server.enqueue(
        Script(status=529, error_type="overloaded_error", error_message="Overloaded", retry_after="0"),
        Script(deltas=DELTAS, fault="error_event", fault_after=2),
        Script(deltas=DELTAS[2:]),
    )
    proc = _run(cli, server)
    assert proc.returncode == 0, proc.stderr
    events = _events(proc)
    first = [e for e in events if getattr(e, "agent", None) == "architect" and getattr(e, "chunk", 0) == 1]
    tokens = "".join(e.text for e in first if isinstance(e, ev.Token))
    assert tokens == "".join(DELTAS)  # once each, in order
    notes = [e.message for e in first if isinstance(e, ev.Error)]
    assert len(notes) == 2 and all(e.recoverable for e in first if isinstance(e, ev.Error))
    assert "HTTP 529" in notes[0] and "Retrying in" in notes[0]
    assert "overloaded" in notes[1].lower() and "continuing from the" in notes[1]
    continuation = server.requests[2].body["messages"]
    assert continuation[-2] == {"role": "assistant", "content": "".join(DELTAS[:2])}
    (done,) = [e for e in first if isinstance(e, ev.AgentFinished)]
    assert done.status == "done" and done.usage_estimated  # the broken attempt's usage is estimated
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done"
    _assert_key_only_in_requests(proc, facilitair_home, server)


def test_a_rejected_key_fails_fast_naming_the_fix_and_never_the_key(
    cli: CliRunner, facilitair_home: Path, server: AnthropicSSEServer
) -> None:
    server.script = Script(
        status=401,
        error_type="authentication_error",
        error_message="invalid x-api-key",
        echo_key_in_error=True,
    )
    proc = _run(cli, server)
    assert proc.returncode != 0
    events = _events(proc)
    errors = [e for e in events if isinstance(e, ev.Error)]
    assert errors and "authentication" in errors[0].message and "ANTHROPIC_API_KEY" in errors[0].message
    # Not retried: one request per agent of chunk 1, then the session ends.
    assert len(server.requests) == 3
    _assert_key_only_in_requests(proc, facilitair_home, server)
