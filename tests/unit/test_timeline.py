"""The timeline the waterfall draws and the spans are made of, from events alone."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from facilitair_tui.config import TelemetrySettings
from facilitair_tui.core import events as ev
from facilitair_tui.traces.export import Tracing
from facilitair_tui.traces.settings import trace_config, traces_url
from facilitair_tui.traces.timeline import Timeline
from facilitair_tui.tui.screens.waterfall import bar_cells

SID = "tl"


def session() -> list[ev.Event]:
    return [
        ev.SessionStarted(session_id=SID, t=0.0, task="Do it", context={}, strategy="s", workflow="w",
                          models={"coder": "openai:m"}),
        ev.CacheChecked(session_id=SID, t=0.2, hit=False, similarity=0.71, matched_on="too far",
                        decision="miss", lookup_ms=150.0),
        ev.BudgetExceeded(session_id=SID, t=0.3, chunk=1, title="Build", spent_usd=0.0, forecast_usd=0.2,
                          limit_usd=0.1, scope="session"),
        ev.BudgetDecision(session_id=SID, t=1.3, choice="continue"),
        ev.ChunkStarted(session_id=SID, t=1.4, chunk=1, title="Build", total=1),
        ev.AgentStarted(session_id=SID, t=1.5, agent="coder", chunk=1, model="openai:m"),
        ev.ModelAttempt(session_id=SID, t=2.5, agent="coder", chunk=1, attempt=1, model="openai:m",
                        kind="first", started_t=1.5, duration_ms=1000.0, input_tokens=10, output_tokens=4,
                        outcome="cut", stop_reason="max_tokens"),
        ev.ModelAttempt(session_id=SID, t=3.0, agent="coder", chunk=1, attempt=2, model="openai:m",
                        kind="continuation", started_t=2.5, duration_ms=500.0, input_tokens=14,
                        output_tokens=2, outcome="ok", stop_reason="end", response_model="m-2026"),
        ev.AgentFinished(session_id=SID, t=3.0, agent="coder", chunk=1, input_tokens=24, output_tokens=6,
                         latency_ms=1500.0, cost_usd=0.002, status="done"),
        ev.CodeRun(session_id=SID, t=3.4, agent="coder", chunk=1, passed=2, failed=1, duration_ms=300.0,
                   output=""),
        ev.AgentStarted(session_id=SID, t=3.5, agent="synthesizer", chunk=1, model="openai:m",
                        reads=["coder"], synthesizes=True),
        ev.AgentFinished(session_id=SID, t=4.0, agent="synthesizer", chunk=1, input_tokens=30,
                         output_tokens=8, latency_ms=500.0, cost_usd=0.001, status="done"),
        ev.Synthesis(session_id=SID, t=4.0, chunk=1, agreed=["a", "b"], debated=[], confidence=0.8,
                     text="merged"),
        ev.SessionFinished(session_id=SID, t=4.1, status="done", output="out", input_tokens=54,
                           output_tokens=14, cost_usd=0.003, duration_s=4.1),
    ]  # fmt: skip


def test_bars_nest_and_take_their_times_from_the_events() -> None:
    timeline = Timeline.of(session())
    rows = [(depth, bar.kind, bar.label, bar.start, bar.end, bar.status) for depth, bar in timeline.rows()]
    assert rows == [
        (0, "session", "Do it", 0.0, 4.1, "done"),
        (1, "cache", "cache lookup", 0.05, 0.2, "miss"),
        (1, "wait", "budget: waiting for your decision (session limit $0.1)", 0.3, 1.3, "waited"),
        (1, "chunk", "1. Build", 1.4, 4.0, "done"),
        (2, "agent", "coder", 1.5, 3.0, "done"),
        (3, "attempt", "first · m", 1.5, 2.5, "cut"),
        (3, "attempt", "continuation · m", 2.5, 3.0, "ok"),
        (2, "code_run", "code run · coder #1", 3.1, 3.4, "ran"),
        (2, "synthesis", "synthesis (synthesizer)", 3.5, 4.0, "done"),
    ]
    chunk = timeline.bars["chunk:1"]
    assert (chunk.attrs["agreed"], chunk.attrs["debated"], chunk.attrs["confidence"]) == (2, 0, 0.8)


def test_a_live_timeline_reports_what_each_event_opened_and_closed() -> None:
    timeline = Timeline()
    changes = [[(change, bar.id) for change, bar in timeline.add(e)] for e in session()[:7]]
    assert changes[0] == [("open", "session")]
    assert changes[1] == [("open", "cache"), ("close", "cache")]
    assert changes[5] == [("open", "agent:1:coder")]
    assert changes[6] == [("open", "agent:1:coder:attempt:1"), ("close", "agent:1:coder:attempt:1")]
    assert timeline.add(ev.Token(session_id=SID, t=2.6, agent="coder", chunk=1, text="x")) == []
    # A token opens and closes nothing, but the running agent's bar reaches it.
    assert timeline.now == 2.6 and timeline.bars["agent:1:coder"].duration(timeline.now) == 1.1


def test_the_spans_carry_the_cache_code_run_wait_and_continuation_attributes() -> None:
    config = trace_config(TelemetrySettings(endpoint="http://collector:4318"), env={})
    assert config is not None and config.endpoint == "http://collector:4318/v1/traces"
    exporter = InMemorySpanExporter()
    tracing = Tracing(config, exporter)
    sink = tracing.wrap(_NullRecorder())
    for event in session():
        sink.record(event)
    tracing.close()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {
        "session", "cache lookup", "wait budget", "chunk Build", "invoke_agent coder", "chat m",
        "code run", "invoke_agent synthesizer",
    }  # fmt: skip
    assert spans["cache lookup"].attributes["facilitair.cache.decision"] == "miss"
    assert spans["code run"].attributes["facilitair.code.failed"] == 1
    assert spans["wait budget"].attributes["facilitair.budget.choice"] == "continue"
    chats = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    assert [c.attributes["gen_ai.response.finish_reasons"] for c in chats] == [("length",), ("stop",)]
    assert chats[1].attributes["gen_ai.response.model"] == "m-2026"
    assert spans["session"].attributes["facilitair.model.coder"] == "openai:m"
    assert all("Do it" not in str(dict(s.attributes or {})) for s in exporter.get_finished_spans())
    durations = {s.name: (s.end_time or 0) - (s.start_time or 0) for s in exporter.get_finished_spans()}
    assert durations["session"] == 4_100_000_000 and durations["wait budget"] == 1_000_000_000


def test_tracing_is_off_unless_configured_and_the_variables_win() -> None:
    assert trace_config(TelemetrySettings(), env={}) is None
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SERVICE_NAME": "mine"}
    config = trace_config(TelemetrySettings(endpoint="http://y:4318"), env=env)
    assert config is not None and config.endpoint is None and config.service_name == "mine"
    assert trace_config(TelemetrySettings(endpoint="http://y"), env={"OTEL_SDK_DISABLED": "true"}) is None
    assert traces_url("http://y:4318/v1/traces/") == "http://y:4318/v1/traces"


def test_a_bar_always_shows_and_stays_on_the_axis() -> None:
    assert bar_cells(0.0, 0.0, 10.0, 50) == (0, 1)
    assert bar_cells(5.0, 10.0, 10.0, 50) == (25, 25)
    assert bar_cells(10.0, 10.0, 10.0, 50) == (49, 1)


class _NullRecorder:
    problem = None

    def record(self, event: ev.Event) -> None:
        pass
