"""A session the cache answered, in the TUI: the seeds' line says from where and why, no agent
runs, and ``r`` runs the agents on the same request instead."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.session import Prepared
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.main import MainScreen
from tests.unit.test_cache_engine import FakeCache, answer

from .support import TASK, WORKFLOW, Script, wait_until

WIDE = (200, 50)


class NoRegistry:
    async def aclose(self) -> None:
        pass


def prepared(cache: FakeCache | None) -> tuple[Prepared, ScriptedProvider]:
    provider = ScriptedProvider(Script())
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", context={"language": "Python"})
    collab = Collaboration(spec, SingleProviderResolver(provider), retry=NO_RETRY, cache=cache)
    return Prepared(collab, NoRegistry(), request={"context": ("language=Python",)}), provider  # type: ignore[arg-type]


async def test_a_cached_session_says_why_and_r_runs_the_agents_instead() -> None:
    first, first_provider = prepared(FakeCache(answer()))
    fresh, fresh_provider = prepared(None)
    asked: list[tuple[str, dict[str, Any]]] = []

    def prepare(task: str, **options: Any) -> Prepared:
        asked.append((task, options))
        return fresh

    app = FacilitairApp(first.collaboration, prepared=first, prepare=prepare, live_clock=False)
    async with app.run_test(size=WIDE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await wait_until(pilot, lambda: screen.view.finished, "the cached session is played")
        banner = screen.query_one("#cache-banner", Static)
        assert banner.display
        text = str(banner.render())
        assert "Found a cached solution (93% match), cached 2 h ago, context: Python" in text
        assert "saves $0.3100" in text and "same task, worded differently" in text
        assert first_provider.calls == []
        # True statuses: no agent ran.
        assert [screen.view.status(agent) for agent in screen.view.roles] == ["idle"] * 3
        assert screen.check_action("run_fresh", ()) is True

        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen is not screen, "a fresh session starts")
        assert asked == [(TASK, {"context": ("language=Python",), "no_cache": True})]
        again = app.screen
        assert isinstance(again, MainScreen) and app.prepared is fresh
        await wait_until(pilot, lambda: again.view.finished, "the fresh session ends")
        assert fresh_provider.calls
        assert not again.query_one("#cache-banner", Static).display
        assert again.check_action("run_fresh", ()) is False
