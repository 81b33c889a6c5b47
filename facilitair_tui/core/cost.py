"""What a model call costs, from the usage the provider reported.

A small built-in price table (US dollars per million tokens); the provider gateway issue grows it
into a full, user-overridable table. An unknown price is ``None``, never a guess: the UI shows it
as unknown rather than as free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .provider import ModelRef, Usage


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float


# Providers that never bill: the embedded model and self-hosted OpenAI-compatible servers are
# added by the resolver through ``free_providers``.
FREE_PROVIDERS = frozenset({"local"})

BUILTIN_PRICES: Mapping[str, Price] = {
    "openai:gpt-4o": Price(2.50, 10.00),
    "openai:gpt-4o-mini": Price(0.15, 0.60),
    "openai:gpt-4.1": Price(2.00, 8.00),
    "openai:gpt-4.1-mini": Price(0.40, 1.60),
    "openai:gpt-4.1-nano": Price(0.10, 0.40),
    "openrouter:openai/gpt-4o-mini": Price(0.15, 0.60),
    "openrouter:deepseek/deepseek-chat": Price(0.27, 1.10),
    "openrouter:anthropic/claude-sonnet-4": Price(3.00, 15.00),
}


class PriceTable:
    def __init__(
        self,
        prices: Mapping[str, Price] = BUILTIN_PRICES,
        free_providers: Iterable[str] = FREE_PROVIDERS,
    ) -> None:
        self._prices = dict(prices)
        self._free = frozenset(free_providers)

    def cost(self, model: ModelRef, usage: Usage) -> float | None:
        if model.provider in self._free:
            return 0.0
        price = self._prices.get(str(model))
        if price is None:
            return None
        return (usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok) / 1e6


def add_costs(costs: Iterable[float | None]) -> float | None:
    """A total is only known when every part is."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total
