"""The budget guard's arithmetic: limits, and what the next chunk will cost at most.

Before each chunk the engine forecasts its cost and compares what was spent plus the forecast
with the session's budget and with what is left of the day's. The forecast is an upper bound
built from the workflow and the run so far: every call may write its whole ``max_tokens``,
and reads as much as its last call read plus what was written since (the previous chunk's
output joins every prompt), or, in the first chunk, its prompt plus the upstream text it may
read. A model without a known price makes the forecast unknown; the engine says so once
rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .cost import PriceTable, add_costs
from .provider import ModelRef, Usage

BudgetScope = Literal["session", "day"]
BudgetChoice = Literal["continue", "cheaper", "stop"]


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits in US dollars (None: no limit) and what was already spent today before this session."""

    session_usd: float | None = None
    daily_usd: float | None = None
    spent_today_usd: float = 0.0

    @property
    def active(self) -> bool:
        return self.session_usd is not None or self.daily_usd is not None

    def breach(self, spent_usd: float, forecast_usd: float) -> tuple[BudgetScope, float] | None:
        """The limit the next chunk would pass (scope and limit), or None when it fits."""
        if self.session_usd is not None and spent_usd + forecast_usd > self.session_usd:
            return "session", self.session_usd
        if self.daily_usd is not None and self.spent_today_usd + spent_usd + forecast_usd > self.daily_usd:
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
    """The chunk's cost if every call reads and writes its estimate; None if a price is unknown."""
    return add_costs(prices.cost(c.model, Usage(c.input_tokens, c.output_tokens)) for c in calls)


def unpriced(models: Mapping[str, ModelRef], prices: PriceTable) -> list[str]:
    """The models (as ``provider:model``) whose price is unknown."""
    return sorted({str(ref) for ref in models.values() if prices.price(ref) is None})
