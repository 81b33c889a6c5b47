"""What a model call costs, from the usage the provider reported.

A built-in price table (US dollars per million tokens: input, cached input, output) for the
common models, which the config file's ``[prices."provider:model"]`` tables extend or replace.
An unknown price is ``None``, never a guess: the UI shows it as unknown rather than as free.
Prices change; the table says when it was last checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .provider import ModelRef, Usage

PRICES_CHECKED = "2026-11"


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    # Input tokens served from the provider's prompt cache; None: billed like other input.
    cached_input_per_mtok: float | None = None


# Providers that never bill: the embedded model and self-hosted OpenAI-compatible servers are
# added by the resolver through ``free_providers``.
FREE_PROVIDERS = frozenset({"local"})

BUILTIN_PRICES: Mapping[str, Price] = {
    "openai:gpt-4o": Price(2.50, 10.00, 1.25),
    "openai:gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openai:gpt-4.1": Price(2.00, 8.00, 0.50),
    "openai:gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openai:gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "openai:o4-mini": Price(1.10, 4.40, 0.275),
    "anthropic:claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "anthropic:claude-sonnet-4-0": Price(3.00, 15.00, 0.30),
    "anthropic:claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "anthropic:claude-opus-4-1": Price(15.00, 75.00, 1.50),
    "openrouter:openai/gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "openrouter:openai/gpt-4.1": Price(2.00, 8.00, 0.50),
    "openrouter:openai/gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "openrouter:deepseek/deepseek-chat": Price(0.27, 1.10, 0.07),
    "openrouter:anthropic/claude-sonnet-4": Price(3.00, 15.00, 0.30),
    "openrouter:anthropic/claude-sonnet-4.5": Price(3.00, 15.00, 0.30),
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
        price = self.price(model)
        if price is None:
            return None
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_rate = (
            price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
        )
        return (
            (usage.input_tokens - cached) * price.input_per_mtok
            + cached * cached_rate
            + usage.output_tokens * price.output_per_mtok
        ) / 1e6

    def price(self, model: ModelRef) -> Price | None:
        """The price of ``model`` (zero for a free provider), or None when unknown."""
        if model.provider in self._free:
            return Price(0.0, 0.0, 0.0)
        return self._prices.get(str(model))

    def with_prices(self, prices: Mapping[str, Price]) -> PriceTable:
        return PriceTable({**self._prices, **prices}, self._free)


def add_costs(costs: Iterable[float | None]) -> float | None:
    """A total is only known when every part is."""
    total = 0.0
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return total
