"""Behaviour of the engine (``Collaboration``), driven end to end by scripted models.

Every assertion is about events, prompts and provider calls, never about how long something
took. Scripts without a delay make the interleaving a pure function of the event loop's FIFO
order, so these runs are deterministic; the one test with delays only relies on orderings that
hold with large margins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.confidence import Embed, agreement
from facilitair_tui.core.cost import PriceTable, add_costs
from facilitair_tui.core.gateway import NO_RETRY, rough_token_count
from facilitair_tui.core.orchestrator import MAX_TASK_CHARS, Collaboration, SessionSpec
from facilitair_tui.core.prompts import EXAMPLE_TASK, synthesis_example
from facilitair_tui.core.provider import ChatRequest, ModelRef, Usage, UsageError
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import Call, Reply, ScriptedProvider, SingleProviderResolver
from tests.support.documents import section
from tests.support.scripted import TITLES, chunk_of

# --------------------------------------------------------------------------------------- setup

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
ROLES = ("architect", "coder", "reviewer")
SYNTH = "synthesizer"
AGENTS = (*ROLES, SYNTH)
TASK = "Build a URL shortener"
E = TypeVar("E", bound=ev.Event)
# Only a guard so that a hung session fails the test instead of blocking the suite; no
# assertion depends on it.
DEADLINE_S = 10.0

_SYSTEM_PROMPTS = {
    "You are the architect.": "architect",
    "You are the coder.": "coder",
    "You are the reviewer.": "reviewer",
    "Merge.": SYNTH,
}


def agent_of(request: ChatRequest) -> str:
    """Which role a request is for, by its role prompt (so it works with a model override): the
    synthesizer's system message, or the start of an agent's request (an agent's system message
    is what the chunk's agents share)."""
    for prompt, role in _SYSTEM_PROMPTS.items():
        if request.messages[0].content == prompt or request.messages[1].content.startswith(prompt):
            return role
    raise KeyError(request.messages[1].content[:80])


def agent_deltas(agent: str, chunk: int, n: int = 6) -> list[str]:
    """Unique, whitespace-free deltas: "A2.0;", "A2.1;", ... for the architect in chunk 2."""
    return [f"{agent[0].upper()}{chunk}.{i};" for i in range(n)]


def merged_text(chunk: int) -> str:
    return f"Merged plan of chunk {chunk}: short codes, SQLite, no cache yet."


def synthesis_reply(chunk: int) -> str:
    return (
        "AGREED:\n"
        f"- short codes of 7 characters (chunk {chunk})\n"
        "- store links in SQLite\n"
        "DEBATED:\n"
        f"- caching in chunk {chunk} | architect: add Redis | coder: no cache yet\n"
        "CONFIDENCE: 0.8\n"
        "MERGED:\n"
        f"{merged_text(chunk)}"
    )


def synthesis_deltas(chunk: int) -> list[str]:
    return synthesis_reply(chunk).splitlines(keepends=True)


def default_deltas(agent: str, chunk: int) -> list[str]:
    return synthesis_deltas(chunk) if agent == SYNTH else agent_deltas(agent, chunk)


@dataclass
class Script:
    """The reply function: each (agent, chunk) streams its default deltas unless overridden."""

    delays: dict[str, float] = field(default_factory=dict)
    n_deltas: dict[str, int] = field(default_factory=dict)
    replies: dict[tuple[str, int], Reply] = field(default_factory=dict)

    def reply(self, agent: str, chunk: int) -> Reply:
        if (agent, chunk) in self.replies:
            return self.replies[agent, chunk]
        if agent == SYNTH:
            deltas = synthesis_deltas(chunk)
        else:
            deltas = agent_deltas(agent, chunk, self.n_deltas.get(agent, 6))
        return Reply(deltas, delay_s=self.delays.get(agent, 0.0))

    def deltas(self, agent: str, chunk: int) -> list[str]:
        return list(self.reply(agent, chunk).deltas)

    def full_text(self, agent: str, chunk: int) -> str:
        return "".join(self.deltas(agent, chunk))

    def __call__(self, request: ChatRequest) -> Reply:
        return self.reply(agent_of(request), chunk_of(request))


@dataclass
class Harness:
    collab: Collaboration
    provider: ScriptedProvider
    script: Script


def make(
    script: Script | None = None,
    *,
    model_override: ModelRef | None = None,
    token_buffer: int = 1024,
    embed: Embed | None = None,
) -> Harness:
    script = script or Script()
    provider = ScriptedProvider(script)
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", model_override=model_override)
    # One attempt per call: these tests are about the engine; the gateway's retries have their own.
    collab = Collaboration(
        spec, SingleProviderResolver(provider), retry=NO_RETRY, token_buffer=token_buffer, embed=embed
    )
    return Harness(collab, provider, script)


async def run(
    collab: Collaboration,
    on_event: Callable[[ev.Event], None] | None = None,
    *,
    stream: AsyncIterator[ev.Event] | None = None,
) -> list[ev.Event]:
    """Drive a session to its end; ``on_event`` sees each event as it is consumed.

    ``stream`` is an iterator already made with ``collab.events()`` (to act before the first event).
    """
    iterator = stream if stream is not None else collab.events()
    events: list[ev.Event] = []
    async with asyncio.timeout(DEADLINE_S):
        async for event in iterator:
            events.append(event)
            if on_event is not None:
                on_event(event)
    return events


async def let_loop_run(iterations: int = 50) -> None:
    for _ in range(iterations):
        await asyncio.sleep(0)


def expected_deliveries(script: Script, call: Call) -> int:
    reply = script(call.request)
    if reply.fail_after is None:
        return len(reply.deltas)
    return min(reply.fail_after, len(reply.deltas))


def streaming_agents(h: Harness) -> set[str]:
    """Agents whose model call is still streaming (it has deltas left to deliver)."""
    return {
        agent_of(c.request) for c in h.provider.calls if len(c.delivered) < expected_deliveries(h.script, c)
    }


async def until_idle(h: Harness) -> None:
    """Wait until every call made so far has streamed all it will, then let the loop run on.

    After this, anything the engine could do without starting a new model call is done.
    """
    while streaming_agents(h):  # noqa: ASYNC110 - the provider offers no event to wait on
        await asyncio.sleep(0)
    await let_loop_run()


def delivered_total(provider: ScriptedProvider) -> int:
    return sum(len(c.delivered) for c in provider.calls)


# ------------------------------------------------------------------------------------ queries


def of_type(events: Sequence[ev.Event], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]


def tokens(events: Sequence[ev.Event], agent: str, chunk: int) -> list[ev.Token]:
    return [e for e in of_type(events, ev.Token) if e.agent == agent and e.chunk == chunk]


def text_of(events: Sequence[ev.Event], agent: str, chunk: int) -> str:
    return "".join(t.text for t in tokens(events, agent, chunk))


def started(events: Sequence[ev.Event], agent: str, chunk: int) -> list[ev.AgentStarted]:
    return [e for e in of_type(events, ev.AgentStarted) if e.agent == agent and e.chunk == chunk]


def finished(events: Sequence[ev.Event], agent: str, chunk: int) -> list[ev.AgentFinished]:
    return [e for e in of_type(events, ev.AgentFinished) if e.agent == agent and e.chunk == chunk]


def synthesis(events: Sequence[ev.Event], chunk: int) -> ev.Synthesis:
    (found,) = [e for e in of_type(events, ev.Synthesis) if e.chunk == chunk]
    return found


def attempts(events: Sequence[ev.Event], agent: str, chunk: int) -> list[str]:
    """The text of each attempt of an agent on a chunk (an attempt begins at its agent_started)."""
    texts: list[str] = []
    for e in events:
        if isinstance(e, ev.AgentStarted) and e.agent == agent and e.chunk == chunk:
            texts.append("")
        elif isinstance(e, ev.Token) and e.agent == agent and e.chunk == chunk:
            texts[-1] += e.text
    return texts


def calls_of(provider: ScriptedProvider, agent: str, chunk: int) -> list[Call]:
    return [c for c in provider.calls if agent_of(c.request) == agent and chunk_of(c.request) == chunk]


def prompt(call: Call) -> str:
    """What the model was told: an agent's shared system text and its request, or the
    synthesizer's request (after its worked example)."""
    messages = call.request.messages
    if len(messages) == 2:
        return f"{messages[0].content}\n\n{messages[1].content}"
    return messages[-1].content


def position(events: Sequence[ev.Event], event: ev.Event) -> int:
    return next(i for i, e in enumerate(events) if e is event)


def is_token(event: ev.Event, agent: str, chunk: int, index: int) -> bool:
    """The ``index``-th (0-based) default delta of ``agent`` in ``chunk``."""
    return (
        isinstance(event, ev.Token)
        and event.agent == agent
        and event.chunk == chunk
        and event.text == default_deltas(agent, chunk)[index]
    )


def final_of(events: Sequence[ev.Event]) -> ev.SessionFinished:
    final = events[-1]
    assert isinstance(final, ev.SessionFinished)
    return final


# --------------------------------------------------------------------------------- invariants


def assert_well_formed(events: Sequence[ev.Event], collab: Collaboration) -> None:
    """What holds for every session, whatever happened in it."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.session_id for e in events} == {collab.session_id}
    assert len(of_type(events, ev.SessionFinished)) == 1
    final = final_of(events)
    assert len(of_type(events, ev.SessionStarted)) == 1
    assert all(e.t >= 0 for e in events)
    # Its t is the latest of everything produced (a resumed event may come later, see the pause tests).
    assert final.t == max(e.t for e in events if not isinstance(e, ev.CONTROL_EVENTS))
    for e in events:
        assert ev.from_json(ev.to_json(e)) == e
    # Every agent_started is closed by exactly one agent_finished, in order.
    open_runs: dict[tuple[str, int], int] = {}
    for e in events:
        if isinstance(e, ev.AgentStarted):
            assert open_runs.get((e.agent, e.chunk), 0) == 0, f"{e.agent} started twice at once"
            open_runs[e.agent, e.chunk] = 1
        elif isinstance(e, ev.AgentFinished):
            assert open_runs.get((e.agent, e.chunk)) == 1, f"{e.agent} finished without starting"
            open_runs[e.agent, e.chunk] = 0
        elif isinstance(e, ev.Token):
            assert open_runs.get((e.agent, e.chunk)) == 1, f"token of {e.agent} outside its run"
    assert not any(open_runs.values())
    assert_totals(events)


def assert_all_text_delivered(events: Sequence[ev.Event], script: Script, chunks: int = 4) -> None:
    """Nothing lost: per (agent, chunk), the token texts are exactly the scripted deltas, and the
    tokens say how many deltas they carry."""
    for chunk in range(1, chunks + 1):
        for agent in AGENTS:
            assert text_of(events, agent, chunk) == script.full_text(agent, chunk), (agent, chunk)
            carried = sum(t.deltas for t in tokens(events, agent, chunk))
            assert carried == len(script.deltas(agent, chunk)), (agent, chunk)


def assert_totals(events: Sequence[ev.Event]) -> None:
    final = final_of(events)
    done = of_type(events, ev.AgentFinished)
    assert final.input_tokens == sum(e.input_tokens for e in done)
    assert final.output_tokens == sum(e.output_tokens for e in done)


# =========================================================================== 1. event contract


async def test_event_contract_of_a_complete_session() -> None:
    h = make()
    events = await run(h.collab)

    assert_well_formed(events, h.collab)
    first, final = events[0], final_of(events)
    assert isinstance(first, ev.SessionStarted)
    assert first.task == TASK
    assert first.strategy == "test"
    assert first.workflow == "scripted"
    assert first.chunks == list(TITLES)
    assert first.models == {agent: f"scripted:{agent}" for agent in AGENTS}
    assert final.status == "done"
    # Without a pause, every event is delivered when it is made: t follows delivery order.
    times = [e.t for e in events]
    assert times == sorted(times)
    assert final.t == max(times)

    chunk_starts = of_type(events, ev.ChunkStarted)
    assert [(c.chunk, c.title, c.total) for c in chunk_starts] == [(i, TITLES[i - 1], 4) for i in range(1, 5)]

    expected_reads = {"architect": [], "coder": ["architect"], "reviewer": ["architect", "coder"]}
    expected_reads[SYNTH] = list(ROLES)
    for chunk in range(1, 5):
        begin = position(events, chunk_starts[chunk - 1])
        end = position(events, chunk_starts[chunk]) if chunk < 4 else len(events) - 1
        in_chunk = [
            e for e in events if getattr(e, "chunk", None) == chunk and not isinstance(e, ev.ChunkStarted)
        ]
        assert all(begin < position(events, e) < end for e in in_chunk)
        for agent in AGENTS:
            (start,) = started(events, agent, chunk)
            (done,) = finished(events, agent, chunk)
            assert done.status == "done"
            assert start.model == f"scripted:{agent}"
            assert start.reads == expected_reads[agent]
            assert not done.usage_estimated
        synth_start = position(events, started(events, SYNTH, chunk)[0])
        assert all(position(events, finished(events, r, chunk)[0]) < synth_start for r in ROLES)
        synth = synthesis(events, chunk)
        assert position(events, finished(events, SYNTH, chunk)[0]) < position(events, synth)
        assert synth.parsed

    assert len(of_type(events, ev.Synthesis)) == 4
    assert not of_type(events, ev.Error)
    assert_all_text_delivered(events, h.script)
    # The engine asked each role's own model, once per chunk.
    assert len(h.provider.calls) == 16
    assert all(call.request.model == agent_of(call.request) for call in h.provider.calls)
    # The output is the session's document: under the task, each chunk's merged text under its
    # title, in order, and the review's debated points as the open points.
    output = final.output
    assert output.startswith(f"# {TASK}\n")
    places = [output.index(f"\n## {title}\n") for title in TITLES]
    assert places == sorted(places)
    for i, title in enumerate(TITLES, 1):
        assert merged_text(i) in section(output, title)
    open_points = output[output.index("## Open points") :]
    assert "- **caching in chunk 4**\n  - Architect: add Redis\n  - Coder: no cache yet" in open_points
    assert "caching in chunk 3" in output[: output.index("## Review")]  # debated where it was


# ========================================================================= 2. real concurrency


async def test_agents_overlap_and_readers_see_the_partial_upstream_text() -> None:
    # The architect streams slowly; its readers are fast. The orderings asserted below hold with
    # margins of several architect deltas, whatever the machine's speed.
    script = Script(
        delays={"architect": 0.005, "coder": 0.001, "reviewer": 0.001}, n_deltas={"architect": 10}
    )
    h = make(script)
    events = await run(h.collab)
    assert_well_formed(events, h.collab)
    assert final_of(events).status == "done"
    assert_all_text_delivered(events, script)

    for chunk in range(1, 5):
        arch_tokens = tokens(events, "architect", chunk)
        coder_tokens = tokens(events, "coder", chunk)
        (coder_start,) = started(events, "coder", chunk)
        (arch_done,) = finished(events, "architect", chunk)

        # Interleaved: the coder writes while the architect is still writing.
        assert coder_tokens[0].seq < arch_tokens[-1].seq
        assert coder_tokens[0].t <= arch_tokens[-1].t
        # The coder started once the architect had 3 deltas, long before it finished.
        assert coder_start.reads == ["architect"]
        assert arch_tokens[2].seq < coder_start.seq < arch_done.seq
        partial = "".join(t.text for t in arch_tokens if t.seq < coder_start.seq)
        assert partial == "".join(script.deltas("architect", chunk)[:3])
        (coder_call,) = calls_of(h.provider, "coder", chunk)
        coder_prompt = prompt(coder_call)
        assert f"The Architect's notes so far (still being written):\n{partial}\n\n" in coder_prompt
        assert script.full_text("architect", chunk) not in coder_prompt

        # The reviewer reads both, each as written at the moment it started.
        (reviewer_start,) = started(events, "reviewer", chunk)
        assert reviewer_start.reads == ["architect", "coder"]
        assert reviewer_start.seq < arch_done.seq
        (reviewer_call,) = calls_of(h.provider, "reviewer", chunk)
        reviewer_prompt = prompt(reviewer_call)
        for upstream in ("architect", "coder"):
            seen = "".join(t.text for t in tokens(events, upstream, chunk) if t.seq < reviewer_start.seq)
            assert len(seen) > 0
            title = upstream.capitalize()
            assert f"The {title}'s notes so far (still being written):\n{seen}\n\n" in reviewer_prompt
        assert script.full_text("architect", chunk) not in reviewer_prompt


# ============================================================================== 3. synthesis


async def test_synthesis_is_parsed_and_carried_into_the_next_chunk() -> None:
    h = make()
    events = await run(h.collab)
    assert final_of(events).status == "done"

    first = synthesis(events, 1)
    assert first.parsed
    assert first.agreed == ["short codes of 7 characters (chunk 1)", "store links in SQLite"]
    assert first.debated == [
        ev.DebatedPoint(
            point="caching in chunk 1", positions={"architect": "add Redis", "coder": "no cache yet"}
        )
    ]
    # Computed, not read from the answer: 2 points agreed, 1 debated, no embedder to compare with.
    assert first.confidence_parts == ev.ConfidenceParts(agreed=2, debated=1)
    assert first.confidence == pytest.approx(2 / 3)
    assert first.text == merged_text(1)

    for agent in AGENTS:
        assert merged_text(1) in prompt(calls_of(h.provider, agent, 2)[0])
        assert merged_text(1) not in prompt(calls_of(h.provider, agent, 1)[0])
    # The synthesizer is asked with every role's full output of its chunk.
    synth_prompt = prompt(calls_of(h.provider, SYNTH, 1)[0])
    for role in ROLES:
        assert h.script.full_text(role, 1) in synth_prompt


def letter_counts(texts: Sequence[str]) -> list[list[float]]:
    """A real (if crude) embedding: how often each letter occurs."""
    return [[float(text.lower().count(c)) for c in "abcdefghijklmnopqrstuvwxyz"] for text in texts]


async def test_the_agents_agreement_is_measured_with_the_embedder_and_weighs_in() -> None:
    seen: list[Sequence[str]] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        seen.append(list(texts))
        return letter_counts(texts)

    h = make(embed=embed)
    events = await run(h.collab)
    first = synthesis(events, 1)
    parts = first.confidence_parts
    assert parts is not None and parts.agreement is not None
    outputs = [h.script.full_text(role, 1) for role in ROLES]
    assert seen[0] == outputs  # the chunk's outputs, compared with each other
    assert parts.agreement == pytest.approx(agreement(letter_counts(outputs)))
    assert first.confidence == pytest.approx((parts.agreement + 2 / 3) / 2)


async def test_an_embedder_that_fails_leaves_agreement_unmeasured_and_the_session_goes_on() -> None:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        raise RuntimeError("model file gone")

    events = await run(make(embed=embed).collab)
    assert final_of(events).status == "done"
    first = synthesis(events, 1)
    assert first.confidence_parts == ev.ConfidenceParts(agreed=2, debated=1)


async def test_malformed_synthesis_is_kept_verbatim_and_the_session_goes_on() -> None:
    raw = ["The team ", "agreed on ", "a plan."]
    h = make(Script(replies={(SYNTH, 2): Reply(raw)}))
    events = await run(h.collab)

    assert_well_formed(events, h.collab)
    second = synthesis(events, 2)
    assert second.parsed is False
    assert second.text == "The team agreed on a plan."
    assert second.confidence is None  # no points to count, no embedder: nothing was measured
    assert second.agreed == []
    assert second.debated == []
    assert finished(events, SYNTH, 2)[0].status == "done"
    assert final_of(events).status == "done"
    assert len(of_type(events, ev.Synthesis)) == 4
    assert "The team agreed on a plan." in prompt(calls_of(h.provider, "architect", 3)[0])


async def test_a_synthesis_that_only_repeats_the_prompts_example_gives_way_to_the_agents() -> None:
    copy = synthesis_example([r.name for r in WORKFLOW.roles])
    h = make(Script(replies={(SYNTH, 1): Reply([copy[:40], copy[40:]])}))
    events = await run(h.collab)
    first = synthesis(events, 1)
    assert first.parsed is False
    assert EXAMPLE_TASK not in first.text and "wordcount" not in first.text
    for role in ROLES:
        assert h.script.full_text(role, 1) in first.text
    assert final_of(events).status == "done"


async def test_failed_synthesizer_falls_back_to_the_agents_outputs() -> None:
    h = make(Script(replies={(SYNTH, 1): Reply(synthesis_deltas(1), fail_after=0)}))
    events = await run(h.collab)

    assert_well_formed(events, h.collab)
    (error,) = of_type(events, ev.Error)
    assert error.agent == SYNTH
    assert error.chunk == 1
    assert error.recoverable
    assert finished(events, SYNTH, 1)[0].status == "failed"
    fallback = synthesis(events, 1)
    assert fallback.parsed is False
    assert fallback.confidence is None
    for role in ROLES:
        assert h.script.full_text(role, 1) in fallback.text
        # The fallback is what the next chunk builds on.
        assert h.script.full_text(role, 1) in prompt(calls_of(h.provider, "architect", 2)[0])
    assert [c.chunk for c in of_type(events, ev.ChunkStarted)] == [1, 2, 3, 4]
    assert len(of_type(events, ev.Synthesis)) == 4
    assert final_of(events).status == "done"


# ============================================================================ 4. pause/resume


class Pauser:
    """Pauses the session (twice: the second is a no-op), then resumes once it is idle.

    It records what the provider had done when ``pause()`` was called and right before
    ``resume()``, so the test can check that no call started and which text was held.
    """

    def __init__(self, h: Harness, when: Callable[[ev.Event], bool] | None = None) -> None:
        self.h = h
        self.when = when
        self.fired = False
        self.paused_seen = False
        self.delivered_at_pause = -1
        self.calls_at_pause = -1
        self.calls_before_resume = -1
        self.deltas_at_pause: list[int] = []  # per call
        self.deltas_while_paused = -1
        self.text_while_paused: dict[str, str] = {}  # per agent
        self.task: asyncio.Task[None] | None = None

    def pause_now(self) -> None:
        self.fired = True
        self.delivered_at_pause = delivered_total(self.h.provider)
        self.calls_at_pause = len(self.h.provider.calls)
        self.deltas_at_pause = [len(c.delivered) for c in self.h.provider.calls]
        self.h.collab.pause()
        self.h.collab.pause()
        assert self.h.collab.paused
        self.task = asyncio.create_task(self._resume_when_idle())

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Paused):
            # Delivered at once: the consumer got it before the producers ran another step.
            assert delivered_total(self.h.provider) == self.delivered_at_pause
            self.paused_seen = True
        elif not self.fired and self.when is not None and self.when(event):
            self.pause_now()

    async def _resume_when_idle(self) -> None:
        await until_idle(self.h)
        self.calls_before_resume = len(self.h.provider.calls)
        self.deltas_while_paused = delivered_total(self.h.provider) - self.delivered_at_pause
        for call, before in zip(self.h.provider.calls, self.deltas_at_pause, strict=False):
            if text := "".join(call.delivered[before:]):
                self.text_while_paused[agent_of(call.request)] = text
        self.h.collab.resume()
        self.h.collab.resume()
        assert not self.h.collab.paused


async def run_with_pause(
    pauser: Pauser, stream: AsyncIterator[ev.Event] | None = None
) -> tuple[list[ev.Event], list[ev.Event]]:
    """Run the session with ``pauser``; returns all events and the held ones delivered at resume."""
    h = pauser.h
    events = await run(h.collab, pauser.on_event, stream=stream)
    assert pauser.task is not None
    await pauser.task
    assert_well_formed(events, h.collab)

    (paused,) = of_type(events, ev.Paused)
    (resumed,) = of_type(events, ev.Resumed)
    assert pauser.paused_seen
    i, j = position(events, paused), position(events, resumed)
    assert i < j
    # While paused: no model call started and nothing but control events reached the consumer.
    assert pauser.calls_before_resume == pauser.calls_at_pause
    assert all(isinstance(e, ev.CONTROL_EVENTS) for e in events[i : j + 1])
    # The held events follow the resumed event, in order: exactly those produced while paused.
    held = events[j + 1 : j + 1 + resumed.held]
    assert len(held) == resumed.held
    assert not any(isinstance(e, ev.CONTROL_EVENTS) for e in held)
    assert all(e.t <= resumed.t for e in held)
    # Every delta streamed while paused, and nothing else; a held token may carry several deltas
    # of one agent.
    held_tokens = of_type(held, ev.Token)
    assert {t.agent for t in held_tokens} == set(pauser.text_while_paused)
    for agent, text in pauser.text_while_paused.items():
        assert "".join(t.text for t in held_tokens if t.agent == agent) == text
    rest = events[j + 1 + resumed.held :]
    if rest:
        assert rest[0].t >= resumed.t
    # Nothing lost.
    assert final_of(events).status == "done"
    assert_all_text_delivered(events, h.script)
    assert len(h.provider.calls) == 16
    return events, held


async def test_pause_before_the_first_event() -> None:
    h = make()
    pauser = Pauser(h)
    stream = h.collab.events()
    pauser.pause_now()
    events, held = await run_with_pause(pauser, stream)

    # session_started always comes first; the early pause follows it, and nothing was held.
    assert [type(e) for e in events[:4]] == [ev.SessionStarted, ev.Paused, ev.Resumed, ev.ChunkStarted]
    assert pauser.calls_at_pause == pauser.calls_before_resume == 0
    assert held == []


async def test_pause_during_a_chunks_streaming() -> None:
    h = make()
    pauser = Pauser(h, lambda e: is_token(e, "architect", 2, 4))
    events, held = await run_with_pause(pauser)

    # The running streams went on while paused (their tokens were held) ...
    assert pauser.deltas_while_paused > 0
    assert {t.agent for t in of_type(held, ev.Token)} == {"architect", "coder"}
    # ... but the reviewer, ready to start during the pause, only started after the resume.
    (resumed,) = of_type(events, ev.Resumed)
    (reviewer_start,) = started(events, "reviewer", 2)
    assert reviewer_start.seq > resumed.seq + resumed.held
    assert pauser.calls_at_pause == 6


@pytest.mark.parametrize("chunk", [2, 4])
async def test_pause_between_chunks(chunk: int) -> None:
    h = make()
    pauser = Pauser(h, lambda e: isinstance(e, ev.Synthesis) and e.chunk == chunk)
    events, held = await run_with_pause(pauser)

    (resumed,) = of_type(events, ev.Resumed)
    after = events[position(events, resumed) + 1]
    assert pauser.calls_at_pause == 4 * chunk
    if chunk < 4:
        # The next chunk waited for the resume.
        assert held == []
        assert isinstance(after, ev.ChunkStarted)
        assert after.chunk == chunk + 1
    else:
        # The end of the session is an event like any other: held, then delivered.
        assert [type(e) for e in held] == [ev.SessionFinished]


async def test_pause_during_the_synthesizers_streaming() -> None:
    h = make()
    pauser = Pauser(h, lambda e: is_token(e, SYNTH, 3, 1))
    events, held = await run_with_pause(pauser)

    assert pauser.calls_at_pause == 12
    kinds = [type(e) for e in held]
    assert kinds[-2:] == [ev.AgentFinished, ev.Synthesis]
    assert {t.agent for t in of_type(held, ev.Token)} == {SYNTH}
    assert pauser.deltas_while_paused > 0
    (resumed,) = of_type(events, ev.Resumed)
    after = events[position(events, resumed) + 1 + resumed.held]
    assert isinstance(after, ev.ChunkStarted)
    assert after.chunk == 4


async def test_resume_without_pause_is_a_no_op() -> None:
    h = make()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.SessionStarted | ev.Token):
            h.collab.resume()

    events = await run(h.collab, on_event)
    assert_well_formed(events, h.collab)
    assert not of_type(events, ev.Resumed)
    assert not of_type(events, ev.Paused)
    assert final_of(events).status == "done"


async def test_pause_right_after_resume_still_holds_new_calls() -> None:
    # resume() wakes the waiting agents, but if pause() comes before they run, they must stay
    # held: "no new model call starts" while paused.
    h = make()
    record: dict[str, int] = {}

    async def flicker() -> None:
        await until_idle(h)
        record["before"] = len(h.provider.calls)
        h.collab.resume()
        h.collab.pause()
        await until_idle(h)
        record["while_paused_again"] = len(h.provider.calls)
        h.collab.resume()

    tasks: list[asyncio.Task[None]] = []

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.ChunkStarted) and event.chunk == 2:
            h.collab.pause()
            tasks.append(asyncio.create_task(flicker()))

    events = await run(h.collab, on_event)
    await asyncio.gather(*tasks)
    assert_well_formed(events, h.collab)
    assert record["while_paused_again"] == record["before"] == 4
    assert [type(e) for e in events if isinstance(e, ev.CONTROL_EVENTS)] == [
        ev.Paused,
        ev.Resumed,
        ev.Paused,
        ev.Resumed,
    ]
    assert final_of(events).status == "done"
    assert_all_text_delivered(events, h.script)


# ============================================================ 4b. token flow: lag and backpressure

BUFFER = 4  # undelivered deltas at which the calls wait (the engine's default is far larger)
LONG = 40  # deltas per role: many buffers' worth


def long_script() -> Script:
    return Script(n_deltas=dict.fromkeys(ROLES, LONG))


def role_deltas_in(events: Sequence[ev.Event]) -> int:
    """Role deltas the token events carry (each role delta ends with ";")."""
    return sum(t.text.count(";") for t in of_type(events, ev.Token) if t.agent != SYNTH)


async def until_stuck(h: Harness) -> int:
    """Let the loop run until the provider delivers nothing more; returns its delivered total.

    Scripted streams without a delay deliver a delta per loop turn, so a hundred turns without
    one means every running call waits.
    """
    while True:
        before = delivered_total(h.provider)
        await let_loop_run(100)
        if delivered_total(h.provider) == before:
            return before


async def test_a_lagging_consumer_makes_the_calls_wait_and_still_gets_everything_in_order() -> None:
    h = make(long_script(), token_buffer=BUFFER)
    events: list[ev.Event] = []
    lagged = False
    async with asyncio.timeout(DEADLINE_S):
        async for event in h.collab.events():
            events.append(event)
            if lagged or not isinstance(event, ev.Token):
                continue
            lagged = True
            delivered = await until_stuck(h)  # the consumer takes nothing meanwhile
            # The calls stopped reading their streams, with at most a buffer's worth (plus one
            # delta per call) in the router and one already drained to the consumer's side.
            assert streaming_agents(h)
            assert delivered - role_deltas_in(events) <= 2 * (BUFFER + len(ROLES) - 1)
            # Readers do not wait for the consumer: the coder started on the architect's partial
            # text, which the consumer has not seen yet.
            (coder_call,) = calls_of(h.provider, "coder", 1)
            assert "".join(h.script.deltas("architect", 1)[:3]) in prompt(coder_call)

    assert_well_formed(events, h.collab)  # among others: each agent's tokens inside its run
    assert final_of(events).status == "done"
    assert_all_text_delivered(events, h.script)
    # What piled up while the consumer lagged came merged, one token per run of an agent.
    assert len(of_type(events, ev.Token)) < delivered_total(h.provider)


async def test_a_long_pause_stops_reading_the_streams_and_resume_loses_nothing() -> None:
    h = make(long_script(), token_buffer=BUFFER)
    seen: dict[str, int | bool] = {}
    waiting: list[asyncio.Task[None]] = []

    async def hold_until_stuck() -> None:
        seen["calls"] = len(h.provider.calls)
        delivered = await until_stuck(h)
        seen["while_paused"] = delivered - int(seen["at_pause"])
        seen["calls_started"] = len(h.provider.calls) - int(seen["calls"])
        seen["streaming"] = bool(streaming_agents(h))
        h.collab.resume()

    def on_event(event: ev.Event) -> None:
        if not waiting and isinstance(event, ev.Token) and event.agent == "architect" and event.chunk == 2:
            seen["at_pause"] = delivered_total(h.provider)
            h.collab.pause()
            waiting.append(asyncio.create_task(hold_until_stuck()))

    events = await run(h.collab, on_event)
    await waiting[0]
    assert_well_formed(events, h.collab)
    assert final_of(events).status == "done"
    # The pause outlasted the buffer: the calls stopped mid-stream instead of piling up text,
    # and no call started.
    assert seen["streaming"] is True
    assert 0 < int(seen["while_paused"]) <= BUFFER + len(ROLES) - 1
    assert seen["calls_started"] == 0
    # Between paused and resumed, only control events; then the held text, then the rest.
    (paused,) = of_type(events, ev.Paused)
    (resumed,) = of_type(events, ev.Resumed)
    i, j = position(events, paused), position(events, resumed)
    assert all(isinstance(e, ev.CONTROL_EVENTS) for e in events[i : j + 1])
    held = events[j + 1 : j + 1 + resumed.held]
    assert of_type(held, ev.Token)
    assert not any(isinstance(e, ev.CONTROL_EVENTS) for e in held)
    assert_all_text_delivered(events, h.script)


# ================================================================================ 5. feedback

FEEDBACK = "Use PostgreSQL, not SQLite"


async def test_feedback_for_the_next_chunk_reaches_every_prompt_of_chunk_2() -> None:
    h = make()

    def on_event(event: ev.Event) -> None:
        if is_token(event, "architect", 1, 1):
            h.collab.inject_feedback(f"  {FEEDBACK}\n", "next_chunk")

    events = await run(h.collab, on_event)
    assert_well_formed(events, h.collab)

    (feedback,) = of_type(events, ev.Feedback)
    assert feedback.text == FEEDBACK
    assert feedback.applies_to == "next_chunk"
    assert feedback.chunk == 2
    # Delivered at once, while chunk 1 was still running.
    assert feedback.seq < started(events, "reviewer", 1)[0].seq
    for agent in AGENTS:
        (chunk1,) = calls_of(h.provider, agent, 1)
        (chunk2,) = calls_of(h.provider, agent, 2)
        assert FEEDBACK not in prompt(chunk1)
        assert FEEDBACK in prompt(chunk2)
    assert final_of(events).status == "done"
    assert_all_text_delivered(events, h.script)


async def test_feedback_now_restarts_the_running_agents_with_feedback_and_partial_text() -> None:
    # A longer architect: it is still streaming when the coder writes its 2nd delta.
    h = make(Script(n_deltas={"architect": 10}))
    running_at_feedback: set[str] = set()

    def on_event(event: ev.Event) -> None:
        if is_token(event, "coder", 2, 1) and not running_at_feedback:
            running_at_feedback.update(streaming_agents(h))
            h.collab.inject_feedback(FEEDBACK, "now")

    events = await run(h.collab, on_event)
    assert_well_formed(events, h.collab)
    assert final_of(events).status == "done"
    assert len(of_type(events, ev.Synthesis)) == 4

    (feedback,) = of_type(events, ev.Feedback)
    assert (feedback.applies_to, feedback.chunk, feedback.text) == ("now", 2, FEEDBACK)
    assert running_at_feedback == {"architect", "coder"}

    cancelled = {e.agent for e in of_type(events, ev.AgentFinished) if e.status == "cancelled"}
    assert cancelled == running_at_feedback
    for agent in ROLES:
        runs = finished(events, agent, 2)
        assert runs[-1].status == "done"
        texts = attempts(events, agent, 2)
        # The last attempt streamed its whole script, after the feedback, with the feedback in its prompt.
        assert texts[-1] == h.script.full_text(agent, 2)
        assert started(events, agent, 2)[-1].seq > feedback.seq
        assert FEEDBACK in prompt(calls_of(h.provider, agent, 2)[-1])
        if agent in running_at_feedback:
            first_try, retry = calls_of(h.provider, agent, 2)
            assert [r.status for r in runs] == ["cancelled", "done"]
            assert runs[0].seq < started(events, agent, 2)[1].seq
            partial = texts[0]
            # The partial output is kept: in the event stream and in the new prompt.
            assert partial
            assert partial == "".join(first_try.delivered)
            assert partial != h.script.full_text(agent, 2)
            assert partial in prompt(retry)
            assert FEEDBACK not in prompt(first_try)
        else:
            assert len(runs) == 1
    assert FEEDBACK in prompt(calls_of(h.provider, SYNTH, 2)[0])
    # Other chunks ran once, untouched.
    for chunk in (1, 3, 4):
        assert all(len(calls_of(h.provider, agent, chunk)) == 1 for agent in AGENTS)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_feedback_is_refused(text: str) -> None:
    h = make()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.ChunkStarted) and event.chunk == 1:
            for target in ("next_chunk", "now"):
                with pytest.raises(ValueError):
                    h.collab.inject_feedback(text, target)  # type: ignore[arg-type]

    events = await run(h.collab, on_event)
    assert not of_type(events, ev.Feedback)
    assert final_of(events).status == "done"


async def test_feedback_after_the_session_finished_is_refused() -> None:
    h = make()
    events = await run(h.collab)
    assert final_of(events).status == "done"
    for target in ("next_chunk", "now"):
        with pytest.raises(RuntimeError):
            h.collab.inject_feedback(FEEDBACK, target)  # type: ignore[arg-type]


# ==================================================================================== 6. stop


class Stopper:
    """Calls ``stop()`` twice and records what was streaming and how many calls were made."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.streaming: set[str] | None = None
        self.calls_at_stop = -1

    def stop_now(self) -> None:
        self.streaming = streaming_agents(self.h)
        self.calls_at_stop = len(self.h.provider.calls)
        self.h.collab.stop()
        self.h.collab.stop()


def assert_stopped(events: Sequence[ev.Event], stopper: Stopper) -> ev.SessionFinished:
    h = stopper.h
    assert_well_formed(events, h.collab)
    final = final_of(events)
    assert final.status == "stopped"
    # No model call starts after stop().
    assert len(h.provider.calls) == stopper.calls_at_stop
    # Exactly the agents that were streaming were cancelled.
    cancelled = {e.agent for e in of_type(events, ev.AgentFinished) if e.status == "cancelled"}
    assert cancelled == stopper.streaming
    # The output holds every completed chunk's synthesis and the interrupted chunk's partial text.
    syntheses = of_type(events, ev.Synthesis)
    for s in syntheses:
        assert s.text in final.output
    chunks = of_type(events, ev.ChunkStarted)
    interrupted = [c.chunk for c in chunks if c.chunk > len(syntheses)]
    partial = {a: text_of(events, a, c) for c in interrupted for a in AGENTS if text_of(events, a, c)}
    for text in partial.values():
        assert text.strip() in final.output
    assert ("(interrupted)" in final.output) == bool(partial)
    if not syntheses and not partial:
        assert final.output == ""
    assert_totals(events)
    # stop() after the end is harmless too.
    h.collab.stop()
    return final


async def test_stop_before_the_session_starts() -> None:
    h = make()
    stopper = Stopper(h)
    stream = h.collab.events()
    stopper.stop_now()
    events = await run(h.collab, stream=stream)
    assert_stopped(events, stopper)
    assert [type(e) for e in events] == [ev.SessionStarted, ev.SessionFinished]
    assert h.provider.calls == []


async def test_stop_from_a_task_scheduled_before_the_first_event() -> None:
    # The stopping task runs before the engine's run task has taken its first step.
    h = make()
    stopper = Stopper(h)

    async def stop_soon() -> None:
        stopper.stop_now()

    task = asyncio.create_task(stop_soon())
    events = await run(h.collab)
    await task
    assert_stopped(events, stopper)
    assert [type(e) for e in events] == [ev.SessionStarted, ev.SessionFinished]


async def test_stop_before_the_first_token() -> None:
    h = make()
    stopper = Stopper(h)

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.ChunkStarted) and event.chunk == 1:
            stopper.stop_now()

    events = await run(h.collab, on_event)
    final = assert_stopped(events, stopper)
    assert not of_type(events, ev.Token)
    assert final.output == ""


