"""End to end: a real OpenAI-compatible server, llama-cpp-python's ``[server]`` on the embedded GGUF.

``facilitair collaborate --model openai:smollm2`` with ``OPENAI_BASE_URL`` pointing at
``python -m llama_cpp.server`` on loopback: the same path a user takes with Ollama, vLLM or LM
Studio. The server is started with ``--interrupt_requests False`` so the roles' concurrent
streams queue instead of cutting each other off (it generates one stream at a time).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.embedded_models import SMOLLM2
from tests.conftest import CliRunner

pytestmark = pytest.mark.e2e

ALIAS = "smollm2"
FAKE_KEY = "sk-test-LLAMA-SERVER-key-0123456789"
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """Whether the server lists its models (straight to loopback: no proxy from the environment)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/v1/models")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@pytest.fixture
def llama_server(facilitair_home: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(SMOLLM2.path),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--interrupt_requests",
        "False",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    # Its log goes to a file: llama.cpp writes a lot while loading, and an unread pipe would fill.
    log = tmp_path / "llama-server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if _answers(port):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_collaboration_runs_on_a_real_local_openai_compatible_server(
    cli: CliRunner, facilitair_home: Path, llama_server: str
) -> None:
    proc = cli(
        "collaborate",
        "--json",
        "--model",
        f"openai:{ALIAS}",
        "--max-tokens",
        "16",
        "Write a function that reverses a string",
        env={"OPENAI_BASE_URL": llama_server, "OPENAI_API_KEY": FAKE_KEY},
    )
    assert proc.returncode == 0, proc.stderr
    events = [ev.from_json(line) for line in proc.stdout.splitlines()]
    finished = [e for e in events if isinstance(e, ev.AgentFinished)]
    errors = [e.message for e in events if isinstance(e, ev.Error)]
    assert len(finished) == 16 and all(e.status == "done" for e in finished), errors
    # This server reports no usage in a stream: the counts come from the tokenizer, marked estimated.
    assert all(e.usage_estimated and e.output_tokens > 0 and e.input_tokens > 0 for e in finished)
    tokens = [e for e in events if isinstance(e, ev.Token)]
    assert tokens and all(e.text for e in tokens)
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done" and final.output.strip()
    # A self-hosted model has no price: unknown, never a made-up figure.
    assert final.cost_usd is None
    assert FAKE_KEY not in proc.stdout + proc.stderr
