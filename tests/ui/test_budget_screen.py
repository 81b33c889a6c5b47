"""The budget guard in the TUI: the question appears, the session waits, and each answer works."""

from __future__ import annotations

from textual.widgets import Button

from facilitair_tui.core.budget import Budget
from facilitair_tui.core.cost import Price, PriceTable
from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.budget import BudgetScreen
from facilitair_tui.tui.screens.main import MainScreen

from .support import TASK, WORKFLOW, FakeClock, Script, wait_until

AGENTS = ("architect", "coder", "reviewer", "synthesizer")
PRICES = PriceTable(
    {
        **{f"scripted:{a}": Price(10.0, 40.0) for a in AGENTS},
        **{f"scripted:cheap-{a}": Price(0.01, 0.04) for a in AGENTS},
    },
    free_providers=(),
)
CHEAP = {agent: f"scripted:cheap-{agent}" for agent in AGENTS}
WIDE = (160, 45)


def app_with_budget(session_usd: float) -> tuple[FacilitairApp, ScriptedProvider]:
    provider = ScriptedProvider(Script())
    spec = SessionSpec(
        task=TASK, workflow=WORKFLOW.with_strategies({"cheap": CHEAP}), strategy="test", session_id="budget"
    )
    collaboration = Collaboration(
        spec,
        SingleProviderResolver(provider),
        clock=FakeClock(),
        prices=PRICES,
        retry=NO_RETRY,
        budget=Budget(session_usd=session_usd),
    )
    return FacilitairApp(collaboration, live_clock=False), provider


def asking(app: FacilitairApp) -> bool:
    """The budget question is on screen with its buttons (a pushed screen mounts them after)."""
    return isinstance(app.screen, BudgetScreen) and bool(app.screen.query("#budget-stop"))


def main_of(app: FacilitairApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


async def test_the_question_shows_the_session_waits_and_stop_ends_it_before_any_call() -> None:
    app, provider = app_with_budget(0.0001)
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: asking(app), "the budget question shows")
        question = app.screen
        assert isinstance(question, BudgetScreen)
        assert question.alert.chunk == 1 and question.alert.cheaper == "cheap"
        await wait_until(pilot, lambda: question.query_one("#budget-cheaper", Button).has_focus, "focus")
        screen = main_of(app)
        assert "waiting for your budget decision" in str(screen.status_bar.render())
        assert provider.calls == []
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        assert screen.view.final is not None and screen.view.final.status == "stopped"
        assert provider.calls == []


async def test_switching_to_the_cheaper_strategy_runs_on_its_models_and_says_so() -> None:
    app, provider = app_with_budget(0.0001)
    async with app.run_test(size=WIDE) as pilot:
        screen = main_of(app)
        answered = 0
        while not screen.has_class("-finished"):
            await wait_until(
                pilot,
                lambda: asking(app) or screen.has_class("-finished"),
                "a question or the end",
            )
            if isinstance(app.screen, BudgetScreen):
                # Switch when offered; if asked again on the cheap models, go on.
                await pilot.press("x" if app.screen.alert.cheaper else "c")
                answered += 1
                await pilot.pause()
        assert answered == 1  # on the cheap models every chunk fits
        final = screen.view.final
        assert final is not None and final.status == "done"
        assert screen.view.strategy == "cheap"
        assert {c.model for c in provider.calls} == {f"cheap-{agent}" for agent in AGENTS}
        assert "cheap-architect" in str(screen.header.query_one(".header-models").render())
