"""The budget guard: before each chunk, will the session stay within its budget?

When what was spent plus the chunk's forecast (``core.budget``) could pass a limit, the guard
emits ``budget_exceeded`` with the cheapest other strategy that can run here, and the session
waits for the user's answer (``decide``): go on, go on with cheaper models, or stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from . import events as ev
from .agent_call import CallLedger
from .budget import Budget, BudgetChoice, CallEstimate, forecast_usd, unpriced
from .cost import PriceTable
from .event_stream import EventStream
from .provider import ModelRef
from .session_spec import SessionSpec
from .workflow import Chunk

# Tokens of a prompt besides the system prompt, task and upstream text (stage, instructions).
PROMPT_FRAME_TOKENS = 200


class BudgetGuard:
    """One session's budget checks and the user's answers to them.

    ``models`` and ``fallbacks`` are the session's own dictionaries: "cheaper" changes them in
    place, for the calls that follow."""

    def __init__(
        self,
        budget: Budget,
        spec: SessionSpec,
        stream: EventStream,
        ledger: CallLedger,
        *,
        models: dict[str, ModelRef],
        fallbacks: dict[str, tuple[ModelRef, ...]],
        prices: PriceTable,
        usable: Callable[[ModelRef], bool],
    ) -> None:
        self.budget = budget
        self._spec = spec
        self._workflow = spec.workflow
        self._stream = stream
        self._ledger = ledger
        self._models = models
        self._fallbacks = fallbacks
        self._prices = prices
        self._usable = usable
        self._decision: asyncio.Future[BudgetChoice] | None = None
        self._warned = False
        self._today_warned = False
        self._offered: str | None = None  # the cheaper strategy the guard offered last

    @property
    def awaiting(self) -> bool:
        """The session waits for the user's answer to a ``budget_exceeded`` event."""
        return self._decision is not None and not self._decision.done()

    def decide(
        self,
        choice: BudgetChoice,
        *,
        strategy: str | None = None,
        models: Mapping[str, ModelRef] | None = None,
        fallbacks: Mapping[str, Sequence[ModelRef]] | None = None,
    ) -> None:
        """See ``Collaboration.decide_budget``."""
        future = self._decision
        if future is None or future.done():
            raise RuntimeError("the session is not waiting for a budget decision")
        if choice not in ("continue", "cheaper", "stop"):
            raise ValueError(f"a budget decision is continue, cheaper or stop, not {choice!r}")
        if choice == "cheaper":
            if models is None:
                strategy = strategy or self._offered
                if strategy is None:
                    raise ValueError("no cheaper strategy can run here")
                chains = self._workflow.usable_chains(strategy, self._usable)
                if not all(chains.values()):
                    raise ValueError(f"strategy {strategy!r} cannot run here")
                models = {name: chain[0] for name, chain in chains.items()}
                fallbacks = {name: chain[1:] for name, chain in chains.items()}
            self._models.update(models)
            self._fallbacks.update({k: tuple(v) for k, v in (fallbacks or {}).items()})
        shown = {name: str(ref) for name, ref in (models or {}).items()}
        decision = ev.BudgetDecision(
            session_id=self._stream.session_id, choice=choice, strategy=strategy, models=shown
        )
        decision.t = self._stream.now()
        self._stream.deliver_or_hold(decision, control=True)
        future.set_result(choice)

    async def within_budget(self, index: int, chunk: Chunk) -> bool:
        """Check the next chunk against the budget; wait for the user when it could pass it."""
        budget = self.budget
        stream = self._stream
        while budget.active:
            spent = self._ledger.spent_usd()
            forecast = forecast_usd(self._chunk_calls(index), self._prices)
            if spent is None or forecast is None:
                if not self._warned:
                    self._warned = True
                    unknown = ", ".join(unpriced(self._models, self._prices)) or "a model used so far"
                    stream.emit(
                        ev.Error(
                            session_id=stream.session_id,
                            recoverable=True,
                            message=f"the price of {unknown} is unknown, so the budget cannot be enforced; "
                            'add it under [prices."provider:model"] in the config file',
                        )
                    )
                return True
            # Asked afresh each time: sessions running at once count each other's spend.
            elsewhere = await asyncio.to_thread(budget.spent_elsewhere_today, stream.session_id)
            if elsewhere is None and not self._today_warned:
                self._today_warned = True
                stream.emit(
                    ev.Error(
                        session_id=stream.session_id,
                        recoverable=True,
                        message="what other sessions spent today cannot be read from the session store, "
                        "so the daily budget cannot be enforced (the session's own budget still is)",
                    )
                )
            breach = budget.breach(spent, forecast, elsewhere)
            if breach is None:
                return True
            scope, limit = breach
            self._offered, offered_forecast = self._cheapest_other(index, forecast)
            self._decision = asyncio.get_running_loop().create_future()
            alert = ev.BudgetExceeded(
                session_id=stream.session_id,
                chunk=index,
                title=chunk.title,
                spent_usd=round(spent + (elsewhere or 0.0) if scope == "day" else spent, 6),
                forecast_usd=round(forecast, 6),
                limit_usd=limit,
                scope=scope,
                cheaper=self._offered,
                cheaper_forecast_usd=None if offered_forecast is None else round(offered_forecast, 6),
            )
            alert.t = stream.now()
            stream.deliver_or_hold(alert, control=True)
            try:
                choice = await self._decision
            finally:
                self._decision = None
            if choice == "stop":
                return False
            if choice == "continue":
                return True
            # "cheaper": forecast again with the new models.
        return True

    def _cheapest_other(self, index: int, current: float) -> tuple[str | None, float | None]:
        """The strategy (not the current models) that can run here with the lowest forecast for
        chunk ``index``, when it is lower than ``current``."""
        best: tuple[str | None, float | None] = (None, None)
        for strategy in self._workflow.strategies:
            chains = self._workflow.usable_chains(strategy, self._usable)
            if not all(chains.values()):
                continue
            models = {name: chain[0] for name, chain in chains.items()}
            if models == self._models:
                continue
            forecast = forecast_usd(self._chunk_calls(index, models), self._prices)
            if forecast is not None and forecast < current and (best[1] is None or forecast < best[1]):
                best = (strategy, forecast)
        return best

    def _chunk_calls(self, index: int, models: Mapping[str, ModelRef] | None = None) -> list[CallEstimate]:
        """At most what each call of chunk ``index`` reads and writes (see ``core.budget``)."""
        wf, spec = self._workflow, self._spec
        models = models or self._models
        last_input = self._ledger.last_input
        written_since = self._ledger.chunk_output.get(index - 1, 0)
        base = (len(spec.task) + sum(len(k) + len(v) for k, v in spec.context.items())) // 4
        out_of = {r.name: spec.max_tokens or r.max_tokens or wf.defaults.max_tokens for r in wf.roles}
        calls = []
        for role in wf.roles:
            if role.name in last_input:
                reads = last_input[role.name] + written_since
            else:
                upstream = sum(out_of[name] for name in role.reads)
                reads = base + len(role.system_prompt) // 4 + PROMPT_FRAME_TOKENS + upstream
            calls.append(CallEstimate(role.name, models[role.name], reads, out_of[role.name]))
        syn = wf.synthesizer
        if syn is None:  # a code workflow: its chunks end with a test run, not a model call
            return calls
        syn_reads = last_input.get(syn.name, base + len(syn.system_prompt) // 4 + PROMPT_FRAME_TOKENS)
        syn_reads += sum(out_of.values()) + written_since
        syn_out = spec.max_tokens or syn.max_tokens
        calls.append(CallEstimate(syn.name, models[syn.name], syn_reads, syn_out))
        return calls
