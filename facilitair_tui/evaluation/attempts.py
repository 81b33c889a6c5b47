"""The two ways an eval answers a problem, on the same model with the same first prompt.

``single_attempt``: one call to the model the team's coder runs on, with the coder's first
prompt (``core.code_prompts.coder_messages``), through the gateway (retries, continuation of a
cut answer, usage and stop reasons as the backend reported them). ``team_attempt``: a recorded
session of the code workflow, which can be replayed like any other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from facilitair_tui.core import events as ev
from facilitair_tui.core.code_prompts import coder_messages
from facilitair_tui.core.cost import add_costs
from facilitair_tui.core.gateway import Billed, Gateway, GatewayItem, RetryPolicy
from facilitair_tui.core.provider import ChatRequest, ConfigurationError, ProviderError, TextDelta
from facilitair_tui.session import Prepared, prepare
from facilitair_tui.store import SessionStore

from .problems import Problem, task_text


@dataclass(frozen=True)
class Attempt:
    answer: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_s: float
    status: str  # the session's status, or "done" / "failed" for a single call
    session_id: str | None = None


@dataclass(frozen=True)
class Setup:
    """What every attempt of a run shares."""

    workflow: str
    strategy: str | None = None
    model: str | None = None
    seed: int | None = None


def _prepare(problem: Problem, setup: Setup, *, team: bool) -> Prepared:
    return prepare(
        task_text(problem),
        context=[f"function={problem.entry_point}"] if team else [],
        strategy=setup.strategy,
        model=setup.model,
        workflow=setup.workflow,
        no_cache=True,
        run_code="auto" if team else "never",
        seed=setup.seed,
    )


def check_setup(problem: Problem, setup: Setup) -> None:
    """Raises ConfigurationError (saying what to do) before any problem runs."""
    prepared = _prepare(problem, setup, team=False)
    if prepared.collaboration.workflow.code is None:
        from facilitair_tui.core.provider import UsageError

        raise UsageError(
            f"workflow {prepared.collaboration.workflow.name!r} has no [code] loop; an eval needs one "
            "(the packaged `code` workflow, or a copy of it)"
        )


async def single_attempt(problem: Problem, setup: Setup) -> Attempt:
    prepared = _prepare(problem, setup, team=False)
    spec = prepared.collaboration.spec
    workflow = spec.workflow
    assert workflow.code is not None
    coder = workflow.role(workflow.code.coder)
    models = spec.models()
    chain = (models[coder.name], *spec.fallbacks.get(coder.name, ()))
    registry = prepared.registry
    gateway = Gateway(registry, RetryPolicy(), registry.limits())
    request = ChatRequest(
        model=chain[0].model,
        messages=coder_messages(coder, task_text(problem)),
        max_tokens=coder.max_tokens or workflow.defaults.max_tokens,
        temperature=workflow.defaults.temperature if coder.temperature is None else coder.temperature,
        seed=setup.seed,
    )
    pieces: list[str] = []
    billed: list[Billed] = []

    def sink(item: GatewayItem) -> None:
        if isinstance(item, TextDelta):
            pieces.append(item.text)
        elif isinstance(item, Billed):
            billed.append(item)

    started = time.perf_counter()
    status = "done"
    continue_cut = workflow.defaults.continue_cut if coder.continue_cut is None else coder.continue_cut
    try:
        await gateway.call(chain, request, sink, continue_cut=continue_cut)
    except (ProviderError, ConfigurationError):  # a failed call is a failed problem, said in its status
        status = "failed"
    finally:
        await prepared.aclose()
    prices = registry.prices()
    return Attempt(
        answer="".join(pieces),
        input_tokens=sum(b.usage.input_tokens for b in billed),
        output_tokens=sum(b.usage.output_tokens for b in billed),
        cost_usd=add_costs(prices.cost(b.model, b.usage) for b in billed),
        duration_s=time.perf_counter() - started,
        status=status,
    )


async def team_attempt(problem: Problem, setup: Setup, store: SessionStore) -> Attempt:
    prepared = _prepare(problem, setup, team=True)
    collaboration = prepared.collaboration
    recorder = store.recorder(collaboration.spec, collaboration.session_id)
    started = time.perf_counter()
    final: ev.SessionFinished | None = None
    try:
        async for event in collaboration.events():
            await recorder.record_async(event)
            if isinstance(event, ev.SessionFinished):
                final = event
    finally:
        await prepared.aclose()
    if final is None:
        return Attempt("", 0, 0, None, time.perf_counter() - started, "failed", collaboration.session_id)
    return Attempt(
        answer=final.output,
        input_tokens=final.input_tokens,
        output_tokens=final.output_tokens,
        cost_usd=final.cost_usd,
        duration_s=time.perf_counter() - started,
        status=final.status,
        session_id=collaboration.session_id,
    )
