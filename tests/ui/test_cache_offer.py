"""The cache's offer in the TUI: a close but unproven match is shown beside the new task with
the differing words highlighted, and the user decides: ``u`` uses it, ``r`` runs the agents."""

from __future__ import annotations

from textual.widgets import Static

from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.summaries import differing_words
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.cache_offer import CacheOfferScreen, OfferChooser, highlighted
from facilitair_tui.tui.screens.main import MainScreen
from tests.unit.test_cache_engine import FakeCache, answer

from .support import TASK, WORKFLOW, Script, wait_until

WIDE = (200, 50)
CACHED_TASK = "Build a link shortener with analytics"
OFFER = answer(
    decision="offer",
    task=CACHED_TASK,
    matched_on="maybe the same task, worded differently (cosine 0.81); same language",
)


def app_with_offer() -> tuple[FacilitairApp, FakeCache, ScriptedProvider]:
    cache, provider, chooser = FakeCache(OFFER), ScriptedProvider(Script()), OfferChooser()
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", context={"language": "Python"})
    collab = Collaboration(
        spec, SingleProviderResolver(provider), retry=NO_RETRY, cache=cache, choose_offer=chooser
    )
    app = FacilitairApp(collab, live_clock=False)
    chooser.app = app
    return app, cache, provider


def offering(app: FacilitairApp) -> bool:
    return isinstance(app.screen, CacheOfferScreen) and bool(app.screen.query("#cache-offer-use"))


def main_of(app: FacilitairApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


async def test_the_offer_shows_both_tasks_and_u_uses_the_cached_answer() -> None:
    app, cache, provider = app_with_offer()
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: offering(app), "the app offers the cached answer")
        offer = app.screen
        assert isinstance(offer, CacheOfferScreen) and offer.asked == TASK
        shown = str(offer.query_one("#cache-offer-cached", Static).render())
        assert shown == CACHED_TASK
        assert "worded differently (cosine 0.81)" in str(offer.query_one("#cache-offer-why", Static).render())
        assert "Chunk 1." in str(offer.query_one("#cache-offer-answer", Static).render())
        await pilot.press("u")
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.view.finished, "the cached answer is played")
        assert provider.calls == [] and cache.answers == [("e1", True)]
        banner = str(screen.query_one("#cache-banner", Static).render())
        assert "offered and taken" in banner
        assert [screen.view.status(agent) for agent in screen.view.roles] == ["idle"] * 3


async def test_r_runs_the_agents_fresh() -> None:
    app, cache, provider = app_with_offer()
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: offering(app), "the app offers the cached answer")
        await pilot.press("r")
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.view.finished, "the agents ran")
        assert provider.calls and cache.answers == [("e1", False)]
        assert not screen.query_one("#cache-banner", Static).display
        assert screen.view.final is not None and not screen.view.final.from_cache


def test_the_words_that_differ_are_highlighted_on_both_sides() -> None:
    removed, added = differing_words("Copy the reports to S3 hourly.", "Copy the reports from S3 hourly.")
    assert [w for w, marked in removed if marked] == ["to"]
    assert [w for w, marked in added if marked] == ["from"]
    text = highlighted(added, "bold green")
    assert text.plain == "Copy the reports from S3 hourly."
    assert [text.plain[s.start : s.end] for s in text.spans if s.style] == ["from"]
