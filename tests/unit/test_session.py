"""Putting a session together: which strategy runs, which fallbacks, prices and limits from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from facilitair_tui.config import load_settings
from facilitair_tui.core.gateway import ProviderLimit
from facilitair_tui.core.provider import ConfigurationError, ModelRef, Usage
from facilitair_tui.session import prepare

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY")


def write_config(home: Path, text: str) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")


async def test_without_any_key_the_default_strategy_is_local(facilitair_home: Path) -> None:
    prepared = prepare("Build a CLI")
    try:
        assert prepared.collaboration.spec.strategy == "local"
        assert set(map(str, prepared.collaboration.models.values())) == {"local:qwen2.5-coder-0.5b"}
    finally:
        await prepared.aclose()


async def test_with_every_key_the_default_is_balanced_mixing_providers(
    facilitair_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEYS:
        monkeypatch.setenv(name, "sk-test-not-used")
    prepared = prepare("Build a CLI")
    try:
        spec = prepared.collaboration.spec
        assert spec.strategy == "balanced"
        providers = {ref.provider for ref in prepared.collaboration.models.values()}
        assert {"anthropic", "openai", "openrouter"} <= providers
        assert all(spec.fallbacks[name] for name in prepared.collaboration.models)
    finally:
        await prepared.aclose()


async def test_a_role_runs_on_the_first_model_of_its_list_that_can_run_here(
    facilitair_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")  # no Anthropic or OpenRouter key
    prepared = prepare("Build a CLI", strategy="cheap")
    try:
        collaboration = prepared.collaboration
        # The reviewer's first choice (DeepSeek on OpenRouter) has no key: it runs on its OpenAI
        # fallback; Claude Haiku (no key) is left out of every list.
        assert str(collaboration.models["reviewer"]) == "openai:gpt-4.1-nano"
        assert collaboration.spec.fallbacks["reviewer"] == ()
        assert str(collaboration.models["architect"]) == "openai:gpt-4.1-mini"
        assert collaboration.spec.fallbacks["architect"] == ()
    finally:
        await prepared.aclose()


async def test_a_role_with_no_model_that_can_run_fails_on_its_first_choice(facilitair_home: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs an API key: set ANTHROPIC_API_KEY"):
        prepare("Build a CLI", strategy="quality")


async def test_the_config_file_changes_strategies_prices_and_limits(
    facilitair_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    write_config(
        facilitair_home,
        """
default_strategy = "cheap"

[strategies.cheap]
architect = ["openai:my-model", "openai:gpt-4.1-mini"]

[prices."openai:my-model"]
input = 1.5
cached_input = 0.5
output = 6.0

[providers.openai]
max_concurrent = 2
requests_per_minute = 30

[reliability]
stall_s = 12.5
attempts_per_model = 5
""",
    )
    settings = load_settings()
    prepared = prepare("Build a CLI", settings=settings)
    try:
        collaboration = prepared.collaboration
        assert collaboration.spec.strategy == "cheap"
        assert str(collaboration.models["architect"]) == "openai:my-model"
        prices = prepared.registry.prices()
        cost = prices.cost(ModelRef("openai", "my-model"), Usage(1000, 200, cached_input_tokens=400))
        assert cost == pytest.approx((600 * 1.5 + 400 * 0.5 + 200 * 6.0) / 1e6, rel=1e-12)
        assert prepared.registry.limits()["openai"] == ProviderLimit(max_concurrent=2, requests_per_minute=30)
        policy = collaboration._gateway.policy
        assert (policy.stall_s, policy.attempts_per_model) == (12.5, 5)
    finally:
        await prepared.aclose()


def test_a_strategy_table_naming_an_unknown_role_is_a_clear_configuration_error(
    facilitair_home: Path,
) -> None:
    write_config(facilitair_home, '[strategies.cheap]\ntester = "openai:gpt-4.1"\n')
    with pytest.raises(ConfigurationError, match=r"config\.toml: strategies\.cheap: no role 'tester'"):
        prepare("Build a CLI", settings=load_settings())
