"""End to end: a session's trace, as a collector receives it.

The real CLI runs a session on the official OpenAI SDK against the local server speaking its
streaming format; the first request is rate limited (429, retried) and the answer after it stops
at max_tokens (continued). Its spans go over OTLP/HTTP to a local receiver that decodes them with
the ``opentelemetry-proto`` messages. The test checks the span tree (session > chunk > agent >
attempt, and the waits between attempts), the GenAI attributes, and what is never sent.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from facilitair_tui.core.cost import PriceTable
from facilitair_tui.core.gateway import CONTINUE_INSTRUCTION
from facilitair_tui.core.provider import ModelRef, Usage
from tests.conftest import CliRunner
from tests.support.openai_sse_server import OpenAISSEServer, Script
from tests.support.otlp_receiver import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

KEY = "sk-test-traces-0123456789"
TASK = "Build a URL shortener with a secret-free trace"
MODEL = "openai:gpt-4o-mini"


class Plan:
    """Request 1: 429. Request 2: cut at max_tokens. Its continuation, then plain answers."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Script:
        with self._lock:
            n = next(self._count)
        if n == 1:
            return Script(status=429, retry_after="0", error_message="slow down")
        if body["messages"][-1]["content"] == CONTINUE_INSTRUCTION:
            return Script(deltas=["and ", "the ", "rest."], prompt_tokens=60)
        if n == 2:
            return Script(deltas=["First ", "half "], finish_reason="length", prompt_tokens=40)
        return Script(deltas=["An ", "answer ", "here."], prompt_tokens=30)


def _config(home: Path, extra: str = "") -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[reliability]\nbase_delay_s = 0.01\nmax_delay_s = 0.05\n{extra}", encoding="utf-8")


def _run(cli: CliRunner, env: dict[str, str]) -> str:
    """Run the session; its stderr."""
    with OpenAISSEServer() as server:
        server.script_for = Plan()
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url, **env}
        proc = cli("collaborate", "--json", "--no-cache", "--model", MODEL, TASK, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def _by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.span_id: s for s in spans}


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.parent_id == parent.span_id), key=lambda s: s.start_ns)


def test_a_session_trace_has_its_tree_attempts_waits_and_genai_attributes(
    cli: CliRunner, facilitair_home: Path
) -> None:
    _config(facilitair_home)
    with OTLPReceiver() as receiver:
        _run(cli, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "facilitair-test"})
    spans = receiver.spans
    assert spans and set(receiver.paths) == {"/v1/traces"}
    assert len({s.trace_id for s in spans}) == 1  # one session, one trace
    assert {s.resource["service.name"] for s in spans} == {"facilitair-test"}

    (root,) = [s for s in spans if not s.parent_id]
    assert root.name == "session" and root.attributes["facilitair.status"] == "done"
    assert root.attributes["facilitair.model.coder"] == MODEL
    chunks = _children(spans, root)
    assert [c.name for c in chunks] == [
        "chunk Requirements",
        "chunk Architecture",
        "chunk Implementation",
        "chunk Review",
    ]
    ids = _by_id(spans)
    for span in spans:  # every child lies within its parent
        if span.parent_id:
            parent = ids[span.parent_id]
            assert parent.start_ns <= span.start_ns <= span.end_ns <= parent.end_ns, (span.name, parent.name)

    agents = [s for s in spans if s.name.startswith("invoke_agent ")]
    assert Counter(ids[a.parent_id].name for a in agents) == Counter({c.name: 4 for c in chunks})
    synthesis = [a for a in agents if a.attributes["facilitair.synthesis"]]
    assert len(synthesis) == 4 and {a.attributes["gen_ai.agent.name"] for a in synthesis} == {"synthesizer"}

    attempts = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert all(ids[a.parent_id].name.startswith("invoke_agent ") for a in attempts)
    assert len(attempts) == len(agents) + 2  # the retry and the continuation are attempts of their own
    # The first agent's call: rate limited, retried after a wait, cut, continued.
    first_agent = ids[min(attempts, key=lambda s: s.start_ns).parent_id]
    mine = _children(spans, first_agent)
    assert [(s.name, s.attributes.get("facilitair.attempt.kind")) for s in mine] == [
        ("chat gpt-4o-mini", "first"),
        ("wait retry", None),
        ("chat gpt-4o-mini", "retry"),
        ("chat gpt-4o-mini", "continuation"),
    ]
    failed, _wait, cut, continued = mine
    assert failed.status_code == 2 and failed.attributes["error.type"] == "rate_limit"
    assert failed.attributes["gen_ai.response.finish_reasons"] == ["error"]
    assert cut.attributes["gen_ai.response.finish_reasons"] == ["length"]
    assert continued.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert first_agent.attributes["gen_ai.usage.output_tokens"] == 2 + 3
    assert first_agent.attributes["gen_ai.usage.input_tokens"] == 40 + 60

    plain = attempts[-1]
    assert plain.kind == 3  # SPAN_KIND_CLIENT: a request to a model
    attrs = plain.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (30, 3)
    price = PriceTable().cost(ModelRef.parse(MODEL), Usage(30, 3))
    assert attrs["facilitair.cost_usd"] == pytest.approx(price)
    assert attrs["gen_ai.request.max_tokens"] > 0 and "facilitair.time_to_first_token_ms" in attrs

    # Nothing the user did not ask to send: no key, no task, no output.
    sent = b"".join(receiver.bodies)
    assert KEY.encode() not in sent
    assert b"URL shortener" not in sent and b"An answer here." not in sent


