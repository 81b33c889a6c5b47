"""What the HTTP providers share: safe display of URLs and errors, Retry-After, and the errors'
construction with every secret redacted. No SDK here; each provider maps its SDK's exceptions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from facilitair_tui.core.provider import ChatRequest, ProviderError

# Sent as the key when the endpoint needs none (local servers). The SDKs refuse to build a client
# without one, and passing it explicitly keeps them from picking up a key from the environment
# and sending it to some other endpoint.
NO_KEY_PLACEHOLDER = "not-needed"
MAX_SERVER_MESSAGE = 500
# The environment variable each built-in provider's key comes from.
KEY_ENV_VARS = {
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
_REDACTED = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every occurrence of every non-empty secret replaced by ``***``."""
    # Longest first, so a secret that contains another one is removed whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return text


def one_line(text: str, limit: int = MAX_SERVER_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def display_url(url: str) -> str:
    """The URL without user info, query or fragment: safe to show, still recognisable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    # The SDKs append a slash to base_url; show it as the user wrote it.
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def cause_text(exc: BaseException) -> str:
    """The low-level reason behind a connection error (``All connection attempts failed``...)."""
    cause = exc.__cause__ or exc.__context__
    if cause is None:
        return ""
    # No trailing period: the message goes on, or ProviderError.__str__ appends ". <fix>".
    return one_line(str(cause)).rstrip(" .") or type(cause).__name__


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, or ``retry-after`` in seconds or as a date."""
    try:
        millis = float(headers.get("retry-after-ms", ""))
    except ValueError:
        pass
    else:
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = max(0.0, when.timestamp() - time.time())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def status_kind(status: int) -> str:
    """The kind of failure an HTTP status means (``core.provider.ProviderError.kind``)."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status >= 500 or status in (408, 529):
        return "server"
    if status in (400, 413, 422):
        return "bad_request"
    return "other"


def estimate_input_tokens(request: ChatRequest) -> int:
    return max(1, sum(len(m.content) for m in request.messages) // 4)


class ErrorMaker:
    """Builds a provider's ``ProviderError`` with its secrets redacted from message and fix."""

    def __init__(self, provider: str, url: str, secrets: Iterable[str]) -> None:
        self.provider = provider
        self.url = url
        self.secrets = tuple(s for s in secrets if s)

    def __call__(
        self,
        message: str,
        model: str,
        *,
        fix: str,
        retryable: bool,
        retry_after_s: float | None = None,
        kind: str = "",
    ) -> ProviderError:
        return ProviderError(
            redact(message, self.secrets),
            provider=self.provider,
            model=model,
            fix=redact(fix, self.secrets),
            retryable=retryable,
            retry_after_s=retry_after_s,
            kind=kind,
        )

    def status(self, error: ProviderError, status: int, *, quota: bool = False) -> ProviderError:
        """``error``, an HTTP ``status`` answer, with its kind named (``ProviderError.kind``)."""
        error.kind = "quota" if quota else status_kind(status)
        return error

    def key_hint(self) -> str:
        env = KEY_ENV_VARS.get(self.provider)
        if env is not None:
            return f"Check that {env} is set to a valid key with access to this model"
        return f"Check the api_key of this endpoint in the config (provider {self.provider!r} at {self.url})"

    def unfinished(self, model: str, deltas: int, marker: str) -> ProviderError:
        """A stream that ended without ``marker``, the backend's word that the answer is whole.

        The SDKs report such a stream as a success; it is not one (a proxy or load balancer
        closed the connection), so it is retried, and the gateway continues the answer."""
        return self(
            f"stream ended early after {deltas} text delta{'s' if deltas != 1 else ''}: "
            f"{self.url} closed the response without {marker}",
            model,
            fix="Retry; if it keeps happening, a proxy between here and the server may be cutting "
            "long responses",
            retryable=True,
            kind="broken_stream",
        )

    # The failures every SDK reports alike, before any streamed data arrived.

    def timed_out(self, model: str, timeout_s: float) -> ProviderError:
        return self(
            f"cannot reach {self.url}: no response within {timeout_s:g}s",
            model,
            fix=f"Check that the server at {self.url} is running and reachable, "
            "or raise this endpoint's timeout",
            retryable=True,
            kind="timeout",
        )

    def unreachable(self, model: str, exc: BaseException, *, check: str) -> ProviderError:
        """``check``: what to verify besides the server running (e.g. "that base_url is right")."""
        cause = cause_text(exc)
        return self(
            f"cannot reach {self.url}" + (f": {cause}" if cause else ""),
            model,
            fix=f"Check that the server at {self.url} is running{check}",
            retryable=True,
            kind="unreachable",
        )

    def server_reported(self, model: str, message: str) -> ProviderError:
        return self(
            f"the server reported an error: {message}",
            model,
            fix="Try again; if it persists, check the endpoint's status",
            retryable=True,
            kind="server",
        )

    def unexpected(self, model: str, exc: BaseException) -> ProviderError:
        return self(
            f"request failed: {type(exc).__name__}: {one_line(str(exc))}",
            model,
            fix=f"Check this endpoint's configuration (base_url {self.url})",
            retryable=False,
            kind="other",
        )
