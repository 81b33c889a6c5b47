"""Resume and fork: a session that continues a recorded one, through the real engine and store.

A session is recorded in a real store and cut after chunk 2 (as a crash would leave it). The
continuation built from the store reuses chunks 1-2: no model is called for them, and the
prompts of chunks 3-4 are exactly the ones the uncut session sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, Continuation, SessionSpec
from facilitair_tui.core.provider import UsageError
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.store import SessionStore
from tests.support.scripted import chunk_of, record_cut
from tests.unit.test_orchestrator import TASK, WORKFLOW, Script, run

CONTEXT = {"language": "python"}


def spec(continuation: Continuation | None = None) -> SessionSpec:
    return SessionSpec(
        task=TASK, workflow=WORKFLOW, strategy="test", context=CONTEXT, continuation=continuation
    )


def session(continuation: Continuation | None = None) -> tuple[Collaboration, ScriptedProvider]:
    provider = ScriptedProvider(Script())
    collab = Collaboration(spec(continuation), SingleProviderResolver(provider), retry=NO_RETRY)
    return collab, provider


async def record_until(store: SessionStore, chunks_done: int) -> tuple[str, ScriptedProvider]:
    """A whole session recorded only to the end of chunk ``chunks_done`` (a crash), and its provider."""
    collab, provider = session()
    return await record_cut(store, collab, chunks_done), provider


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    opened = SessionStore.open(tmp_path / "sessions.db")
    yield opened  # type: ignore[misc]
    opened.close()


def continuation_of(store: SessionStore, sid: str, **changes: object) -> Continuation:
    stored = store.load(sid)
    feedback = stored.pending_feedback(len(stored.syntheses))
    return Continuation(parent_id=sid, chunks=stored.syntheses, feedback=feedback, **changes)  # type: ignore[arg-type]


async def test_a_resume_reuses_finished_chunks_without_a_model_call_and_sends_the_same_prompts(
    store: SessionStore,
) -> None:
    parent, uncut = await record_until(store, chunks_done=2)
    [summary] = store.list()
    assert (summary.status, summary.chunks_done, summary.resumable) == ("interrupted", 2, True)

    resumed, provider = session(continuation_of(store, parent))
    recorder = store.recorder(resumed.spec, resumed.session_id)
    events = await run(resumed, recorder.record)

    # No model call for chunks 1-2; chunks 3-4 asked exactly what the uncut session asked.
    assert sorted({chunk_of(call.request) for call in provider.calls}) == [3, 4]
    original = [c.request for c in uncut.calls if chunk_of(c.request) > 2]
    assert sorted(map(repr, (c.request for c in provider.calls))) == sorted(map(repr, original))

    started = events[0]
    assert isinstance(started, ev.SessionStarted)
    assert (started.parent_id, started.reused_chunks, started.change) == (parent, 2, "")
    syntheses = [e for e in events if isinstance(e, ev.Synthesis)]
    assert [s.chunk for s in syntheses] == [1, 2, 3, 4]

    def content(s: ev.Synthesis) -> tuple[object, ...]:
        return (s.chunk, s.agreed, s.debated, s.confidence, s.text, s.parsed)

    assert [content(s) for s in syntheses[:2]] == [content(s) for s in store.load(parent).syntheses]
    finished = events[-1]
    assert isinstance(finished, ev.SessionFinished) and finished.status == "done"
    # The whole document, reused chunks included.
    for title in ("Requirements", "Architecture", "Implementation", "Review"):
        assert f"\n## {title}\n" in finished.output
    # Only the calls it made are its cost: 2 chunks x 4 calls.
    assert len([e for e in events if isinstance(e, ev.AgentFinished)]) == 8

    summaries = {s.id: s for s in store.list()}
    child = summaries[resumed.session_id]
    assert (child.parent_id, child.reused_chunks, child.status) == (parent, 2, "done")
    assert store.events(resumed.session_id) == events


async def test_a_fork_with_new_feedback_shapes_only_the_chunks_that_run(store: SessionStore) -> None:
    parent, _ = await record_until(store, chunks_done=4)
    base = continuation_of(store, parent)
    fork = Continuation(
        parent_id=parent,
        chunks=base.chunks[:1],
        feedback={2: ["use PostgreSQL"]},
        change="feedback: use PostgreSQL",
    )
    forked, provider = session(fork)
    events = await run(forked)
    assert sorted({chunk_of(call.request) for call in provider.calls}) == [2, 3, 4]
    with_feedback = {
        chunk_of(c.request) for c in provider.calls if "use PostgreSQL" in c.request.messages[-1].content
    }
    assert with_feedback == {2}
    [feedback] = [e for e in events if isinstance(e, ev.Feedback)]
    assert (feedback.chunk, feedback.text) == (2, "use PostgreSQL")
    # The feedback is announced after the reused chunk, before chunk 2 starts.
    order = [type(e).__name__ for e in events[:6]]
    assert order[:5] == ["SessionStarted", "ChunkStarted", "Synthesis", "Feedback", "ChunkStarted"]


async def test_pending_feedback_of_an_interrupted_session_carries_into_its_resume(
    store: SessionStore,
) -> None:
    collab, _ = session()
    recorder = store.recorder(collab.spec, collab.session_id)
    stream = collab.events()
    async for event in stream:
        recorder.record(event)
        if isinstance(event, ev.Synthesis) and event.chunk == 1:
            collab.inject_feedback("add rate limiting", "next_chunk")  # for chunk 2, which never finishes
        if isinstance(event, ev.AgentStarted) and event.chunk == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    recorder.close()
    continuation = continuation_of(store, collab.session_id)
    assert continuation.feedback == {2: ["add rate limiting"]} and len(continuation.chunks) == 1
    resumed, provider = session(continuation)
    await run(resumed)
    chunk_2 = [c for c in provider.calls if chunk_of(c.request) == 2]
    assert chunk_2 and all("add rate limiting" in c.request.messages[-1].content for c in chunk_2)


def test_a_continuation_must_leave_something_to_run_and_reuse_chunks_in_order() -> None:
    all_four = [
        ev.Synthesis(session_id="p", chunk=n, agreed=[], debated=[], confidence=None, text="x")
        for n in range(1, 5)
    ]
    with pytest.raises(UsageError, match="nothing would run"):
        spec(Continuation(parent_id="p", chunks=all_four))
    with pytest.raises(UsageError, match="chunks 1 to N"):
        spec(Continuation(parent_id="p", chunks=all_four[1:2]))
    with pytest.raises(UsageError, match="feedback for chunk 1 cannot apply"):
        spec(Continuation(parent_id="p", chunks=all_four[:1], feedback={1: ["late"]}))
