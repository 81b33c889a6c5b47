"""What the task entry starts from: the command line's choices, checked before the app opens.

``EntryOptions.load`` validates the options ``facilitair-tui`` got without ``--task`` (context,
strategy, model, workflow) so bad input still fails in one line before any screen appears.
``missing_model`` says whether the chosen strategy needs an embedded model that is not
installed yet (the first-run screen offers to install it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from facilitair_tui import embedded_models
from facilitair_tui.config import Settings, load_settings
from facilitair_tui.core.context import parse_context
from facilitair_tui.core.provider import ConfigurationError, ModelRef, UsageError
from facilitair_tui.session import choose_strategy, workflow_with_settings


@dataclass(frozen=True)
class EntryOptions:
    strategies: tuple[str, ...]
    default_strategy: str
    context: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None
    workflow: Path | None = None
    max_tokens: int | None = None
    budget_usd: float | None = None
    no_cache: bool = False
    # The models each strategy runs (role -> "provider:model"), for the first-run check.
    strategy_models: Mapping[str, tuple[ModelRef, ...]] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        *,
        context: Sequence[str] = (),
        strategy: str | None = None,
        model: str | None = None,
        workflow: Path | None = None,
        max_tokens: int | None = None,
        budget_usd: float | None = None,
        no_cache: bool = False,
        settings: Settings | None = None,
    ) -> EntryOptions:
        """Raises UsageError / ConfigurationError with the same messages as ``session.prepare``."""
        settings = settings or load_settings()
        wf = workflow_with_settings(workflow, settings)
        chosen = choose_strategy(strategy, settings, wf).strip().lower()
        if chosen not in wf.strategies:
            raise UsageError(f"unknown strategy {chosen!r}; this workflow offers: {', '.join(wf.strategies)}")
        if model:
            ModelRef.parse(model)
        return cls(
            strategies=wf.strategies,
            default_strategy=chosen,
            context=parse_context(context),
            model=model,
            workflow=workflow,
            max_tokens=max_tokens,
            budget_usd=budget_usd,
            no_cache=no_cache,
            strategy_models={name: tuple(wf.models_for(name).values()) for name in wf.strategies},
        )

    def models_of(self, strategy: str) -> tuple[ModelRef, ...]:
        if self.model:
            return (ModelRef.parse(self.model),)
        return self.strategy_models.get(strategy, ())


def missing_model(refs: Sequence[ModelRef]) -> embedded_models.EmbeddedModel | None:
    """The first embedded model these refs need that is not installed (unknown names are left to
    ``session.prepare``, which reports them)."""
    for ref in refs:
        if ref.provider != "local":
            continue
        try:
            model = embedded_models.get(ref.model)
        except ConfigurationError:
            continue
        if not model.installed():
            return model
    return None