async def test_stop_mid_stream() -> None:
    h = make(Script(n_deltas={"architect": 10}))
    stopper = Stopper(h)

    def on_event(event: ev.Event) -> None:
        if is_token(event, "coder", 2, 1):
            stopper.stop_now()

    events = await run(h.collab, on_event)
    final = assert_stopped(events, stopper)
    assert stopper.streaming == {"architect", "coder"}
    assert merged_text(1) in final.output
    assert text_of(events, "architect", 2) in final.output
    assert text_of(events, "coder", 2) in final.output
    assert "## Architecture (interrupted)" in final.output
    assert not started(events, "reviewer", 2)
    assert len(of_type(events, ev.Synthesis)) == 1


async def test_stop_during_synthesis() -> None:
    h = make()
    stopper = Stopper(h)

    def on_event(event: ev.Event) -> None:
        if is_token(event, SYNTH, 3, 1):
            stopper.stop_now()

    events = await run(h.collab, on_event)
    final = assert_stopped(events, stopper)
    assert stopper.streaming == {SYNTH}
    assert finished(events, SYNTH, 3)[0].status == "cancelled"
    assert [s.chunk for s in of_type(events, ev.Synthesis)] == [1, 2]
    assert merged_text(1) in final.output
    assert merged_text(2) in final.output
    for role in ROLES:
        assert h.script.full_text(role, 3) in final.output
    assert text_of(events, SYNTH, 3).strip() in final.output


