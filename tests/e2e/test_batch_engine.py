"""The embedded model's batched engine, on the real SmolLM2 weights (greedy, so answers repeat).

Sequences join and leave a running batch, one is paused or cancelled while the others go on, a
prefix read once and shared gives the same text as reading it again, a consumer that stops
taking text holds its own sequence only, and ``kill -9`` in the middle of a batched decode
leaves a database that passes its checks and a session that resumes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facilitair_tui.core.provider import ChatMessage, ChatRequest, TextDelta, Usage
from facilitair_tui.embedded_models import SMOLLM2
from facilitair_tui.providers.llama_batch import BatchEngine, Finished, Handle, Sampling
from facilitair_tui.providers.local import LocalModelProvider
from tests.conftest import CLI_TIMEOUT_S, run_cli

pytestmark = pytest.mark.e2e

GREEDY = Sampling(temperature=0.0)
WAIT_S = 120.0


class Run:
    """One sequence's text as it comes, and how it ended."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.finished: Finished | None = None
        self.done = threading.Event()
        self.started = threading.Event()
        self.handle: Handle | None = None
        self._lock = threading.Lock()

    def on_text(self, text: str) -> None:
        with self._lock:
            self.pieces.append(text)
        self.started.set()
        assert self.handle is not None
        self.handle.taken()

    def on_done(self, finished: Finished) -> None:
        self.finished = finished
        self.done.set()

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self.pieces)

    def count(self) -> int:
        with self._lock:
            return len(self.pieces)

    def wait(self) -> Finished:
        assert self.done.wait(WAIT_S), "the sequence did not finish"
        assert self.finished is not None
        return self.finished


@pytest.fixture(scope="module")
def smollm2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import make_home

    with pytest.MonkeyPatch.context() as patch:
        make_home(tmp_path_factory.mktemp("engine-home"), patch)
        return SMOLLM2.location


@pytest.fixture
def engine(smollm2_path: Path) -> Iterator[BatchEngine]:
    """An engine without its thread: the test steps it, so every run takes the same steps."""
    made = BatchEngine(smollm2_path, sequences=4, n_ctx_seq=2048, threads=2, run=False)
    try:
        yield made
    finally:
        made.close()


def prompt(engine: BatchEngine, question: str, system: str = "You are a helpful assistant.") -> list[int]:
    return engine.tokenize(
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )


def start(engine: BatchEngine, tokens: list[int], max_tokens: int) -> Run:
    run = Run()
    run.handle = engine.submit(
        tokens, max_tokens=max_tokens, sampling=GREEDY, on_text=run.on_text, on_done=run.on_done
    )
    return run


def drive(engine: BatchEngine, until: Callable[[], bool], limit: int = 2000) -> None:
    """Step the engine until ``until()`` holds."""
    for _ in range(limit):
        if until():
            return
        engine.tick()
    raise AssertionError("the engine did not get there")


def alone(engine: BatchEngine, tokens: list[int], max_tokens: int) -> str:
    run = start(engine, tokens, max_tokens)
    drive(engine, run.done.is_set)
    return run.text


LONG = "Explain, step by step, how a hash map handles collisions."
OTHER = "Write a haiku about the sea."
# Two questions of the same length in tokens, for runs whose steps are the same in every size.
SHORT = ("Name three primary colors.", "Name three common metals.")


