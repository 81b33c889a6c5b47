"""Putting a collaboration together from what the user asked for.

Both front ends (the CLI and the TUI) call ``prepare``: it loads the settings and the workflow,
checks every model can run here before anything starts, and returns a ready ``Collaboration``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Settings, load_settings
from .core.context import parse_context
from .core.orchestrator import Collaboration, SessionSpec
from .core.provider import ModelRef
from .core.workflow import load_workflow
from .providers.registry import ProviderRegistry


@dataclass
class Prepared:
    collaboration: Collaboration
    registry: ProviderRegistry

    async def aclose(self) -> None:
        await self.registry.aclose()


def prepare(
    task: str,
    *,
    context: Sequence[str] = (),
    strategy: str | None = None,
    model: str | None = None,
    workflow: str | Path | None = None,
    max_tokens: int | None = None,
    read_after_tokens: int | None = None,
    settings: Settings | None = None,
) -> Prepared:
    """Raises ConfigurationError (with a message saying what to do) for anything that can't run."""
    settings = settings or load_settings()
    wf = load_workflow(workflow)
    chosen = strategy or settings.default_strategy or wf.default_strategy
    spec = SessionSpec(
        task=task,
        workflow=wf,
        strategy=chosen,
        context=parse_context(context),
        model_override=ModelRef.parse(model) if model else None,
        max_tokens=max_tokens,
        read_after_tokens=read_after_tokens,
    )
    registry = ProviderRegistry(settings)
    registry.check_all(spec.models().values())
    return Prepared(Collaboration(spec, registry, prices=registry.prices()), registry)
