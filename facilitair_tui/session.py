"""Putting a collaboration together from what the user asked for.

Both front ends (the CLI and the TUI) call ``prepare``: it loads the settings and the workflow,
checks every model can run here before anything starts, and returns a ready ``Collaboration``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import paths, spend
from .config import Settings, load_settings
from .core import events as ev
from .core.budget import Budget
from .core.context import parse_context
from .core.gateway import RetryPolicy
from .core.orchestrator import Collaboration, SessionSpec
from .core.provider import ConfigurationError, ModelRef
from .core.workflow import Workflow, load_workflow
from .providers.registry import ProviderRegistry
from .tokens import count_tokens

BALANCED = "balanced"


@dataclass
class Prepared:
    collaboration: Collaboration
    registry: ProviderRegistry

    async def aclose(self) -> None:
        await self.registry.aclose()

    def record_spend(self, final: ev.SessionFinished | None) -> None:
        """Count the session's cost in today's spend (for the daily budget)."""
        if final is not None:
            with contextlib.suppress(OSError):  # losing the tally must not lose the session
                spend.record(final.cost_usd)


def prepare(
    task: str,
    *,
    context: Sequence[str] = (),
    strategy: str | None = None,
    model: str | None = None,
    workflow: str | Path | None = None,
    max_tokens: int | None = None,
    read_after_tokens: int | None = None,
    budget_usd: float | None = None,
    settings: Settings | None = None,
) -> Prepared:
    """Raises ConfigurationError (with a message saying what to do) for anything that can't run."""
    settings = settings or load_settings()
    wf = workflow_with_settings(workflow, settings)
    registry = ProviderRegistry(settings)
    chosen = choose_strategy(strategy, settings, wf, registry)
    spec = SessionSpec(
        task=task,
        workflow=wf,
        strategy=chosen,
        context=parse_context(context),
        model_override=ModelRef.parse(model) if model else None,
        max_tokens=max_tokens,
        read_after_tokens=read_after_tokens,
    )
    if spec.model_override is None:
        # Each role runs on the first model of its list that can run here (a key set, the model
        # installed) and falls back on the others that can; one with none fails on its first.
        chains = usable_chains(wf, chosen, registry)
        registry.check_all(wf.models_for(chosen)[name] for name, chain in chains.items() if not chain)
        spec = replace(
            spec,
            role_models={name: chain[0] for name, chain in chains.items()},
            fallbacks={name: chain[1:] for name, chain in chains.items()},
        )
    registry.check_all(spec.models().values())
    budget = Budget(
        session_usd=budget_usd if budget_usd is not None else settings.budget.session_usd,
        daily_usd=settings.budget.daily_usd,
        spent_today_usd=spend.spent_today() if settings.budget.daily_usd is not None else 0.0,
    )
    collaboration = Collaboration(
        spec,
        registry,
        prices=registry.prices(),
        limits=registry.limits(),
        budget=budget,
        usable=registry.usable,
        count_tokens=count_tokens,
        retry=RetryPolicy(
            attempts_per_model=settings.reliability.attempts_per_model,
            base_delay_s=settings.reliability.base_delay_s,
            max_delay_s=settings.reliability.max_delay_s,
            stall_s=settings.reliability.stall_s,
        ),
    )
    return Prepared(collaboration, registry)


def workflow_with_settings(workflow: str | Path | None, settings: Settings) -> Workflow:
    """The workflow with the config file's ``[strategies]`` tables applied."""
    wf = load_workflow(workflow)
    try:
        return wf.with_strategies(settings.strategies)
    except ValueError as exc:
        raise ConfigurationError(f"{paths.config_file()}: {exc}") from None


def choose_strategy(
    requested: str | None, settings: Settings, wf: Workflow, registry: ProviderRegistry
) -> str:
    """The strategy asked for, else the config file's default, else BALANCED when every role has
    a model of its list that can run here (a key is set for it), else the workflow's default
    (LOCAL: the embedded model, no key needed)."""
    if requested:
        return requested
    if settings.default_strategy:
        return settings.default_strategy
    if BALANCED in wf.strategies and all(usable_chains(wf, BALANCED, registry).values()):
        return BALANCED
    return wf.default_strategy


def usable_chains(wf: Workflow, strategy: str, registry: ProviderRegistry) -> dict[str, tuple[ModelRef, ...]]:
    """Role -> the models of its list for ``strategy`` that can run here, in order."""
    return wf.usable_chains(strategy, registry.usable)
