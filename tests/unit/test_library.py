"""The read interfaces the cache inspector and the history use, and their first implementations."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.library import (
    CachedSolution,
    EmptyCacheCatalog,
    MemoryCacheCatalog,
    format_age,
)
from facilitair_tui.replay import INSTANT, Replay, ReplayError, replay_workflow

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")


def solution(id: str, task: str, context: dict[str, str], age_h: int) -> CachedSolution:
    return CachedSolution(
        id=id,
        task=task,
        context=context,
        output=f"## Implementation\n{task}",
        syntheses=["merged"],
        models={"architect": "local:smollm2"},
        cost_usd=0.01,
        duration_s=12.0,
        created_at=T0 - timedelta(hours=age_h),
    )


def session_events(sid: str = "s1", *, finished: bool = True) -> list[ev.Event]:
    events: list[ev.Event] = [
        ev.SessionStarted(
            session_id=sid,
            seq=1,
            t=0.0,
            task="Build a todo API",
            context={"language": "python"},
            strategy="test",
            workflow="scripted",
            models={"architect": "scripted:a", "coder": "scripted:c", "synthesizer": "scripted:s"},
            chunks=["Requirements", "Review"],
        ),
        ev.ChunkStarted(session_id=sid, seq=2, t=0.1, chunk=1, title="Requirements", total=2),
        ev.AgentStarted(session_id=sid, seq=3, t=0.2, agent="coder", chunk=1, model="m", reads=["architect"]),
        ev.Token(session_id=sid, seq=4, t=0.3, agent="coder", chunk=1, text="hello "),
        ev.AgentFinished(
            session_id=sid,
            seq=5,
            t=0.4,
            agent="coder",
            chunk=1,
            input_tokens=3,
            output_tokens=1,
            latency_ms=1.0,
            cost_usd=0.002,
            status="done",
        ),
        ev.Synthesis(session_id=sid, seq=6, t=0.5, chunk=1, agreed=[], debated=[], confidence=None, text="m"),
    ]
    if finished:
        events.append(
            ev.SessionFinished(
                session_id=sid,
                seq=7,
                t=0.6,
                status="done",
                output="## Requirements\nhello",
                input_tokens=3,
                output_tokens=1,
                cost_usd=0.002,
                duration_s=0.6,
            )
        )
    return events


# ---------------------------------------------------------------------------- cache catalogs


def test_memory_catalog_searches_task_and_context_words_newest_first() -> None:
    catalog = MemoryCacheCatalog(
        [
            solution("a", "Build a todo API", {"language": "python"}, age_h=5),
            solution("b", "Build a URL shortener", {"language": "go"}, age_h=1),
            solution("c", "Write a todo CLI", {"language": "python", "team_size": "3"}, age_h=3),
        ]
    )
    assert [e.id for e in catalog.list()] == ["b", "c", "a"]
    assert [e.id for e in catalog.list("todo")] == ["c", "a"]
    assert [e.id for e in catalog.list("TODO python cli")] == ["c"]
    assert [e.id for e in catalog.list("language=go")] == ["b"]
    assert [e.id for e in catalog.list(context_filter={"language": "python"})] == ["c", "a"]
    assert [e.id for e in catalog.list("build", context_filter={"language": "Python"})] == ["a"]
    assert catalog.list("nothing-like-this") == []


def test_memory_catalog_get_and_delete() -> None:
    catalog = MemoryCacheCatalog([solution("a", "Build a todo API", {}, age_h=1)])
    entry = catalog.get("a")
    assert entry is not None and entry.task == "Build a todo API"
    assert catalog.delete("a") is True
    assert catalog.delete("a") is False
    assert catalog.get("a") is None
    assert catalog.list() == []


def test_empty_catalog_has_nothing() -> None:
    catalog = EmptyCacheCatalog()
    assert catalog.list("x") == [] and catalog.get("x") is None and catalog.delete("x") is False


def test_ages_read_like_a_person_would_say_them() -> None:
    assert format_age(T0, T0 + timedelta(seconds=30)) == "just now"
    assert format_age(T0, T0 + timedelta(minutes=5)) == "5 min ago"
    assert format_age(T0, T0 + timedelta(hours=3)) == "3 h ago"
    assert format_age(T0, T0 + timedelta(days=2, hours=1)) == "2 d ago"


# ---------------------------------------------------------------------------- replay


def test_replay_uses_a_known_workflow_or_rebuilds_one() -> None:
    events = session_events()
    rebuilt = replay_workflow(events, [WORKFLOW])  # a different role set: not this one
    assert [r.name for r in rebuilt.roles] == ["architect", "coder"]
    assert rebuilt.role("coder").reads == ("architect",)
    assert rebuilt.synthesizer.name == "synthesizer"
    assert [c.title for c in rebuilt.chunks] == ["Requirements", "Review"]
    with pytest.raises(ReplayError):
        replay_workflow(events[1:])


async def _collect(replay: Replay) -> list[ev.Event]:
    return [event async for event in replay.events()]


def test_instant_replay_emits_the_recording_unchanged() -> None:
    events = session_events()
    replay = Replay(events, replay_workflow(events), speed=INSTANT)
    assert asyncio.run(_collect(replay)) == events
    assert replay.complete and math.isinf(replay.speed)


def test_a_paused_replay_holds_until_resumed_and_stop_ends_it() -> None:
    events = session_events()

    async def scenario() -> list[ev.Event]:
        replay = Replay(events, replay_workflow(events), speed=INSTANT)
        replay.pause()
        seen: list[ev.Event] = []
        stream = replay.events()
        seen.append(await anext(stream))  # the first recorded event was due before the pause
        seen.append(await anext(stream))  # then the pause shows
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # held
        replay.resume()
        seen.append(await waiting)
        seen.append(await anext(stream))
        replay.stop()
        seen.extend([event async for event in stream])
        return seen

    seen = asyncio.run(scenario())
    assert isinstance(seen[0], ev.SessionStarted)
    assert isinstance(seen[1], ev.Paused)
    assert isinstance(seen[2], ev.Resumed)
    assert seen[3] == events[1]
    assert len(seen) == 4  # stopped: nothing more


def test_the_read_interfaces_and_replay_load_no_ui() -> None:
    code = (
        "import sys\nimport facilitair_tui.library, facilitair_tui.replay\n"
        "print(','.join(m for m in ('textual', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_hit_on_an_imported_solution_says_so() -> None:
    from facilitair_tui.summaries import cache_summary

    hit = ev.CacheChecked(session_id="s", hit=True, similarity=0.97, matched_on="same task", imported=True)
    assert cache_summary(hit).startswith("Found an imported cached solution (97% match)")
    assert cache_summary(msgspec.structs.replace(hit, imported=False)).startswith("Found a cached solution")
