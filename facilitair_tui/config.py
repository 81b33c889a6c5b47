"""User settings: one TOML file in the config directory, environment variables on top.

API keys come from the standard environment variables or from the user's own config file, and
are never echoed, logged or persisted by the program.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from . import paths
from .core.provider import ConfigurationError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointSettings(_Section):
    """A model endpoint. ``api = "openai"``: OpenAI itself, OpenRouter, Ollama, llama.cpp, vLLM,
    LM Studio (anything that speaks Chat Completions); ``api = "anthropic"``: the Messages API."""

    api: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = None
    api_key: SecretStr | None = None
    # Name of an environment variable holding the key (read at run time, never stored).
    api_key_env: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    # Self-hosted endpoints are free; their cost is 0 rather than unknown.
    free: bool = False
    # Calls at once and call starts per minute on this endpoint (None: no limit of ours).
    max_concurrent: int | None = Field(default=None, ge=1, le=1000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


class LocalSettings(_Section):
    # CPU threads of the embedded engine (None: every core).
    threads: int | None = Field(default=None, ge=1, le=256)
    # Streams of one model decoded together (sequences of its one context); more wait their turn.
    max_contexts: int = Field(default=4, ge=1, le=16)
    # Tokens one stream may hold, prompt and answer (each sequence has this many cells).
    context_tokens: int = Field(default=8192, ge=512, le=131072)


class PriceSettings(_Section):
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class BudgetSettings(_Section):
    """US dollars; a session pauses before a chunk that could pass either (None: no limit)."""

    session_usd: float | None = Field(default=None, ge=0)
    daily_usd: float | None = Field(default=None, ge=0)


class ReliabilitySettings(_Section):
    """How model calls are retried (see core/gateway.py)."""

    attempts_per_model: int = Field(default=3, ge=1, le=20)
    base_delay_s: float = Field(default=1.0, ge=0, le=60)
    max_delay_s: float = Field(default=30.0, ge=0, le=600)
    # A stream that sends nothing for this long has stalled: it is retried.
    stall_s: float = Field(default=60.0, gt=0, le=3600)


class CacheConfig(_Section):
    """The semantic cache (see facilitair_tui/cache)."""

    enabled: bool = True
    # A close but unproven match: "ask" the user (the TUI asks; the CLI asks on a terminal),
    # "auto" serves only what is proven the same and never asks, "off" neither asks nor stores.
    mode: Literal["ask", "auto", "off"] = "ask"
    ttl_days: float = Field(default=7.0, gt=0, le=3650)
    size_limit_mb: int = Field(default=512, ge=1, le=1_000_000)
    # How a hit is played: all at once, or chunk by chunk ``pace_s`` apart.
    replay: Literal["instant", "paced"] = "instant"
    pace_s: float = Field(default=0.4, ge=0, le=10)
    # Context fields that never change an answer; every other field must match exactly.
    ignore_context: list[str] = Field(default_factory=list)
    # The task matcher's thresholds by name (facilitair_tui.cache.MatchSettings), over its defaults.
    thresholds: dict[str, float] = Field(default_factory=dict)


class SandboxSettings(_Section):
    """Running the code the agents write (``facilitair_tui.sandbox``). ``run``: "ask" before
    each run (the TUI asks; the CLI asks on a terminal and runs nothing without one), "auto"
    runs without asking, "never" runs nothing (the code workflow then tests nothing)."""

    run: Literal["ask", "auto", "never"] = "ask"


class TelemetrySettings(_Section):
    """Traces of every session, sent over OTLP/HTTP (``facilitair_tui.traces``). Off unless an
    endpoint is given here or in ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the standard ``OTEL_*`` variables win over this
    table). ``headers``: sent with every export (e.g. a vendor's API key; never printed).
    ``capture_content``: also send the agents' outputs and the task (off: only names, models,
    tokens, timings, costs)."""

    endpoint: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    service_name: str = "facilitair"
    capture_content: bool = False


class Settings(_Section):
    default_strategy: str | None = None
    local: LocalSettings = LocalSettings()
    providers: dict[str, EndpointSettings] = Field(default_factory=dict)
    # Binding id -> key(s), e.g. {"pause": "x"} or {"help": "f1,question_mark"} (App.set_keymap).
    keys: dict[str, str] = Field(default_factory=dict)
    # Strategy -> role -> model or [model, fallback, ...], over the workflow's own tables.
    strategies: dict[str, dict[str, str | list[str]]] = Field(default_factory=dict)
    # "provider:model" -> prices in US dollars per million tokens, over the built-in table.
    prices: dict[str, PriceSettings] = Field(default_factory=dict)
    budget: BudgetSettings = BudgetSettings()
    reliability: ReliabilitySettings = ReliabilitySettings()
    cache: CacheConfig = CacheConfig()
    sandbox: SandboxSettings = SandboxSettings()
    telemetry: TelemetrySettings = TelemetrySettings()


BUILTIN_ENDPOINTS: dict[str, EndpointSettings] = {
    "openai": EndpointSettings(api_key_env="OPENAI_API_KEY"),
    "anthropic": EndpointSettings(api="anthropic", api_key_env="ANTHROPIC_API_KEY"),
    "openrouter": EndpointSettings(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"),
}
# Base URLs from the environment, as the official SDKs name them (they win over the config file).
_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file if there is one; a broken file is an error that names it."""
    path = path or paths.config_file()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"{path}: {where}: {first['msg']}") from None
    endpoints = {**BUILTIN_ENDPOINTS}
    for name, endpoint in settings.providers.items():
        base = endpoints.get(name.lower())
        merged = base.model_copy(update=endpoint.model_dump(exclude_unset=True)) if base else endpoint
        endpoints[name.lower()] = merged
    for name, env in _BASE_URL_ENV.items():
        if os.environ.get(env):
            endpoints[name] = endpoints[name].model_copy(update={"base_url": os.environ[env]})
    settings.providers = endpoints
    return settings


def api_key(endpoint: EndpointSettings) -> str | None:
    if endpoint.api_key is not None:
        return endpoint.api_key.get_secret_value() or None
    if endpoint.api_key_env:
        return os.environ.get(endpoint.api_key_env) or None
    return None
