"""A session's events as OpenTelemetry spans, sent over OTLP/HTTP to whatever collector the user
runs (Jaeger, Grafana Tempo, Honeycomb, an OpenTelemetry Collector).

Off unless configured: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) in the
environment, or ``[telemetry] endpoint`` in the config file; ``OTEL_SDK_DISABLED=true`` turns it
off again. The SDK reads the other standard variables itself (headers, timeout, compression,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``).

The spans are the timeline's bars (``traces.timeline``), built from the events the store records,
so a trace and the waterfall always agree and nothing is measured twice. A span opens when its bar
opens and ends when it closes, with the times the events carry; the batch processor sends ended
spans in the background. Attribute names follow the OpenTelemetry GenAI semantic conventions
(``gen_ai.*``) where one exists, ``facilitair.*`` otherwise (cost, attempt kind, waits).

What is sent: names, models, token counts, timings, costs, statuses, failure kinds. The task, the
agents' outputs and the synthesis text only with ``capture_content`` (or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``). API keys never: no event holds one,
and a provider's error message has its keys redacted before it becomes an event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from facilitair_tui import __version__
from facilitair_tui.core import events as ev
from facilitair_tui.library import EventSink
from facilitair_tui.providers.http_common import display_url

from .settings import ENDPOINT_VARS, NOT_SENT, TraceConfig
from .timeline import Bar, Timeline

_TOKEN = ev.Token

# Our finish reasons in the words of the GenAI conventions (OpenAI's, which they follow).
_FINISH = {"end": "stop", "max_tokens": "length", "filtered": "content_filter"}
# How long closing the app waits for the last spans to leave; and when the collector already
# failed to take a batch.
FLUSH_TIMEOUT_MS = 2000
GIVE_UP_MS = 300
# How long ``facilitair sessions trace`` waits for the collector.
SEND_TIMEOUT_MS = 10_000


class WatchedExporter(SpanExporter):
    """The OTLP exporter, remembering whether the collector took the last batch (``problem``).

    The SDK reports a failed export only in its log, which would print over the TUI; its log
    gets a handler that drops it (an application with its own logging still sees it), and the
    failure reaches the user as the session's recording problem instead."""

    def __init__(self, inner: SpanExporter, where: str) -> None:
        self._inner = inner
        self._where = where
        self._closed = False
        self.problem: str | None = None
        self.told: str | None = None  # the problem a session's sink last passed on

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.problem = None
        else:
            self.problem = (
                f"{NOT_SENT} to {self._where}; check that the collector is running "
                "(the session itself is recorded as usual)"
            )
        return result

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def unsent(self) -> str:
        return f"the last {NOT_SENT} to {self._where}; check that the collector is running"