def test_sequences_join_and_leave_a_running_batch_and_never_see_each_others_tokens(
    smollm2_path: Path,
) -> None:
    """The same steps twice, the joining sequence asked another question of the same length the
    second time: what the others write must not change (each attends to its own cells only)."""
    texts = []
    for short_question in SHORT:
        engine = BatchEngine(smollm2_path, sequences=4, n_ctx_seq=2048, threads=2, run=False)
        try:
            long_run = start(engine, prompt(engine, LONG), 60)
            drive(engine, lambda: long_run.count() >= 8)  # noqa: B023 (called here, not later)
            short = start(engine, prompt(engine, short_question), 10)  # joins while the long one writes
            drive(engine, short.done.is_set)
            assert not long_run.done.is_set(), "the short sequence should leave while the long one writes"
            other = start(engine, prompt(engine, OTHER), 16)  # joins after the short one has left
            drive(engine, lambda: other.done.is_set() and long_run.done.is_set())  # noqa: B023
            assert short.wait().output_tokens == 10 and other.wait().error is None
            assert long_run.wait().output_tokens == 60
            assert engine.stats.peak_batch >= 2, "the sequences should have been decoded together"
            written = sum(r.wait().output_tokens for r in (long_run, short, other))
            assert engine.stats.steps < written, "a step should serve several sequences at once"
            texts.append((long_run.text, short.text, other.text))
        finally:
            engine.close()
    (long_a, short_a, other_a), (long_b, short_b, other_b) = texts
    assert short_a != short_b
    assert long_a == long_b
    assert other_a == other_b


def test_a_sequence_that_found_the_batch_full_says_how_long_it_waited_for_a_slot(smollm2_path: Path) -> None:
    engine = BatchEngine(smollm2_path, sequences=1, n_ctx_seq=2048, threads=2, run=False)
    try:
        first = start(engine, prompt(engine, SHORT[0]), 10)
        second = start(engine, prompt(engine, SHORT[1]), 10)  # one slot: it waits for the first
        drive(engine, lambda: first.done.is_set() and second.done.is_set())
        # The first had its slot at the first step; the second only once the first had written
        # all its tokens, so it reports the longer wait (what the waterfall draws as a wait).
        assert second.wait().queued_s > first.wait().queued_s >= 0.0
    finally:
        engine.close()


def test_a_paused_sequence_waits_while_another_runs_and_then_ends_as_it_would_have(
    engine: BatchEngine,
) -> None:
    first_p = prompt(engine, LONG)
    expected = alone(engine, first_p, 40)

    paused = start(engine, first_p, 40)
    drive(engine, lambda: paused.count() >= 5)
    assert paused.handle is not None
    paused.handle.pause()
    held_at = paused.count()
    other = start(engine, prompt(engine, OTHER), 40)
    drive(engine, other.done.is_set)
    assert other.wait().error is None and other.wait().output_tokens > 0
    assert paused.count() == held_at and not paused.done.is_set()
    paused.handle.pause(False)
    drive(engine, paused.done.is_set)
    assert paused.text == expected


def test_a_cancelled_sequence_leaves_and_the_others_finish(engine: BatchEngine) -> None:
    runs = [start(engine, prompt(engine, q), 48) for q in (LONG, SHORT[0], OTHER)]
    drive(engine, lambda: runs[0].count() >= 5)
    assert runs[0].handle is not None
    runs[0].handle.cancel()
    written = runs[0].count()
    engine.tick()
    assert runs[0].wait().error == "cancelled"
    drive(engine, lambda: all(r.done.is_set() for r in runs[1:]))
    assert runs[0].count() == written
    for run in runs[1:]:
        finished = run.wait()
        assert finished.error is None and finished.output_tokens > 0


