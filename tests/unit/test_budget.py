"""The budget guard: forecast before each chunk, pause for the user's decision, and each decision."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.budget import Budget
from facilitair_tui.core.cost import Price, PriceTable, add_costs
from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ModelRef
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from tests.unit.test_orchestrator import (
    AGENTS,
    ROLES,
    TASK,
    WORKFLOW,
    Script,
    assert_well_formed,
    of_type,
    run,
)

EXPENSIVE = Price(10.0, 40.0)
CHEAP = Price(0.1, 0.4)
PRICES = PriceTable(
    {
        **{f"scripted:{agent}": EXPENSIVE for agent in AGENTS},
        **{f"scripted:cheap-{agent}": CHEAP for agent in AGENTS},
    },
    free_providers=(),
)


def session(budget: Budget, prices: PriceTable = PRICES) -> tuple[Collaboration, ScriptedProvider]:
    provider = ScriptedProvider(Script())
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test")
    collab = Collaboration(
        spec, SingleProviderResolver(provider), prices=prices, retry=NO_RETRY, budget=budget
    )
    return collab, provider


def deciding(
    collab: Collaboration, answer: Callable[[ev.BudgetExceeded], None]
) -> Callable[[ev.Event], None]:
    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.BudgetExceeded):
            assert collab.awaiting_budget
            answer(event)

    return on_event


async def test_without_a_budget_nothing_is_asked() -> None:
    collab, _ = session(Budget())
    events = await run(collab)
    assert not of_type(events, ev.BudgetExceeded)
    assert events[-1].status == "done"  # type: ignore[attr-defined]


async def test_a_chunk_that_could_pass_the_budget_waits_and_stop_ends_before_any_call() -> None:
    collab, provider = session(Budget(session_usd=0.001))
    events = await run(collab, deciding(collab, lambda e: collab.decide_budget("stop")))
    assert_well_formed(events, collab)
    (alert,) = of_type(events, ev.BudgetExceeded)
    assert (alert.chunk, alert.title, alert.scope, alert.limit_usd, alert.spent_usd) == (
        1,
        "Requirements",
        "session",
        0.001,
        0.0,
    )
    assert alert.forecast_usd > 0.001
    (decision,) = of_type(events, ev.BudgetDecision)
    assert decision.choice == "stop"
    assert provider.calls == []  # nothing was spent
    assert not of_type(events, ev.ChunkStarted)
    assert events[-1].status == "stopped"  # type: ignore[attr-defined]


async def test_the_forecast_is_an_upper_bound_of_what_each_chunk_costs() -> None:
    collab, _ = session(Budget(session_usd=0.0))  # every chunk asks; the answer is always go on
    events = await run(collab, deciding(collab, lambda e: collab.decide_budget("continue")))
    alerts = of_type(events, ev.BudgetExceeded)
    assert [a.chunk for a in alerts] == [1, 2, 3, 4]
    finished = of_type(events, ev.AgentFinished)
    for alert in alerts:
        actual = add_costs(f.cost_usd for f in finished if f.chunk == alert.chunk)
        assert actual is not None and 0 < actual <= alert.forecast_usd
    spent = 0.0
    for alert in alerts:  # what was spent before each chunk is reported exactly
        assert alert.spent_usd == pytest.approx(spent, rel=1e-9, abs=1e-12)
        spent += add_costs(f.cost_usd for f in finished if f.chunk == alert.chunk) or 0.0
    assert events[-1].status == "done"  # type: ignore[attr-defined]


async def test_switching_to_a_cheaper_strategy_runs_the_rest_on_its_models() -> None:
    collab, provider = session(Budget(session_usd=0.0))  # every chunk asks
    cheap = {agent: ModelRef("scripted", f"cheap-{agent}") for agent in AGENTS}
    answers: list[str] = []

    def answer(alert: ev.BudgetExceeded) -> None:
        # Switch before chunk 2; the re-forecast on the cheap models still asks: go on.
        if alert.chunk == 2 and "cheaper" not in answers:
            answers.append("cheaper")
            collab.decide_budget("cheaper", strategy="cheap", models=cheap)
        else:
            answers.append("continue")
            collab.decide_budget("continue")

    events = await run(collab, deciding(collab, answer))
    assert_well_formed(events, collab)
    switch = [d for d in of_type(events, ev.BudgetDecision) if d.choice == "cheaper"]
    assert len(switch) == 1 and switch[0].strategy == "cheap"
    assert switch[0].models == {agent: f"scripted:cheap-{agent}" for agent in AGENTS}
    assert [a.chunk for a in of_type(events, ev.BudgetExceeded)] == [1, 2, 2, 3, 4]  # chunk 2 re-forecast
    for started in of_type(events, ev.AgentStarted):
        expected = f"scripted:cheap-{started.agent}" if started.chunk >= 2 else f"scripted:{started.agent}"
        assert started.model == expected
    assert [c.model for c in provider.calls][-4:] == [f"cheap-{agent}" for agent in AGENTS]
    assert events[-1].status == "done"  # type: ignore[attr-defined]


async def test_the_day_budget_counts_what_was_spent_earlier_today() -> None:
    collab, _ = session(Budget(daily_usd=1.0, spent_today_usd=0.9999))
    events = await run(collab, deciding(collab, lambda e: collab.decide_budget("stop")))
    (alert,) = of_type(events, ev.BudgetExceeded)
    assert alert.scope == "day" and alert.limit_usd == 1.0


async def test_unknown_prices_are_said_once_and_the_session_goes_on() -> None:
    collab, _ = session(Budget(session_usd=0.001), prices=PriceTable({}, free_providers=()))
    events = await run(collab)
    warnings = [e for e in of_type(events, ev.Error) if "budget cannot be enforced" in e.message]
    assert len(warnings) == 1 and warnings[0].recoverable
    assert "scripted:architect" in warnings[0].message
    assert not of_type(events, ev.BudgetExceeded)
    assert events[-1].status == "done"  # type: ignore[attr-defined]


async def test_decide_budget_without_a_pending_question_is_refused() -> None:
    collab, _ = session(Budget(session_usd=10.0))
    with pytest.raises(RuntimeError, match="not waiting for a budget decision"):
        collab.decide_budget("continue")


async def test_stop_while_waiting_for_the_decision_ends_the_session_stopped() -> None:
    collab, _ = session(Budget(session_usd=0.0))
    events = await run(collab, deciding(collab, lambda e: collab.stop()))
    assert events[-1].status == "stopped"  # type: ignore[attr-defined]
    assert ROLES  # the workflow's roles never started
    assert not of_type(events, ev.AgentStarted)


async def test_the_guard_offers_the_cheapest_strategy_that_can_run_here_and_switches_to_it() -> None:
    cheap = {agent: f"scripted:cheap-{agent}" for agent in AGENTS}
    dear = {agent: f"scripted:dear-{agent}" for agent in AGENTS}  # unpriced: never offered
    workflow = WORKFLOW.with_strategies({"cheap": cheap, "dear": dear})
    provider = ScriptedProvider(Script())
    spec = SessionSpec(task=TASK, workflow=workflow, strategy="test")
    collab = Collaboration(
        spec,
        SingleProviderResolver(provider),
        prices=PRICES,
        retry=NO_RETRY,
        budget=Budget(session_usd=0.0),
        usable=lambda ref: not ref.model.startswith("dear-"),
    )
    offers: list[tuple[str | None, float | None, float]] = []

    def answer(alert: ev.BudgetExceeded) -> None:
        offers.append((alert.cheaper, alert.cheaper_forecast_usd, alert.forecast_usd))
        if alert.cheaper is not None:
            collab.decide_budget("cheaper")
        else:
            collab.decide_budget("stop")

    events = await run(collab, deciding(collab, answer))
    strategy, cheaper_forecast, forecast = offers[0]
    assert strategy == "cheap" and cheaper_forecast is not None and cheaper_forecast < forecast
    assert offers[1][0] is None  # on the cheap models nothing cheaper is left: the answer is stop
    (switch,) = [d for d in of_type(events, ev.BudgetDecision) if d.choice == "cheaper"]
    assert switch.strategy == "cheap" and switch.models == cheap
    assert events[-1].status == "stopped"  # type: ignore[attr-defined]
