"""Fixtures for the cache inspector and history tests: seeded entries, fixed times, a tiny app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.app import App
from textual.screen import Screen

from facilitair_tui.core import events as ev
from facilitair_tui.library import CachedSolution, EmptyCacheCatalog
from facilitair_tui.providers.scripted import ScriptedProvider
from facilitair_tui.store import SessionStore
from facilitair_tui.tui.app import FacilitairApp

from .support import FakeClock, Script, collaboration

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def fixed_now() -> datetime:
    return NOW


class ScreenApp(App[None]):
    """The app's stylesheet and one screen: how a snapshot case shows a single screen."""

    CSS_PATH = FacilitairApp.CSS_PATH

    def __init__(self, make_screen: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self._make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self._make_screen())


def seeded_solutions() -> list[CachedSolution]:
    def entry(n: int, task: str, context: dict[str, str], age: timedelta, hits: int) -> CachedSolution:
        return CachedSolution(
            id=f"sol-{n}",
            task=task,
            context=context,
            output=f"## Implementation\n\n{task}: the **code**.\n\n## Review\n\nLooks right.",
            syntheses=[f"Merged plan {n}"],
            models={"architect": "local:smollm2"},
            cost_usd=0.0125 * n,
            duration_s=40.0 + n,
            created_at=NOW - age,
            hits=hits,
            last_hit=NOW - age / 2 if hits else None,
            saved_usd=0.0125 * n * hits if hits else None,
        )

    return [
        entry(
            1,
            "Build a REST API for a todo list",
            {"language": "python", "frameworks": "fastapi"},
            timedelta(hours=3),
            2,
        ),
        entry(2, "Write a URL shortener", {"language": "go"}, timedelta(days=2), 0),
        entry(3, "Design a rate limiter", {"language": "rust", "team_size": "3"}, timedelta(minutes=12), 5),
    ]


def recorded_session(sid: str, task: str, *, finished: bool, cost: float) -> list[ev.Event]:
    """A small hand-written session: one agent, one chunk, tenths of a second apart."""
    events: list[ev.Event] = [
        ev.SessionStarted(
            session_id=sid,
            t=0.0,
            task=task,
            context={},
            strategy="test",
            workflow="recorded",
            models={"architect": "scripted:architect", "synthesizer": "scripted:synthesizer"},
            chunks=["Requirements", "Implementation"],
        ),
        ev.ChunkStarted(session_id=sid, t=0.1, chunk=1, title="Requirements", total=2),
        ev.AgentStarted(session_id=sid, t=0.2, agent="architect", chunk=1, model="scripted:architect"),
    ]
    events += [
        ev.Token(session_id=sid, t=0.3 + i / 10, agent="architect", chunk=1, text=f"word{i} ")
        for i in range(8)
    ]
    events.append(
        ev.AgentFinished(
            session_id=sid,
            t=1.2,
            agent="architect",
            chunk=1,
            input_tokens=10,
            output_tokens=8,
            latency_ms=900.0,
            cost_usd=cost,
            status="done",
        )
    )
    if finished:
        events.append(
            ev.SessionFinished(
                session_id=sid,
                t=1.3,
                status="done",
                output="## Requirements\n\nword0 word1",
                input_tokens=10,
                output_tokens=8,
                cost_usd=cost,
                duration_s=1.3,
            )
        )
    for seq, event in enumerate(events, start=1):
        event.seq = seq
    return events


def open_store(directory: Path) -> SessionStore:
    return SessionStore.open(directory / "sessions.db")


def write_recording(store: SessionStore, events: list[ev.Event], ended_at: datetime) -> None:
    """Store a recording whose last event happened at ``ended_at``."""
    store.import_events(events, started_at=ended_at.timestamp() - events[-1].t)


def recorded_live_app(tmp_path: Path, **options: Any) -> FacilitairApp:
    """A scripted session recorded in a store in ``tmp_path`` (``options``: more of the app's)."""
    return FacilitairApp(
        collaboration(ScriptedProvider(Script()), clock=FakeClock(0.25)),
        store=open_store(tmp_path / "sessions"),
        catalog=EmptyCacheCatalog(),
        live_clock=False,
        **options,
    )