def test_a_shared_prefix_gives_the_same_text_as_reading_it_again(smollm2_path: Path) -> None:
    """The same steps with and without prefix sharing: after the first, the others copy the
    system text's cells (or, for the same prompt, all of it but the last token)."""
    system = (
        "You are one of a team of agents. The task: build a URL shortener with click statistics, "
        "in Python with FastAPI. Earlier stages agreed on a SQLite table of links and a table of clicks. "
        "Requirements: short codes of seven characters, a redirect in under 50 ms, counts per day and per "
        "country, links that expire, and an admin page that lists the most clicked links of the week."
    )
    questions = ("As the architect, list the endpoints.", "As the reviewer, list the risks.")
    texts: dict[bool, list[str]] = {}
    reused: dict[bool, list[int]] = {}
    for share in (False, True):
        engine = BatchEngine(
            smollm2_path, sequences=4, n_ctx_seq=2048, threads=2, share_prefixes=share, run=False
        )
        try:
            runs = []
            for question in (questions[0], questions[1], questions[0]):
                runs.append(start(engine, prompt(engine, question, system), 40))
                drive(engine, runs[-1].done.is_set)
            finished = [run.wait() for run in runs]
            texts[share] = [run.text for run in runs]
            reused[share] = [f.reused_tokens for f in finished]
            computed = engine.stats.computed_tokens
            system_part = len(engine.tokenize(f"<|im_start|>system\n{system}<|im_end|>\n"))
        finally:
            engine.close()
        assert computed == sum(f.prompt_tokens for f in finished) - sum(reused[share])
    assert texts[True] == texts[False]
    assert reused[False] == [0, 0, 0]
    assert reused[True][0] == 0
    assert reused[True][1] == system_part // 64 * 64 > 0  # whole pieces of the system text
    assert reused[True][2] == (finished[2].prompt_tokens - 1) // 64 * 64  # whole pieces of it


def test_a_consumer_that_stops_taking_text_holds_its_own_stream_only(facilitair_home: Path) -> None:
    provider = LocalModelProvider(max_contexts=2, threads=2, hold_after=4)

    def request(question: str) -> ChatRequest:
        return ChatRequest(
            model=SMOLLM2.name,
            messages=(ChatMessage("user", question),),
            max_tokens=64,
            temperature=0.0,
        )

    async def scenario() -> tuple[int, int, Usage | None]:
        lagging = provider.stream(request(LONG))
        first = await anext(lagging)
        assert isinstance(first, TextDelta)
        written = 0
        usage = None
        async for item in provider.stream(request(OTHER)):
            if isinstance(item, TextDelta):
                written += 1
            else:
                usage = item
        stats = provider.engine_stats()[SMOLLM2.name]
        lagging_tokens = stats.output_tokens - (usage.output_tokens if usage else 0)
        await lagging.aclose()
        await provider.aclose()
        return written, lagging_tokens, usage

    written, lagging_tokens, usage = asyncio.run(scenario())
    assert usage is not None and usage.output_tokens == written and written > 8
    # one taken, four waiting, and at most the token being decoded when it was held
    assert lagging_tokens <= 1 + 4 + 1


def test_kill_during_a_batched_decode_leaves_the_store_sound_and_the_session_resumes(
    facilitair_home: Path,
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facilitair_tui.cli.main",
            "collaborate",
            "--json",
            "--model",
            f"local:{SMOLLM2.name}",
            "--max-tokens",
            "48",
            "A command-line todo list that keeps its items in a JSON file",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "FACILITAIR_HOME": str(facilitair_home)},
        cwd=facilitair_home,
    )
    assert proc.stdout is not None
    writing: set[str] = set()
    session_id = ""
    killed = False
    try:
        for line in proc.stdout:
            event = json.loads(line)
            session_id = session_id or event.get("session_id", "")
            if event["type"] == "token" and event["chunk"] == 1:
                writing.add(event["agent"])
            elif event["type"] == "agent_finished" and event["chunk"] == 1:
                writing.discard(event["agent"])
            if len(writing) >= 2:  # two agents' sequences are in the batch: kill mid-decode
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
    finally:
        proc.kill()
        proc.wait(CLI_TIMEOUT_S)
    assert killed, "two agents never wrote at the same time"
    db = facilitair_home / "data" / "sessions" / "sessions.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    listed = run_cli("sessions", "list", "--json", home=facilitair_home)
    assert listed.returncode == 0, listed.stderr
    status = {s["id"]: s["status"] for s in json.loads(listed.stdout)}
    assert status[session_id] == "interrupted"
    resumed = run_cli("sessions", "resume", session_id[:10], "--json", home=facilitair_home)
    assert resumed.returncode == 0, resumed.stderr
    finished = [json.loads(line) for line in resumed.stdout.splitlines() if '"session_finished"' in line]
    assert finished and finished[-1]["status"] == "done"