def tracer_provider(config: TraceConfig, exporter: SpanExporter) -> TracerProvider:
    """Our own provider (never the global one: an app embedding us keeps its own tracing)."""
    resource = Resource.create({"service.name": config.service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class SessionTracer:
    """Turns one session's events into spans as they come; ``feed`` each event, in order."""

    def __init__(
        self, provider: TracerProvider, *, capture_content: bool = False, started_at: float | None = None
    ) -> None:
        """``started_at``: when the session started (epoch seconds), for a recorded one; a live
        one starts when its first event comes."""
        self._tracer = provider.get_tracer("facilitair_tui", __version__)
        self.capture_content = self._capture = capture_content
        self._timeline = Timeline()
        self._spans: dict[str, Span] = {}
        self._epoch_ns = 0 if started_at is None else int(started_at * 1e9)
        self._outputs: dict[tuple[int, str], list[str]] = {}

    def feed(self, event: ev.Event) -> None:
        if isinstance(event, ev.Token):
            if self._capture:
                self._outputs.setdefault((event.chunk, event.agent), []).append(event.text)
            return
        if isinstance(event, ev.SessionStarted) and not self._epoch_ns:
            self._epoch_ns = time.time_ns() - int(event.t * 1e9)
        for change, bar in self._timeline.add(event):
            if change == "open":
                self._start(bar)
            else:
                self._end(bar, event)

    def _ns(self, t: float) -> int:
        return self._epoch_ns + round(t * 1e9)

    def _start(self, bar: Bar) -> None:
        parent = self._spans.get(bar.parent) if bar.parent else None
        context = trace.set_span_in_context(parent) if parent is not None else Context()
        kind = SpanKind.CLIENT if bar.kind == "attempt" else SpanKind.INTERNAL
        self._spans[bar.id] = self._tracer.start_span(
            span_name(bar), context=context, kind=kind, start_time=self._ns(bar.start)
        )

    def _end(self, bar: Bar, event: ev.Event) -> None:
        span = self._spans.pop(bar.id, None)
        if span is None:
            return
        span.set_attributes(span_attributes(bar, self._timeline.session_id))
        if self._capture:
            self._add_content(span, bar, event)
        if bar.status in ("failed", "error", "timeout", "memory"):
            message = str(bar.attrs.get("message") or bar.attrs.get("error") or bar.status)
            span.set_status(Status(StatusCode.ERROR, message[:300]))
        end = bar.end if bar.end is not None else self._timeline.now
        span.end(end_time=self._ns(end))

    def _add_content(self, span: Span, bar: Bar, event: ev.Event) -> None:
        if bar.kind == "session":
            span.set_attribute("facilitair.task", str(bar.attrs.get("task", "")))
            if isinstance(event, ev.SessionFinished):
                span.set_attribute("facilitair.output", event.output)
        elif bar.kind in ("agent", "synthesis"):
            text = "".join(self._outputs.pop((int(bar.attrs["chunk"]), str(bar.attrs["agent"])), []))
            span.set_attribute("gen_ai.output.messages", _output_message(text))


def span_name(bar: Bar) -> str:
    """Low-cardinality names, as the conventions ask: the details are attributes."""
    if bar.kind == "attempt":
        return f"chat {bar.attrs.get('request_model', '')}".strip()
    if bar.kind in ("agent", "synthesis"):
        return f"invoke_agent {bar.attrs.get('agent', '')}".strip()
    if bar.kind == "chunk":
        return f"chunk {bar.attrs.get('title', '')}".strip()
    if bar.kind == "wait":
        return f"wait {bar.wait}"
    return {"session": "session", "cache": "cache lookup", "code_run": "code run"}[bar.kind]


def span_attributes(bar: Bar, session_id: str) -> dict[str, Any]:
    """What a span carries: only values OpenTelemetry accepts, never None."""
    a = bar.attrs
    out: dict[str, Any] = {"facilitair.session.id": session_id, "facilitair.status": bar.status}
    if bar.kind == "session":
        out.update(
            {
                "facilitair.workflow": a.get("workflow"),
                "facilitair.strategy": a.get("strategy"),
                "facilitair.parent_session.id": a.get("parent_id"),
                "gen_ai.usage.input_tokens": a.get("input_tokens"),
                "gen_ai.usage.output_tokens": a.get("output_tokens"),
                "facilitair.cost_usd": a.get("cost_usd"),
                "facilitair.from_cache": a.get("from_cache"),
            }
        )
        for role, model in sorted(dict(a.get("models", {})).items()):
            out[f"facilitair.model.{role}"] = model
    elif bar.kind == "chunk":
        out.update(
            {
                "facilitair.chunk": a.get("chunk"),
                "facilitair.chunk.title": a.get("title"),
                "facilitair.synthesis.agreed": a.get("agreed"),
                "facilitair.synthesis.debated": a.get("debated"),
                "facilitair.synthesis.confidence": a.get("confidence"),
            }
        )
    elif bar.kind in ("agent", "synthesis"):
        out.update(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": a.get("agent"),
                "gen_ai.provider.name": a.get("provider"),
                "gen_ai.request.model": a.get("request_model"),
                "gen_ai.usage.input_tokens": a.get("input_tokens"),
                "gen_ai.usage.output_tokens": a.get("output_tokens"),
                "gen_ai.usage.cache_read.input_tokens": a.get("cached_input_tokens"),
                "facilitair.chunk": a.get("chunk"),
                "facilitair.reads": list(a.get("reads", [])) or None,
                "facilitair.cost_usd": a.get("cost_usd"),
                "facilitair.latency_ms": a.get("latency_ms"),
                "facilitair.usage.estimated": a.get("usage_estimated"),
                "facilitair.synthesis": bar.kind == "synthesis",
            }
        )
        if "stop_reason" in a:
            out["gen_ai.response.finish_reasons"] = [
                _FINISH.get(str(a["stop_reason"]), str(a["stop_reason"]))
            ]
    elif bar.kind == "attempt":
        finish = _FINISH.get(str(a.get("stop_reason")), "error") if bar.status != "cancelled" else "cancelled"
        out.update(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": a.get("provider"),
                "gen_ai.request.model": a.get("request_model"),
                "gen_ai.response.model": a.get("response_model"),
                "gen_ai.request.max_tokens": a.get("max_tokens") or None,
                "gen_ai.request.temperature": a.get("temperature"),
                "gen_ai.usage.input_tokens": a.get("input_tokens"),
                "gen_ai.usage.output_tokens": a.get("output_tokens"),
                "gen_ai.usage.cache_read.input_tokens": a.get("cached_input_tokens"),
                "gen_ai.response.finish_reasons": [finish],
                "gen_ai.agent.name": a.get("agent"),
                "facilitair.attempt": a.get("attempt"),
                "facilitair.attempt.kind": a.get("attempt_kind"),
                "facilitair.cost_usd": a.get("cost_usd"),
                "facilitair.usage.estimated": a.get("usage_estimated"),
                "facilitair.time_to_first_token_ms": a.get("first_token_ms"),
                "error.type": a.get("error"),
                "facilitair.error.message": a.get("message") or None,
            }
        )
    elif bar.kind == "wait":
        out["facilitair.wait"] = bar.wait
        out["facilitair.retry_after_s"] = a.get("retry_after_s")
        out["facilitair.budget.choice"] = a.get("choice")
    elif bar.kind == "cache":
        out.update(
            {
                "facilitair.cache.hit": a.get("hit"),
                "facilitair.cache.decision": a.get("decision"),
                "facilitair.cache.similarity": a.get("similarity"),
                "facilitair.cache.saved_usd": a.get("saved_usd"),
            }
        )
    elif bar.kind == "code_run":
        out.update(
            {
                "facilitair.code.agent": a.get("agent"),
                "facilitair.code.passed": a.get("passed"),
                "facilitair.code.failed": a.get("failed"),
                "facilitair.code.status": a.get("run_status"),
            }
        )
    return {key: value for key, value in out.items() if _allowed(value)}