async def test_stop_while_paused() -> None:
    h = make()
    stopper = Stopper(h)
    tasks: list[asyncio.Task[None]] = []

    async def stop_when_idle() -> None:
        await until_idle(h)
        stopper.stop_now()

    def on_event(event: ev.Event) -> None:
        if is_token(event, "coder", 1, 1):
            h.collab.pause()
            tasks.append(asyncio.create_task(stop_when_idle()))

    events = await run(h.collab, on_event)
    await asyncio.gather(*tasks)
    final = assert_stopped(events, stopper)
    # The held events were delivered, then the session ended; the reviewer, held by the pause,
    # never started.
    (resumed,) = of_type(events, ev.Resumed)
    assert resumed.held > 0
    assert not started(events, "reviewer", 1)
    assert stopper.streaming == set()
    assert text_of(events, "architect", 1) == h.script.full_text("architect", 1)
    assert h.script.full_text("architect", 1) in final.output
    assert h.script.full_text("coder", 1) in final.output


async def test_pause_after_stop_does_not_hold_the_end() -> None:
    h = make()
    stopper = Stopper(h)

    def on_event(event: ev.Event) -> None:
        if is_token(event, "coder", 1, 1):
            stopper.stop_now()
            h.collab.pause()

    events = await run(h.collab, on_event)
    assert_stopped(events, stopper)
    assert not of_type(events, ev.Paused)


