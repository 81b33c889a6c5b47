"""End to end: ``facilitair collaborate --cache ask|auto|off`` when the cache holds a solution
that is close to the new task but not proven the same.

The real CLI in its own process, on a real terminal (a pseudo-terminal) where it should ask,
the real ``openai`` SDK against a local server speaking OpenAI's streaming format, and the real
cache on disk. Whether the agents ran is read from the server: a request means a model call.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from tests.conftest import CliRunner
from tests.support.openai_sse_server import OpenAISSEServer, Script

pytestmark = pytest.mark.e2e

KEY = "sk-test-offer-0123456789abcdef"
DELTAS = ["AGREED:\n- ", "paginate with cursors", "\nCONFIDENCE: 0.7\nMERGED:\n", "Cursor ", "pagination."]
CONTEXT = "--context=language=Python"
FIRST = "Add cursor-based pagination to the orders endpoint"
CLOSE = "Paginate the orders endpoint using cursors"  # the same work, not proven: offered
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script = Script(deltas=DELTAS, prompt_tokens=100, completion_tokens=len(DELTAS))
        yield srv


def env_for(server: OpenAISSEServer) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url}


@pytest.fixture
def cached(cli: CliRunner, server: OpenAISSEServer) -> OpenAISSEServer:
    """The cache holds the first task's solution."""
    proc = cli("collaborate", "--model", "openai:gpt-4o-mini", "--json", CONTEXT, FIRST, env=env_for(server))
    assert proc.returncode == 0, proc.stderr
    assert server.requests
    return server


def on_terminal(home: Path, server: OpenAISSEServer, *args: str, answer: str | None) -> tuple[int, str]:
    """Run ``facilitair ARGS`` on a pseudo-terminal; type ``answer`` when asked whether to use the
    cached answer (None: fail if asked). Returns the exit code and what the terminal showed."""
    master, slave = pty.openpty()
    env = {**os.environ, "FACILITAIR_HOME": str(home), **env_for(server), "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "facilitair_tui.cli.main", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    shown = ""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                raise AssertionError(f"the CLI went silent; it showed:\n{shown}")
            try:
                chunk = os.read(master, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and "Use the cached answer?" in ANSI.sub("", shown):
                assert answer is not None, f"the CLI asked although it should not:\n{shown}"
                os.write(master, answer.encode() + b"\r")
                answered = True
    finally:
        code = proc.wait(timeout=120)
        os.close(master)
    if answer is not None:
        assert answered, f"the CLI never asked; it showed:\n{shown}"
    return code, ANSI.sub("", shown)


def collaborate(*options: str) -> tuple[str, ...]:
    return ("collaborate", "--model", "openai:gpt-4o-mini", *options, CONTEXT, CLOSE)


def stats(cli: CliRunner) -> dict[str, object]:
    proc = cli("cache", "stats", "--json")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_ask_on_a_terminal_shows_the_offer_and_y_uses_the_cached_answer(
    cli: CliRunner, facilitair_home: Path, cached: OpenAISSEServer
) -> None:
    calls = len(cached.requests)
    code, shown = on_terminal(facilitair_home, cached, *collaborate("--cache", "ask"), answer="y")
    assert code == 0, shown
    assert len(cached.requests) == calls, "a cached answer taken must not call the model"
    assert "A cached answer may fit this task" in shown
    assert FIRST in shown and "cursor" in shown.lower()
    assert "offered and taken" in shown
    assert stats(cli)["accepted"] == 1


def test_ask_on_a_terminal_and_n_runs_the_agents(
    cli: CliRunner, facilitair_home: Path, cached: OpenAISSEServer
) -> None:
    calls = len(cached.requests)
    code, shown = on_terminal(facilitair_home, cached, *collaborate(), answer="n")  # ask is the default
    assert code == 0, shown
    assert len(cached.requests) > calls
    assert "offered and declined" in shown
    counted = stats(cli)
    assert (counted["offers"], counted["accepted"], counted["declined"]) == (1, 0, 1)


def test_auto_never_asks_and_serves_only_what_is_proven_the_same(
    cli: CliRunner, facilitair_home: Path, cached: OpenAISSEServer
) -> None:
    calls = len(cached.requests)
    code, shown = on_terminal(facilitair_home, cached, *collaborate("--cache", "auto"), answer=None)
    assert code == 0, shown
    assert len(cached.requests) > calls, "an offer unasked is a miss: the agents run"
    calls = len(cached.requests)
    same = ("collaborate", "--model", "openai:gpt-4o-mini", "--cache", "auto", CONTEXT, FIRST.lower() + ".")
    code, shown = on_terminal(facilitair_home, cached, *same, answer=None)
    assert code == 0 and len(cached.requests) == calls, "the same task is served"
    assert "Found a cached solution" in shown


def test_without_a_terminal_ask_is_auto_and_json_never_asks(
    cli: CliRunner, facilitair_home: Path, cached: OpenAISSEServer
) -> None:
    proc = cli(*collaborate("--json"), env=env_for(cached))
    assert proc.returncode == 0, proc.stderr
    (checked,) = [e for e in map(ev.from_json, proc.stdout.splitlines()) if isinstance(e, ev.CacheChecked)]
    assert (checked.decision, checked.hit, checked.task) == ("offer", False, FIRST)
    # The run just made is its own entry now: the same task again is served, proven the same.
    proc = cli(*collaborate(), env=env_for(cached))  # pipes, not a terminal: nothing to ask
    assert proc.returncode == 0, proc.stderr
    assert "Use the cached answer?" not in proc.stdout + proc.stderr
    assert "Found a cached solution" in proc.stdout
    counted = stats(cli)
    assert (counted["offers"], counted["accepted"], counted["declined"], counted["hits"]) == (1, 0, 0, 1)


def test_off_neither_asks_nor_stores(cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer) -> None:
    proc = cli(*collaborate("--json", "--cache", "off"), env=env_for(server))
    assert proc.returncode == 0, proc.stderr
    assert not [e for e in map(ev.from_json, proc.stdout.splitlines()) if isinstance(e, ev.CacheChecked)]
    assert stats(cli)["entries"] == 0
