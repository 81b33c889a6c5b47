"""End to end: the second ``facilitair collaborate`` of an equivalent task is served from the cache.

The real CLI, the real ``openai`` SDK against a local server speaking OpenAI's streaming format,
the real embedder and cache on disk. The second run's task is worded differently and its context
written with other case, spacing and list order: it must be served without a single request to
the server, with the reason shown.
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

KEY = "sk-test-cache-0123456789abcdef"
DELTAS = ["AGREED:\n- ", "paginate with cursors", "\nCONFIDENCE: 0.7\nMERGED:\n", "Cursor ", "pagination."]
FIRST = (
    "Add cursor-based pagination to the orders endpoint",
    "language=Python",
    "frameworks=FastAPI,SQLAlchemy",
)
SECOND = (
    "add cursor based pagination to the orders endpoint.",
    "language= python",
    "frameworks=sqlalchemy, fastapi",
)


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script = Script(deltas=DELTAS, prompt_tokens=100, completion_tokens=len(DELTAS))
        yield srv


def collaborate(
    cli: CliRunner, server: OpenAISSEServer, task: str, *context: str, json: bool = True, fresh: bool = False
) -> subprocess.CompletedProcess[str]:
    options = (
        [f"--context={c}" for c in context] + (["--json"] if json else []) + (["--no-cache"] if fresh else [])
    )
    return cli(
        "collaborate",
        "--model",
        "openai:gpt-4o-mini",
        *options,
        task,
        env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url},
    )


def events_of(proc: subprocess.CompletedProcess[str]) -> list[ev.AnyEvent]:
    assert proc.returncode == 0, proc.stderr
    return [ev.from_json(line) for line in proc.stdout.splitlines()]


def test_the_second_equivalent_run_is_served_from_the_cache_with_its_reason(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    first = events_of(collaborate(cli, server, *FIRST))
    checked = [e for e in first if isinstance(e, ev.CacheChecked)]
    assert [c.hit for c in checked] == [False]
    original = first[-1]
    assert isinstance(original, ev.SessionFinished) and original.status == "done" and not original.from_cache
    calls = len(server.requests)
    assert calls == 16

    second = events_of(collaborate(cli, server, *SECOND))
    assert len(server.requests) == calls, "a cached answer must not call the model"
    (hit,) = [e for e in second if isinstance(e, ev.CacheChecked)]
    assert hit.hit and hit.entry_id and hit.similarity is not None and hit.similarity > 0.9
    assert "same language, frameworks" in hit.matched_on
    assert hit.saved_usd == pytest.approx(original.cost_usd) and hit.saved_s == pytest.approx(
        original.duration_s
    )
    assert hit.context == {"language": "Python", "frameworks": "FastAPI,SQLAlchemy"}
    # The same events a live run makes: each chunk's start and synthesis, then the end.
    assert [type(e) for e in second[2:]] == [ev.ChunkStarted, ev.Synthesis] * 4 + [ev.SessionFinished]
    assert [e.text for e in second if isinstance(e, ev.Synthesis)] == [
        e.text for e in first if isinstance(e, ev.Synthesis)
    ]
    served = second[-1]
    assert isinstance(served, ev.SessionFinished)
    assert served.from_cache and served.status == "done" and served.output == original.output
    assert served.cost_usd == 0.0 and served.input_tokens == served.output_tokens == 0

    # On the terminal: the seeds' line, with the reason and how to run fresh.
    shown = collaborate(cli, server, *SECOND, json=False)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "Found a cached solution (" in text and "% match), cached just now" in text
    assert "context: Python, FastAPI,SQLAlchemy" in text
    assert "Why:" in text and "--no-cache" in text
    assert len(server.requests) == calls

    # --no-cache runs the agents again.
    fresh = events_of(collaborate(cli, server, *SECOND, fresh=True))
    assert not any(isinstance(e, ev.CacheChecked) for e in fresh)
    assert len(server.requests) == 2 * calls


def test_another_context_is_not_served_and_the_miss_says_why(
    cli: CliRunner, facilitair_home: Path, server: OpenAISSEServer
) -> None:
    events_of(collaborate(cli, server, *FIRST))
    calls = len(server.requests)
    second = events_of(collaborate(cli, server, FIRST[0], "language=Go", FIRST[2]))
    (miss,) = [e for e in second if isinstance(e, ev.CacheChecked)]
    assert not miss.hit and "language: go ≠ python" in miss.matched_on
    assert len(server.requests) == 2 * calls
