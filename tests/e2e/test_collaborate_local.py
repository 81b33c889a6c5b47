"""End to end: ``facilitair collaborate`` on the real embedded model, no network, no key.

One ``--json`` run on the default strategy (the embedded coder model) is made for the module and
its event stream checked from several sides; one more run, on the tiny SmolLM2 since it only
checks how the output is drawn, checks the human-readable output. Outputs are capped at a few
tokens so the runs stay short; nothing here asserts on time.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.deliverable import build_deliverable
from facilitair_tui.core.session_result import result_from_events
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL, SMOLLM2
from tests.conftest import make_home, run_cli

pytestmark = pytest.mark.e2e

TASK = "Write a function that reverses a string"
MODEL = f"local:{DEFAULT_CHAT_MODEL.name}"
ROLES = ("architect", "coder", "reviewer")
SYNTHESIZER = "synthesizer"
CHUNK_TITLES = ["Requirements", "Architecture", "Implementation", "Review"]
MAX_TOKENS = 24
# Below MAX_TOKENS, so a reader starts while its upstream is still writing.
READ_AFTER = 4
ARGS = (
    "collaborate",
    "--max-tokens",
    str(MAX_TOKENS),
    "--read-after",
    str(READ_AFTER),
    TASK,
    "--context",
    "language=python",
)


def _home_for_e2e(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_home(home, monkeypatch)


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.CompletedProcess[str]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = _home_for_e2e(tmp_path_factory.mktemp("e2e-json"), monkeypatch)
        yield run_cli(ARGS[0], "--json", *ARGS[1:], home=home)


@pytest.fixture(scope="module")
def events(json_run: subprocess.CompletedProcess[str]) -> list[ev.AnyEvent]:
    assert json_run.returncode == 0, json_run.stdout[-2000:] + json_run.stderr[-2000:]
    return [ev.from_json(line) for line in json_run.stdout.splitlines()]


def _of(events: list[ev.AnyEvent], cls: type[ev.Event]) -> list[ev.AnyEvent]:
    return [e for e in events if isinstance(e, cls)]


def _by_chunk(events: list[ev.AnyEvent]) -> dict[int, list[ev.AnyEvent]]:
    """Events of each chunk, from its chunk_started up to (not including) the next."""
    chunks: dict[int, list[ev.AnyEvent]] = defaultdict(list)
    current = 0
    for event in events:
        if isinstance(event, ev.ChunkStarted):
            current = event.chunk
        if current and not isinstance(event, ev.SessionFinished) and not _uncached_note(event):
            chunks[current].append(event)
    return dict(chunks)


def _uncached_note(event: ev.AnyEvent) -> bool:
    """The session's closing note that its answer was not cached (it comes after the chunks)."""
    return isinstance(event, ev.Error) and event.message.startswith("this solution was not cached")


def _started(chunk: list[ev.AnyEvent], agent: str) -> ev.AgentStarted:
    (event,) = [e for e in chunk if isinstance(e, ev.AgentStarted) and e.agent == agent]
    return event


def _finished(chunk: list[ev.AnyEvent], agent: str) -> ev.AgentFinished:
    (event,) = [e for e in chunk if isinstance(e, ev.AgentFinished) and e.agent == agent]
    return event


def _tokens(chunk: list[ev.AnyEvent], agent: str) -> list[ev.Token]:
    return [e for e in chunk if isinstance(e, ev.Token) and e.agent == agent]


# ----------------------------------------------------------------------------- the stream itself


def test_exits_0_and_stdout_is_only_events(json_run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in json_run.stdout + json_run.stderr
    assert json_run.returncode == 0, json_run.stderr[-2000:]
    lines = json_run.stdout.splitlines()
    assert lines
    assert json_run.stdout.endswith("\n")
    for line in lines:
        ev.from_json(line)  # raises on anything that is not a valid event


def test_one_session_id_and_contiguous_seq(events: list[ev.AnyEvent]) -> None:
    assert len({e.session_id for e in events}) == 1
    assert events[0].session_id
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.v == ev.SCHEMA_VERSION for e in events)
    times = [e.t for e in events]
    assert times == sorted(times)


def test_no_errors(events: list[ev.AnyEvent]) -> None:
    errors = _of(events, ev.Error)
    # At MAX_TOKENS a synthesis is cut short, so the session, rightly, is not cached: its note
    # names the cut syntheses. Nothing else goes wrong.
    assert [e for e in errors if not _uncached_note(e)] == []
    cut = [
        e.chunk for e in _of(events, ev.AgentFinished) if e.agent == SYNTHESIZER and e.stop_reason != "end"
    ]
    if cut:
        [note] = errors
        assert all(f"chunk {chunk} was cut at max tokens" in note.message for chunk in cut)
    else:
        assert errors == []


def test_session_started_on_the_local_model(events: list[ev.AnyEvent]) -> None:
    first = events[0]
    assert isinstance(first, ev.SessionStarted)
    assert first.strategy == "local"
    assert first.task == TASK
    assert first.context == {"language": "python"}
    assert first.workflow == "default"
    assert first.models == {name: MODEL for name in (*ROLES, SYNTHESIZER)}
    assert first.chunks == CHUNK_TITLES
    assert len(_of(events, ev.SessionStarted)) == 1


def test_four_chunks_in_order(events: list[ev.AnyEvent]) -> None:
    starts = _of(events, ev.ChunkStarted)
    assert [(c.chunk, c.title, c.total) for c in starts] == [
        (i, title, 4) for i, title in enumerate(CHUNK_TITLES, start=1)
    ]
    # Between the start and the first chunk: the cache was asked (empty, so a miss).
    assert isinstance(events[1], ev.CacheChecked) and not events[1].hit
    assert isinstance(events[2], ev.ChunkStarted)
    chunks = _by_chunk(events)
    assert sorted(chunks) == [1, 2, 3, 4]
    for index, chunk in chunks.items():
        # Everything inside a chunk belongs to it.
        assert all(getattr(e, "chunk", index) == index for e in chunk)


