"""Whether sessions are traced, and where to: read without loading OpenTelemetry, so a run with
tracing off (the default) never pays for importing the SDK."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facilitair_tui.config import TelemetrySettings, load_settings

if TYPE_CHECKING:
    from .export import Tracing

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# How a problem with sending traces begins (a front end titles it apart from the store's).
NOT_SENT = "traces could not be sent"


@dataclass(frozen=True)
class TraceConfig:
    """Where spans go; ``endpoint`` None: the SDK takes it from the ``OTEL_*`` variables."""

    endpoint: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    service_name: str = "facilitair"
    capture_content: bool = False


def trace_config(settings: TelemetrySettings, env: Mapping[str, str] | None = None) -> TraceConfig | None:
    """The configuration in force, or None when tracing is off (the default)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    capture = settings.capture_content or env.get(CAPTURE_VAR, "").strip().lower() == "true"
    if any(env.get(name, "").strip() for name in ENDPOINT_VARS):
        endpoint = None  # the exporter reads the variables, as the specification says
    elif settings.endpoint:
        endpoint = traces_url(settings.endpoint)
    else:
        return None
    headers = {name: value.get_secret_value() for name, value in settings.headers.items()}
    service = env.get("OTEL_SERVICE_NAME") or settings.service_name
    return TraceConfig(endpoint, headers, service, capture)


def traces_url(base: str) -> str:
    """A collector's OTLP/HTTP base URL (http://host:4318) as its traces URL, like the variable."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def open_tracing(
    settings: TelemetrySettings | None = None, env: Mapping[str, str] | None = None
) -> Tracing | None:
    """Tracing as configured (the config file's when ``settings`` is None), or None when it is off."""
    config = trace_config(settings or load_settings().telemetry, env)
    if config is None:
        return None
    from .export import Tracing

    return Tracing(config)