# ================================================================================ 7. failures


async def test_an_agent_failing_mid_stream_does_not_fail_the_session() -> None:
    script = Script(replies={("coder", 2): Reply(agent_deltas("coder", 2), fail_after=2)})
    h = make(script)
    events = await run(h.collab)
    assert_well_formed(events, h.collab)

    (error,) = of_type(events, ev.Error)
    assert (error.agent, error.chunk, error.recoverable) == ("coder", 2, True)
    assert [e.status for e in finished(events, "coder", 2)] == ["failed"]
    for agent in ("architect", "reviewer", SYNTH):
        assert [e.status for e in finished(events, agent, 2)] == ["done"]
    # What the coder did write is kept: in the events and in what the others were given.
    partial = "".join(agent_deltas("coder", 2)[:2])
    assert text_of(events, "coder", 2) == partial
    assert partial in prompt(calls_of(h.provider, SYNTH, 2)[0])
    assert started(events, "reviewer", 2)[0].reads == ["architect", "coder"]
    assert partial in prompt(calls_of(h.provider, "reviewer", 2)[0])
    assert final_of(events).status == "done"
    assert len(of_type(events, ev.Synthesis)) == 4


@pytest.mark.parametrize(
    "deltas", [(), ("", ""), ("  ", "\n")], ids=["nothing", "empty-deltas", "whitespace"]
)
async def test_an_agent_returning_no_text_fails_alone(deltas: tuple[str, ...]) -> None:
    h = make(Script(replies={("reviewer", 1): Reply(deltas)}))
    events = await run(h.collab)
    assert_well_formed(events, h.collab)

    (error,) = of_type(events, ev.Error)
    assert (error.agent, error.chunk, error.recoverable) == ("reviewer", 1, True)
    assert "no text" in error.message
    assert [e.status for e in finished(events, "reviewer", 1)] == ["failed"]
    assert text_of(events, "reviewer", 1) == "".join(deltas)
    assert synthesis(events, 1).parsed
    assert final_of(events).status == "done"
    assert len(of_type(events, ev.Synthesis)) == 4


