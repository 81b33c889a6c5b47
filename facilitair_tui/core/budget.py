"""The budget guard's arithmetic: limits, and what the next chunk is estimated to cost.

Before each chunk the engine estimates its cost and compares what was spent plus the estimate
with the session's budget and with what is left of the day's (what every other session spent
today is asked afresh each time, so sessions running at once count each other). The estimate is
built from the workflow and the run so far: every call writes its whole ``max_tokens`` and reads
as much as its last call read plus what was written since (the previous chunk's output joins
every prompt), or, in the first chunk, its prompt plus the upstream text it may read. It is an
estimate, not a bound: a retry reads its prompt again, a continuation of a broken or cut answer
writes again, a fallback model has its own price. What was really spent is always counted from
the providers' reported usage. A model without a known price makes the estimate unknown; the
engine says so once rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .cost import PriceTable, add_costs
from .provider import ModelRef, Usage

BudgetScope = Literal["session", "day"]
BudgetChoice = Literal["continue", "cheaper", "stop"]


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits in US dollars (None: no limit) and what other sessions spent today.

    ``spent_today(session_id)`` is asked before each chunk: what every session but this one
    spent since local midnight, or None when it cannot be known (the daily budget then cannot be
    enforced, and the engine says so). Without it, ``spent_today_usd`` is that amount."""

    session_usd: float | None = None
    daily_usd: float | None = None
    spent_today_usd: float = 0.0
    spent_today: Callable[[str], float | None] | None = None

    def spent_elsewhere_today(self, session_id: str) -> float | None:
        if self.daily_usd is None:
            return 0.0
        return self.spent_today(session_id) if self.spent_today is not None else self.spent_today_usd

    @property
    def active(self) -> bool:
        return self.session_usd is not None or self.daily_usd is not None

    def breach(
        self, spent_usd: float, forecast_usd: float, elsewhere_today_usd: float | None
    ) -> tuple[BudgetScope, float] | None:
        """The limit the next chunk would pass (scope and limit), or None when it fits.
        ``elsewhere_today_usd``: what other sessions spent today (``spent_elsewhere_today``);
        None when it is unknown, and then only the session's budget can be checked."""
        if self.session_usd is not None and spent_usd + forecast_usd > self.session_usd:
            return "session", self.session_usd
        if (
            self.daily_usd is not None
            and elsewhere_today_usd is not None
            and elsewhere_today_usd + spent_usd + forecast_usd > self.daily_usd
        ):
            return "day", self.daily_usd
        return None


@dataclass(frozen=True, slots=True)
class CallEstimate:
    """One call of the next chunk: who makes it, on what, reading and writing at most how much."""

    agent: str
    model: ModelRef
    input_tokens: int
    output_tokens: int


def forecast_usd(calls: list[CallEstimate], prices: PriceTable) -> float | None:
    """The chunk's estimated cost (every call reads and writes its estimate); None if a price is
    unknown."""
    return add_costs(prices.cost(c.model, Usage(c.input_tokens, c.output_tokens)) for c in calls)


def unpriced(models: Mapping[str, ModelRef], prices: PriceTable) -> list[str]:
    """The models (as ``provider:model``) whose price is unknown."""
    return sorted({str(ref) for ref in models.values() if prices.price(ref) is None})