def _allowed(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, Sequence) and not isinstance(value, str):
        return all(isinstance(v, str | bool | int | float) for v in value)
    return isinstance(value, str | bool | int | float)


def _output_message(text: str) -> str:
    return json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])


class TracingSink:
    """A session's event sink (the store's recorder) that also traces what it records.

    Tracing can never lose or hold up a recording: a tracer that fails is dropped with one
    warning (``problem``), and the event is recorded all the same."""

    def __init__(
        self, inner: EventSink, tracer: SessionTracer, exporter: WatchedExporter | None = None
    ) -> None:
        self._inner = inner
        self._tracer: SessionTracer | None = tracer
        self._capture = tracer.capture_content
        self._exporter = exporter
        self._problem: str | None = None

    def record(self, event: ev.Event) -> None:
        self._inner.record(event)
        if event.__class__ is not _TOKEN or self._capture:
            self._trace(event)

    def record_async(self, event: ev.Event) -> Awaitable[None]:
        """The recorder's own awaitable, with no layer of ours around it: tokens, nearly every
        event, cost one test here (they make no span)."""
        if event.__class__ is not _TOKEN or self._capture:
            self._trace(event)
        return self._inner.record_async(event)

    @property
    def problem(self) -> str | None:
        inner = self._inner.problem
        exported = self._exporter.problem if self._exporter is not None else None
        if exported is not None and self._exporter is not None:
            self._exporter.told = exported
        return inner or self._problem or exported

    def _trace(self, event: ev.Event) -> None:
        tracer = self._tracer
        if tracer is None:
            return
        try:
            tracer.feed(event)
        except Exception as exc:  # tracing is an extra: the session goes on without it
            self._tracer = None
            self._problem = f"tracing stopped: {exc}"


class Tracing:
    """Tracing for the sessions of one process: each session's sink wraps the store's recorder;
    ``close`` sends the spans still waiting (at most ``FLUSH_TIMEOUT_MS``)."""

    def __init__(self, config: TraceConfig, exporter: SpanExporter | None = None) -> None:
        self.config = config
        if exporter is None:
            exporter = OTLPSpanExporter(endpoint=config.endpoint, headers=dict(config.headers) or None)
            logging.getLogger("opentelemetry").addHandler(logging.NullHandler())
        where = config.endpoint or next((os.environ[v] for v in ENDPOINT_VARS if os.environ.get(v)), "")
        self._exporter = WatchedExporter(exporter, display_url(where) if where else "the OTLP endpoint")
        self._provider = tracer_provider(config, self._exporter)

    def wrap(self, recorder: EventSink) -> TracingSink:
        tracer = SessionTracer(self._provider, capture_content=self.config.capture_content)
        return TracingSink(recorder, tracer, self._exporter)

    def send(self, events: Sequence[ev.Event], started_at: float) -> str | None:
        """Trace a recorded session (it started at ``started_at``, epoch seconds) and wait for
        the spans to leave: None when the collector took them, else what went wrong."""
        tracer = SessionTracer(
            self._provider, capture_content=self.config.capture_content, started_at=started_at
        )
        for event in events:
            tracer.feed(event)
        if not self._flushed(SEND_TIMEOUT_MS):
            return f"the spans could not be sent within {SEND_TIMEOUT_MS / 1000:g}s; check the collector"
        return self._exporter.problem

    def close(self) -> str | None:
        """Send what is left, waiting at most ``FLUSH_TIMEOUT_MS``, or ``GIVE_UP_MS`` when the
        collector already refused or missed the last batch (quitting should not hang on it).
        Returns what went wrong that no session's sink has said yet (the last spans not sent)."""
        exporter = self._exporter
        failing = exporter.problem is not None
        sent = self._flushed(GIVE_UP_MS if failing else FLUSH_TIMEOUT_MS)
        if not sent or failing:
            exporter.shutdown()  # stops the retries of a batch in flight: shutdown waits for them
        self._provider.shutdown()
        problem = exporter.problem
        if problem is None and not sent:
            problem = exporter.unsent()
        return problem if problem != exporter.told else None

    def _flushed(self, timeout_ms: int) -> bool:
        """Whether the spans waiting left within ``timeout_ms``. The SDK's own flush ignores its
        timeout while the exporter retries (up to OTEL_EXPORTER_OTLP_TIMEOUT), so it runs in a
        thread of its own and is left to the exporter's shutdown when it takes too long."""
        done = threading.Event()

        def flush() -> None:
            self._provider.force_flush()
            done.set()

        threading.Thread(target=flush, name="trace-flush", daemon=True).start()
        return done.wait(timeout_ms / 1000)