@pytest.mark.parametrize("reply", [Reply(["x;"], fail_after=0), Reply(())], ids=["provider-error", "no-text"])
async def test_all_agents_failing_in_chunk_1_fails_the_session(reply: Reply) -> None:
    h = make(Script(replies={(role, 1): reply for role in ROLES}))
    events = await run(h.collab)
    assert_well_formed(events, h.collab)

    errors = of_type(events, ev.Error)
    assert {(e.agent, e.recoverable) for e in errors[:-1]} == {(role, True) for role in ROLES}
    fatal = errors[-1]
    assert fatal.recoverable is False
    assert fatal.agent is None
    assert fatal.chunk == 1
    assert all(finished(events, role, 1)[0].status == "failed" for role in ROLES)
    assert not of_type(events, ev.Synthesis)
    assert calls_of(h.provider, SYNTH, 1) == []
    assert [c.chunk for c in of_type(events, ev.ChunkStarted)] == [1]
    final = final_of(events)
    assert final.status == "failed"
    assert events[-2] is fatal
    assert_totals(events)


# ================================================================================== 8. totals


async def test_totals_are_the_sums_over_the_agents() -> None:
    # A mix of reported and estimated usage, and a failure, all counted.
    script = Script(
        replies={
            ("architect", 1): Reply(agent_deltas("architect", 1), report_usage=False),
            ("coder", 3): Reply(agent_deltas("coder", 3), fail_after=3),
        }
    )
    h = make(script)
    events = await run(h.collab)
    assert_well_formed(events, h.collab)
    assert_totals(events)
    final = final_of(events)
    assert final.status == "done"
    assert final.input_tokens > 0
    # Reported usage counts one token per scripted delta; estimated usage counts the text.
    estimated = finished(events, "architect", 1)[0]
    assert estimated.usage_estimated
    assert estimated.output_tokens == rough_token_count("".join(agent_deltas("architect", 1)))
    reported = [f for f in of_type(events, ev.AgentFinished) if not f.usage_estimated]
    assert all(f.output_tokens == len(tokens(events, f.agent, f.chunk)) for f in reported)
    assert not finished(events, "architect", 2)[0].usage_estimated
    # Scripted models have no known price: the total is unknown, not zero.
    assert all(e.cost_usd is None for e in of_type(events, ev.AgentFinished))
    assert final.cost_usd is None