def test_each_agent_starts_streams_and_finishes_once_per_chunk(events: list[ev.AnyEvent]) -> None:
    for index, chunk in _by_chunk(events).items():
        for agent in (*ROLES, SYNTHESIZER):
            started = _started(chunk, agent)
            finished = _finished(chunk, agent)
            tokens = _tokens(chunk, agent)
            assert started.model == MODEL
            assert started.seq < finished.seq, (index, agent)
            assert tokens, f"{agent} wrote nothing in chunk {index}"
            assert all(started.seq < t.seq < finished.seq for t in tokens), (index, agent)
            assert all(t.text for t in tokens)
            assert "".join(t.text for t in tokens).strip()
            assert finished.status == "done"
            assert finished.usage_estimated is False
            assert 1 <= finished.output_tokens <= MAX_TOKENS
            assert len(tokens) <= finished.output_tokens
            assert finished.input_tokens > 0
            assert finished.cost_usd == 0.0


def test_who_reads_whom(events: list[ev.AnyEvent]) -> None:
    for chunk in _by_chunk(events).values():
        assert _started(chunk, "architect").reads == []
        assert _started(chunk, "coder").reads == ["architect"]
        assert _started(chunk, "reviewer").reads == ["architect", "coder"]
        assert _started(chunk, SYNTHESIZER).reads == list(ROLES)


def test_the_coder_starts_while_the_architect_is_still_writing(events: list[ev.AnyEvent]) -> None:
    overlapping = 0
    for index, chunk in _by_chunk(events).items():
        architect_tokens = _tokens(chunk, "architect")
        coder = _started(chunk, "coder")
        # The coder waits for READ_AFTER of the architect's tokens, never starts before them...
        assert coder.seq > architect_tokens[min(READ_AFTER, len(architect_tokens)) - 1].seq, index
        # ...and, when the architect had more to say, starts before it is done.
        if len(architect_tokens) > READ_AFTER:
            assert coder.seq < _finished(chunk, "architect").seq, index
            overlapping += 1
    assert overlapping >= 1, "the architect never wrote more than READ_AFTER tokens"


def test_the_synthesizer_runs_after_every_agent_and_one_synthesis_ends_each_chunk(
    events: list[ev.AnyEvent],
) -> None:
    for index, chunk in _by_chunk(events).items():
        synthesizer = _started(chunk, SYNTHESIZER)
        assert all(_finished(chunk, role).seq < synthesizer.seq for role in ROLES), index
        syntheses = [e for e in chunk if isinstance(e, ev.Synthesis)]
        assert len(syntheses) == 1, index
        (synthesis,) = syntheses
        assert synthesis is chunk[-1]
        assert _finished(chunk, SYNTHESIZER).seq < synthesis.seq
        assert synthesis.text.strip()
        assert synthesis.confidence is None or 0.0 <= synthesis.confidence <= 1.0


def test_session_finished_adds_up(events: list[ev.AnyEvent]) -> None:
    last = events[-1]
    assert isinstance(last, ev.SessionFinished)
    assert len(_of(events, ev.SessionFinished)) == 1
    assert last.status == "done"
    finished = _of(events, ev.AgentFinished)
    assert len(finished) == 4 * (len(ROLES) + 1)
    assert last.output_tokens == sum(e.output_tokens for e in finished)
    assert last.input_tokens == sum(e.input_tokens for e in finished)
    assert last.cached_input_tokens == sum(e.cached_input_tokens for e in finished)
    assert last.cost_usd == 0.0
    assert last.duration_s >= 0.0


def test_what_the_agents_of_a_chunk_share_is_read_once(events: list[ev.AnyEvent]) -> None:
    """The embedded engine copies a shared prompt prefix instead of reading it again: the
    agents after the first in each chunk, and the synthesizer from the second chunk on (its
    worked example), report cached input tokens."""
    for index, chunk in _by_chunk(events).items():
        assert _finished(chunk, "architect").cached_input_tokens < _finished(chunk, "architect").input_tokens
        for role in ("coder", "reviewer"):
            assert _finished(chunk, role).cached_input_tokens > 0, (index, role)
        if index > 1:
            assert _finished(chunk, SYNTHESIZER).cached_input_tokens > 0, index


def test_the_output_is_the_document_built_from_the_syntheses(events: list[ev.AnyEvent]) -> None:
    last = events[-1]
    assert isinstance(last, ev.SessionFinished)
    assert last.output.startswith(f"# {TASK}\n")
    # The closing event's output is the deliverable's document of the syntheses the run emitted.
    result = result_from_events(events, load_workflow())
    assert result is not None and result.status == "done"
    assert last.output == build_deliverable(result).document
    headings = [last.output.index(f"\n## {title}\n") for title in CHUNK_TITLES]
    assert headings == sorted(headings)


# ----------------------------------------------------------------------------- the rendered view


def test_rendered_run_without_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = _home_for_e2e(tmp_path / "home", monkeypatch)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    proc = run_cli(*ARGS, "--model", f"local:{SMOLLM2.name}", home=home)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    for index, title in enumerate(CHUNK_TITLES, start=1):
        assert f"Chunk {index}/4: {title}" in out
        assert f"Chunk {index} synthesis" in out
    assert "Collaboration complete" in out
    assert "Collaborative Session" in out
    assert TASK in out
    assert "language=python" in out
    assert "$0.0000" in out
    # Not a terminal: no escape codes for the live footer.
    assert "\x1b[" not in out
    assert '"type":' not in out
