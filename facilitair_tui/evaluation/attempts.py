"""The two ways an eval answers a problem, on the same model with the same first prompt.

``single_attempt``: one call to the model the team's coder runs on, with the coder's first
prompt (``core.code_prompts.coder_messages``), its temperature, token limit and continuation of
a cut answer, through the gateway (retries, usage and stop reasons as the backend reported
them). ``team_attempt``: a session of the code workflow, recorded in the session store exactly
like ``facilitair collaborate`` records one (``facilitair_tui.recording``), so it can be
replayed and continued like any other.

Neither ever sees the problem's test: both are given ``task_text(problem)`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from facilitair_tui.config import Settings, load_settings
from facilitair_tui.core import events as ev
from facilitair_tui.core.code_prompts import coder_messages
from facilitair_tui.core.cost import add_costs
from facilitair_tui.core.gateway import Billed, Gateway, GatewayItem
from facilitair_tui.core.provider import (
    ChatRequest,
    ConfigurationError,
    ProviderError,
    TextDelta,
    UsageError,
)
from facilitair_tui.library import EventSink
from facilitair_tui.providers.token_count import count_tokens
from facilitair_tui.recording import drive, recorded, stop_at_budget
from facilitair_tui.session import Prepared, prepare, retry_policy
from facilitair_tui.store import SessionStore

from .problems import Problem, task_text

# An attempt's status: how the call or the session ended. "stopped": by the user (Ctrl-C) or,
# for a session, by the budget guard; such an attempt is not a result.
DONE, FAILED, STOPPED, BUDGET = "done", "failed", "stopped", "stopped at the budget"


@dataclass(frozen=True)
class Attempt:
    answer_text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_s: float
    session_id: str | None  # the team's recorded session; None for a single call
    status: str  # DONE, FAILED, STOPPED or BUDGET
    error: str = ""  # why a single call failed


@dataclass(frozen=True)
class Setup:
    """What every attempt of a run shares: the workflow (a packaged name or a file), the
    strategy or the one model every role runs on, the seed, and the settings (loaded once)."""

    workflow: str
    strategy: str | None = None
    model: str | None = None
    seed: int | None = None
    settings: Settings | None = None


# Wraps a session's recorder so that what it records is traced too (``traces.export.Tracing.wrap``).
Traced = Callable[[EventSink], EventSink]


class Stop:
    """Stopping an eval part way (Ctrl-C): ``request`` ends the attempt under way at once (its
    problem is not recorded, it runs again when the eval is resumed) and no other starts."""

    def __init__(self) -> None:
        self.requested = False
        self._current: Callable[[], None] | None = None

    def request(self) -> None:
        self.requested = True
        if self._current is not None:
            self._current()

    @contextlib.contextmanager
    def during(self, stop_attempt: Callable[[], None]) -> Iterator[None]:
        """While an attempt runs, ``request`` calls ``stop_attempt``."""
        self._current = stop_attempt
        if self.requested:
            stop_attempt()
        try:
            yield
        finally:
            self._current = None


def _prepare(problem: Problem, setup: Setup, *, team: bool) -> Prepared:
    return prepare(
        task_text(problem),
        # The code workflow tests the function the context names (the problem's test is not given).
        context=[f"function={problem.entry_point}"] if team else [],
        strategy=setup.strategy,
        model=setup.model,
        workflow=setup.workflow,
        settings=setup.settings,
        no_cache=True,
        # An eval runs the team's code without asking: that is what it is for (see the README).
        run_code="auto" if team else "never",
        seed=setup.seed,
    )


def check_setup(problem: Problem, setup: Setup) -> None:
    """Raises ConfigurationError (UsageError for a bad choice), saying what to do, before any
    problem runs: a model that cannot run here, a workflow without a code loop."""
    prepared = _prepare(problem, setup, team=False)
    workflow = prepared.collaboration.workflow
    if workflow.code is None:
        raise UsageError(
            f"workflow {workflow.name!r} has no [code] section; an eval needs a coder whose code is "
            "tested (the packaged `code` workflow, or a copy of it)"
        )


async def single_attempt(problem: Problem, setup: Setup, stop: Stop | None = None) -> Attempt:
    """One call to the team's coder model, exactly as the team's first call to it is made."""
    prepared = _prepare(problem, setup, team=False)
    spec = prepared.collaboration.spec
    workflow = spec.workflow
    assert workflow.code is not None  # check_setup said so before the run started
    coder = workflow.role(workflow.code.coder)
    chain = (spec.models()[coder.name], *spec.fallbacks.get(coder.name, ()))
    registry = prepared.registry
    # The gateway the session would build: the same retries, limits and token counting.
    policy = retry_policy(setup.settings or load_settings())
    gateway = Gateway(registry, policy, registry.limits(), count_tokens=count_tokens)
    defaults = workflow.defaults
    request = ChatRequest(
        model=chain[0].model,
        messages=coder_messages(coder, task_text(problem)),
        max_tokens=coder.max_tokens or defaults.max_tokens,
        temperature=defaults.temperature if coder.temperature is None else coder.temperature,
        seed=setup.seed,
    )
    # As the team's calls continue a cut answer: the role's count, unless the workflow turns it off.
    continue_cut = defaults.continue_cut
    if continue_cut and coder.continue_cut is not None:
        continue_cut = coder.continue_cut
    pieces: list[str] = []
    billed: list[Billed] = []

    def sink(item: GatewayItem) -> None:
        if isinstance(item, TextDelta):
            pieces.append(item.text)
        elif isinstance(item, Billed):
            billed.append(item)

    started = time.perf_counter()
    status, error = DONE, ""
    call = asyncio.ensure_future(gateway.call(chain, request, sink, continue_cut=continue_cut))

    def stop_call() -> None:
        call.cancel()

    try:
        with (stop or Stop()).during(stop_call):
            await call
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():  # the eval itself is being cancelled
            raise
        status = STOPPED
    except (ProviderError, ConfigurationError) as exc:  # a failed call is a failed problem
        status, error = FAILED, str(exc)
    finally:
        await prepared.aclose()
    prices = registry.prices()
    return Attempt(
        answer_text="".join(pieces),
        input_tokens=sum(b.usage.input_tokens for b in billed),
        output_tokens=sum(b.usage.output_tokens for b in billed),
        cost_usd=add_costs(prices.cost(b.model, b.usage) for b in billed),
        duration_s=time.perf_counter() - started,
        session_id=None,
        status=status,
        error=error,
    )


async def team_attempt(
    problem: Problem,
    setup: Setup,
    store: SessionStore,
    stop: Stop | None = None,
    warn: Callable[[str], None] = lambda problem: None,
    traced: Traced | None = None,
) -> Attempt:
    """A recorded session of the workflow on the problem; its answer is the session's output.
    ``warn`` is told (once each) of a problem with recording it; ``traced`` wraps its recorder."""
    prepared = _prepare(problem, setup, team=True)
    collaboration = prepared.collaboration
    recorder: EventSink = store.recorder(collaboration.spec, collaboration.session_id)
    if traced is not None:
        recorder = traced(recorder)
    budget_stop = False

    def watch(event: ev.Event) -> None:
        nonlocal budget_stop
        budget_stop = budget_stop or isinstance(event, ev.BudgetExceeded)

    started = time.perf_counter()
    with (stop or Stop()).during(collaboration.stop):
        final = await drive(collaboration, recorded(recorder, watch, warn), prepared.aclose, stop_at_budget)
    duration_s = time.perf_counter() - started
    if final is None:  # the session never finished (its recording says so)
        return Attempt("", 0, 0, None, duration_s, collaboration.session_id, STOPPED)
    status: str = final.status
    if status == "stopped" and budget_stop and not (stop and stop.requested):
        status = BUDGET
    return Attempt(
        answer_text=final.output,
        input_tokens=final.input_tokens,
        output_tokens=final.output_tokens,
        cost_usd=final.cost_usd,
        duration_s=duration_s,
        session_id=collaboration.session_id,
        status=status,
    )