@pytest.mark.parametrize("model", ["local:tiny", "openai:gpt-4o-mini"])
async def test_known_prices_add_up(model: str) -> None:
    h = make(model_override=ModelRef.parse(model))
    events = await run(h.collab)
    final = final_of(events)
    costs = [e.cost_usd for e in of_type(events, ev.AgentFinished)]
    assert all(c is not None for c in costs)
    assert final.cost_usd == pytest.approx(sum(c for c in costs if c is not None), rel=1e-12)
    if model.startswith("local:"):
        assert final.cost_usd == 0.0
    else:
        assert final.cost_usd is not None and final.cost_usd > 0


def test_price_table() -> None:
    table = PriceTable()
    assert table.cost(ModelRef("openai", "gpt-4o-mini"), Usage(1_000_000, 1_000_000)) == 0.15 + 0.60
    assert table.cost(ModelRef("local", "smollm2-135m"), Usage(1_000_000, 1_000_000)) == 0.0
    assert table.cost(ModelRef("openai", "no-such-model"), Usage(10, 10)) is None
    assert table.cost(ModelRef("scripted", "architect"), Usage(10, 10)) is None


def test_add_costs() -> None:
    assert add_costs([]) == 0.0
    assert add_costs([0.25, 0.5]) == 0.75
    assert add_costs([0.25, None, 0.5]) is None
    assert add_costs([None]) is None


