"""The code workflow: the coder's function and the tester's tests, run in the real sandbox,
failures sent back for repair, the candidate that passes most tests kept; each run a
``code_run`` event that the store keeps and a replay plays."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.code_run import RunRequest
from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ChatRequest, ModelRef
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver
from facilitair_tui.replay import Replay, replay_workflow
from facilitair_tui.sandbox import Sandbox
from facilitair_tui.store import SessionStore

WORKFLOW = load_workflow("code")
TASK = '''Complete the following Python function.
```python
def double(n: int) -> int:
    """Return twice n.
    >>> double(2)
    4
    >>> double(-3)
    -6
    """
```'''
WRONG = "```python\ndef double(n: int) -> int:\n    return n + 2\n```"
RIGHT = "```python\ndef double(n: int) -> int:\n    return 2 * n\n```"
TESTS = "```python\nassert double(0) == 0\nassert double(5) == 10\n```"


def role_of(request: ChatRequest) -> str:
    last = request.messages[-1].content
    if "Do not write `double`" in last:
        return "tester"
    return "repair" if "I ran your function on tests" in last else "coder"


def team(answers: dict[str, list[str]]) -> ScriptedProvider:
    """Each kind of request answered from its list, in turn (the last answer repeats)."""
    asked: dict[str, int] = {}

    def reply(request: ChatRequest) -> Reply:
        kind = role_of(request)
        replies = answers[kind]
        index = asked.get(kind, 0)
        asked[kind] = index + 1
        return Reply(deltas=[replies[min(index, len(replies) - 1)]])

    return ScriptedProvider(reply)


def session(provider: ScriptedProvider, **options: object) -> Collaboration:
    spec = SessionSpec(
        task=TASK, workflow=WORKFLOW, strategy="local", model_override=ModelRef.parse("scripted:m")
    )
    return Collaboration(spec, SingleProviderResolver(provider), retry=NO_RETRY, **options)  # type: ignore[arg-type]


def run(collaboration: Collaboration) -> list[ev.Event]:
    async def go() -> list[ev.Event]:
        return [event async for event in collaboration.events()]

    return asyncio.run(go())


def of(events: list[ev.Event], kind: type[ev.Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_a_failing_function_is_repaired_from_the_failures() -> None:
    provider = team({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    events = run(session(provider, runner=Sandbox()))
    runs = of(events, ev.CodeRun)
    assert [(r.chunk, r.candidate, r.status) for r in runs] == [(1, 1, "ran"), (2, 1, "ran")]
    first, repaired = runs
    assert first.failed > 0 and repaired.failed == 0
    assert "double(-3) returned -1, expected -6" in [t.message for t in first.tests]
    # The repair prompt carries the failures; the official wording of the task's examples first.
    repair = next(c.request for c in provider.calls if role_of(c.request) == "repair")
    assert "double(-3) returned -1, expected -6" in repair.messages[-1].content
    finished = of(events, ev.SessionFinished)[0]
    assert finished.status == "done"
    assert "return 2 * n" in finished.output
    syntheses = of(events, ev.Synthesis)
    assert len(syntheses) == 2  # settled after the first repair: no third chunk
    assert syntheses[-1].confidence_parts is not None and syntheses[-1].confidence_parts.failed == 0


def test_a_right_first_answer_ends_the_session_after_one_chunk() -> None:
    provider = team({"coder": [RIGHT], "tester": [TESTS], "repair": [WRONG]})
    events = run(session(provider, runner=Sandbox()))
    assert len(of(events, ev.ChunkStarted)) == 1
    assert not any(role_of(c.request) == "repair" for c in provider.calls)


def test_a_worse_repair_never_replaces_a_better_answer() -> None:
    half = "```python\ndef double(n: int) -> int:\n    return 4 if n == 2 else n\n```"
    provider = team({"coder": [half, WRONG], "tester": [TESTS], "repair": [WRONG]})
    events = run(session(provider, runner=Sandbox()))
    assert "4 if n == 2" in of(events, ev.SessionFinished)[0].output


def test_a_refused_run_is_reported_skipped_and_nothing_is_repaired() -> None:
    asked: list[RunRequest] = []

    async def refuse(request: RunRequest) -> bool:
        asked.append(request)
        return False

    provider = team({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    events = run(session(provider, runner=Sandbox(), approve=refuse))
    assert len(asked) == 1 and "n + 2" in asked[0].code
    assert [r.status for r in of(events, ev.CodeRun)] == ["skipped"]
    assert len(of(events, ev.ChunkStarted)) == 1


def test_code_runs_are_stored_and_replayed(tmp_path: Path) -> None:
    provider = team({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    collaboration = session(provider, runner=Sandbox())
    store = SessionStore.open(tmp_path / "sessions.db")

    async def record() -> list[ev.Event]:
        recorder = store.recorder(collaboration.spec, collaboration.session_id)
        seen = []
        async for event in collaboration.events():
            await recorder.record_async(event)
            seen.append(event)
        return seen

    live = asyncio.run(record())
    stored = list(store.events(collaboration.session_id))
    store.close()
    assert [ev.to_dict(e) for e in of(stored, ev.CodeRun)] == [ev.to_dict(e) for e in of(live, ev.CodeRun)]
    replay = Replay(stored, replay_workflow(stored, [WORKFLOW]), speed=float("inf"))

    async def play() -> list[ev.Event]:
        return [event async for event in replay.events()]

    assert len(of(asyncio.run(play()), ev.CodeRun)) == 2


@pytest.mark.parametrize("bad", ["no code at all, just words", "```python\ndef double(:\n```"])
def test_an_answer_without_code_that_parses_is_reported_as_such(bad: str) -> None:
    provider = team({"coder": [bad], "tester": [TESTS], "repair": [RIGHT]})
    events = run(session(provider, runner=Sandbox()))
    runs = of(events, ev.CodeRun)
    assert runs[0].status == "error" and runs[0].passed == 0
    assert of(events, ev.SessionFinished)[0].status == "done"


def test_the_default_workflow_runs_the_implementation_and_the_review_reads_the_result() -> None:
    code = (
        "```python\ndef slug(text):\n    return text.lower().replace(' ', '-')\n\n\n"
        "def test_slug():\n    assert slug('A B') == 'a-b'\n\n\n"
        "def test_empty():\n    assert slug('') == 'x'\n```"
    )

    def reply(request: ChatRequest) -> Reply:
        system, last = request.messages[0].content, request.messages[-1].content
        if "Current stage: Implementation." in system and last.startswith("You are the coder"):
            return Reply(deltas=[code])
        return Reply(deltas=["- a point"])

    provider = ScriptedProvider(reply)
    spec = SessionSpec(
        task="Make slugs",
        workflow=load_workflow(),
        strategy="local",
        model_override=ModelRef.parse("scripted:m"),
    )
    events = run(Collaboration(spec, SingleProviderResolver(provider), retry=NO_RETRY, runner=Sandbox()))
    (ran,) = of(events, ev.CodeRun)
    assert (ran.chunk, ran.agent, ran.passed, ran.failed) == (3, "coder", 1, 1)
    assert "slug('') returned '', expected 'x'" in [t.message for t in ran.tests]
    synthesis = of(events, ev.Synthesis)[2]
    assert synthesis.confidence_parts is not None and synthesis.confidence_parts.failed == 1
    review = [c.request for c in provider.calls if "Current stage: Review." in c.request.messages[0].content]
    assert review and all("1 of 2 tests passed" in r.messages[0].content for r in review)


def test_without_a_runner_the_default_workflow_runs_nothing() -> None:
    spec = SessionSpec(
        task="Make slugs",
        workflow=load_workflow(),
        strategy="local",
        model_override=ModelRef.parse("scripted:m"),
    )
    provider = ScriptedProvider(lambda request: Reply(deltas=["```python\nx = 1\n```"]))
    events = run(Collaboration(spec, SingleProviderResolver(provider), retry=NO_RETRY))
    assert of(events, ev.CodeRun) == []