def test_content_is_sent_only_when_asked_and_a_config_endpoint_works_too(
    cli: CliRunner, facilitair_home: Path
) -> None:
    with OTLPReceiver() as receiver:
        _config(facilitair_home, f'[telemetry]\nendpoint = "{receiver.endpoint}"\ncapture_content = true\n')
        _run(cli, {})
    sent = b"".join(receiver.bodies)
    assert b"URL shortener" in sent and b"An answer here." in sent and KEY.encode() not in sent
    assert {s.resource["service.name"] for s in receiver.spans} == {"facilitair"}


def test_a_collector_that_refuses_the_spans_does_not_fail_the_session(
    cli: CliRunner, facilitair_home: Path
) -> None:
    _config(facilitair_home)
    with OTLPReceiver(fail_with=400) as receiver:
        said = _run(cli, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    assert receiver.bodies  # it was asked, refused, and the session still ended well
    assert said.count("traces could not be sent to http://127.0.0.1:") == 1 and "Traceback" not in said


def test_a_collector_that_is_not_there_is_named_once_and_the_session_ends_well(
    cli: CliRunner, facilitair_home: Path
) -> None:
    _config(facilitair_home)
    with OTLPReceiver() as receiver:
        gone = receiver.endpoint  # a port nothing listens on once the receiver is closed
    said = _run(cli, {"OTEL_EXPORTER_OTLP_ENDPOINT": gone})
    assert said.count("could not be sent to http://127.0.0.1:") == 1 and "Traceback" not in said


def test_without_an_endpoint_nothing_is_traced(cli: CliRunner, facilitair_home: Path) -> None:
    _config(facilitair_home)
    with OTLPReceiver() as receiver:
        _run(cli, {})
    assert receiver.bodies == []


def test_a_recorded_session_is_sent_as_it_ran_and_a_missing_collector_is_named(
    cli: CliRunner, facilitair_home: Path
) -> None:
    _config(facilitair_home)
    _run(cli, {})  # recorded, not traced
    listed = json.loads(cli("sessions", "list", "--json").stdout)
    sid = listed[0]["id"]
    with OTLPReceiver() as receiver:
        proc = cli("sessions", "trace", sid[:6], env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    assert proc.returncode == 0, proc.stderr
    assert f"sent the trace of session {sid}" in proc.stderr
    (root,) = [s for s in receiver.spans if not s.parent_id]
    assert root.attributes["facilitair.session.id"] == sid
    assert len([s for s in receiver.spans if s.name == "chat gpt-4o-mini"]) == 16 + 2
    # Timed when it ran, not when it was sent.
    assert abs(root.start_ns / 1e9 - datetime.fromisoformat(listed[0]["started_at"]).timestamp()) < 1

    proc = cli("sessions", "trace", sid)
    assert (
        proc.returncode == 2
        and "no collector is configured" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    with OTLPReceiver(fail_with=400) as receiver:
        proc = cli("sessions", "trace", sid, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    assert proc.returncode != 0 and "could not be sent" in proc.stderr and "Traceback" not in proc.stderr