# ============================================================================ 9. SessionSpec


@pytest.mark.parametrize("task", ["", "   ", "\n\t"])
def test_empty_task_is_refused(task: str) -> None:
    with pytest.raises(UsageError):
        SessionSpec(task=task, workflow=WORKFLOW, strategy="test")


def test_overlong_task_is_refused() -> None:
    SessionSpec(task="x" * MAX_TASK_CHARS, workflow=WORKFLOW, strategy="test")
    assert MAX_TASK_CHARS == 200_000
    with pytest.raises(UsageError):
        SessionSpec(task="x" * (MAX_TASK_CHARS + 1), workflow=WORKFLOW, strategy="test")


def test_unknown_strategy_names_the_offered_ones() -> None:
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="turbo")
    resolver = SingleProviderResolver(ScriptedProvider(Script()))
    with pytest.raises(UsageError, match=r"'turbo'.*offers: test"):
        spec.models()
    with pytest.raises(UsageError, match=r"offers: test"):
        Collaboration(spec, resolver)


async def test_model_override_applies_to_every_role_and_the_synthesizer() -> None:
    h = make(model_override=ModelRef("scripted", "solo"))
    events = await run(h.collab)
    assert_well_formed(events, h.collab)

    first = events[0]
    assert isinstance(first, ev.SessionStarted)
    assert first.strategy == "custom"
    assert first.models == dict.fromkeys(AGENTS, "scripted:solo")
    assert {e.model for e in of_type(events, ev.AgentStarted)} == {"scripted:solo"}
    assert len(h.provider.calls) == 16
    assert {c.request.model for c in h.provider.calls} == {"solo"}
    assert {agent_of(c.request) for c in h.provider.calls} == set(AGENTS)
    assert final_of(events).status == "done"


