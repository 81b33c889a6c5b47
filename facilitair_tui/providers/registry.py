"""From ``provider:model`` to a live provider, and what is usable on this machine.

Provider instances are created on first use and shared by every role that runs on them, so the
embedded model's context pool and the HTTP connection pools are shared too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from facilitair_tui import embedded_models
from facilitair_tui.config import Settings, api_key
from facilitair_tui.core.cost import FREE_PROVIDERS, Price, PriceTable
from facilitair_tui.core.gateway import ProviderLimit
from facilitair_tui.core.provider import ChatProvider, ConfigurationError, ModelRef
from facilitair_tui.embedded_models import added as added_models


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    usable: bool
    detail: str
    origin: str = ""  # for a model: who made it and where its files come from
    licence: str = ""


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, ChatProvider] = {}

    @property
    def names(self) -> list[str]:
        return ["local", *self.settings.providers]

    def check(self, ref: ModelRef) -> None:
        """Raise a ConfigurationError saying what to do if ``ref`` cannot run here."""
        if ref.provider == "local":
            embedded_models.require(ref.model)
            return
        endpoint = self.settings.providers.get(ref.provider)
        if endpoint is None:
            raise ConfigurationError(
                f"unknown provider {ref.provider!r} in {ref}; known providers: {', '.join(self.names)}. "
                "Add an OpenAI-compatible endpoint under [providers.NAME] in the config file"
            )
        if api_key(endpoint) is None and endpoint.api_key_env and not endpoint.free:
            raise ConfigurationError(
                f"{ref} needs an API key: set {endpoint.api_key_env}, or run on the embedded model "
                "with --strategy local"
            )

    def check_all(self, refs: Iterable[ModelRef]) -> None:
        for ref in dict.fromkeys(refs):
            self.check(ref)

    def usable(self, ref: ModelRef) -> bool:
        """Whether ``ref`` can run here (its provider is known, has its key, its model installed)."""
        try:
            self.check(ref)
        except ConfigurationError:
            return False
        return True

    def limits(self) -> dict[str, ProviderLimit]:
        """The per-endpoint call limits set in the config file."""
        return {
            name: ProviderLimit(e.max_concurrent, e.requests_per_minute)
            for name, e in self.settings.providers.items()
            if e.max_concurrent or e.requests_per_minute
        }

    def install(self, name: str, provider: ChatProvider) -> None:
        """Serve the ``name`` provider with this instance (a benchmark's variant of a backend, a
        provider shared by several sessions); it is closed with the registry."""
        self._instances[name] = provider

    def resolve(self, ref: ModelRef) -> ChatProvider:
        provider = self._instances.get(ref.provider)
        if provider is None:
            self.check(ref)
            provider = self._create(ref.provider)
            self._instances[ref.provider] = provider
        return provider

    def _create(self, name: str) -> ChatProvider:
        if name == "local":
            from .local import LocalModelProvider

            local = self.settings.local
            return LocalModelProvider(
                max_contexts=local.max_contexts, n_ctx=local.context_tokens, threads=local.threads
            )
        endpoint = self.settings.providers[name]
        if endpoint.api == "anthropic":
            from .anthropic_messages import AnthropicProvider

            return AnthropicProvider(
                name, base_url=endpoint.base_url, api_key=api_key(endpoint), timeout_s=endpoint.timeout_s
            )
        from .openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(
            name, base_url=endpoint.base_url, api_key=api_key(endpoint), timeout_s=endpoint.timeout_s
        )

    def prices(self) -> PriceTable:
        free = set(FREE_PROVIDERS) | {n for n, e in self.settings.providers.items() if e.free}
        overrides = {
            spec.strip().lower(): Price(p.input, p.output, p.cached_input)
            for spec, p in self.settings.prices.items()
        }
        return PriceTable(free_providers=free).with_prices(overrides)

    def statuses(self) -> list[ProviderStatus]:
        out = []
        for name, model in embedded_models.INSTALLABLE.items():
            kind = "local" if name in embedded_models.CATALOG else "embedder"  # chat models are `local:` refs
            ok = model.installed()
            if ok:
                detail = model.description
            else:
                optional = "" if model.default else f"optional, {model.size / 1e9:.1f} GB; "
                detail = f"not installed ({optional}run {embedded_models.install_command(model)})"
            out.append(ProviderStatus(f"{kind}:{name}", ok, detail, model.origin, model.licence))
        out.extend(_added_statuses())
        for name, endpoint in self.settings.providers.items():
            has_key = api_key(endpoint) is not None
            if endpoint.api == "anthropic":
                where = endpoint.base_url or "https://api.anthropic.com"
                kind = "Anthropic Messages API"
            else:
                where = endpoint.base_url or "https://api.openai.com/v1"
                kind = "OpenAI-compatible endpoint"
            if has_key or endpoint.free or not endpoint.api_key_env:
                out.append(ProviderStatus(name, True, f"{kind} at {where}"))
            else:
                out.append(ProviderStatus(name, False, f"no API key: set {endpoint.api_key_env}"))
        return out

    async def aclose(self) -> None:
        for provider in self._instances.values():
            await provider.aclose()
        self._instances.clear()


def _added_statuses() -> list[ProviderStatus]:
    """The GGUF files added with ``facilitair models add``; a broken registry is one line too."""
    try:
        added = added_models.load()
    except ConfigurationError as exc:
        return [ProviderStatus("local (added models)", False, str(exc))]
    out = []
    for name, model in added.items():
        try:
            path = added_models.check_file(model.path, name=name)
        except ConfigurationError as exc:
            out.append(ProviderStatus(f"local:{name}", False, str(exc), f"your file {model.path}"))
            continue
        what = model.gguf_name or path.name
        arch = f", {model.architecture}" if model.architecture else ""
        detail = f"{what}{arch}, GGUF {path.stat().st_size / 1e6:.0f} MB"
        licence = model.licence or "not stated in the file"
        out.append(ProviderStatus(f"local:{name}", True, detail, f"your file {path}", licence))
    return out