@pytest.mark.parametrize("user_cap", [None, 64])
async def test_an_answer_cut_at_max_tokens_is_continued_once_unless_the_user_capped_it(
    user_cap: int | None,
) -> None:
    from facilitair_tui.core.gateway import CONTINUE_INSTRUCTION

    script = Script()
    whole = script.deltas("architect", 1)

    def reply(request: ChatRequest) -> Reply:
        if request.messages[-1].content == CONTINUE_INSTRUCTION:  # only the architect is cut
            return Reply(whole[3:])
        if (agent_of(request), chunk_of(request)) != ("architect", 1):
            return script(request)
        return Reply(whole[:3], stop_reason="max_tokens")

    provider = ScriptedProvider(reply)
    workflow = WORKFLOW.model_copy(
        update={"defaults": WORKFLOW.defaults.model_copy(update={"continue_cut": 1})}
    )
    spec = SessionSpec(task=TASK, workflow=workflow, strategy="test", max_tokens=user_cap)
    events = await run(Collaboration(spec, SingleProviderResolver(provider), retry=NO_RETRY))
    [architect] = [e for e in of_type(events, ev.AgentFinished) if (e.agent, e.chunk) == ("architect", 1)]
    text = "".join(t.text for t in tokens(events, "architect", 1))
    if user_cap is None:
        assert text == "".join(whole) and architect.stop_reason == "end"
        assert any("continuing it (1 of 1)" in e.message for e in of_type(events, ev.Error))
    else:  # --max-tokens is the user's cap: the answer stays cut, and says so
        assert text == "".join(whole[:3]) and architect.stop_reason == "max_tokens"
