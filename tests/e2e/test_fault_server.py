"""End to end: a whole session through a fault server, on both streaming formats.

The real CLI and the official SDKs against a server on loopback that answers one request in
three with 429 and cuts one stream in six without its end marker (no ``finish_reason`` and no
``[DONE]``; no ``message_stop``), ending the body cleanly the way a proxy does, so the SDK sees
a normal end. Every answer must still reach the user whole and once (each agent's text is
exactly the answer the server was serving it, however many attempts it took), and every cost
must be the usage the server reported times the price (a cut attempt, whose usage the server
never reported, is counted and marked estimated).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.core.cost import PriceTable
from facilitair_tui.core.gateway import CONTINUE_INSTRUCTION
from facilitair_tui.core.provider import ModelRef, Usage
from tests.conftest import CliRunner
from tests.support import anthropic_sse_server, openai_sse_server

pytestmark = pytest.mark.e2e

WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "grove",
    "harbor",
    "iris",
    "jasper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
]
PROMPT_TOKENS = 50


def answer_for(key: str) -> str:
    """A distinct answer per call (numbered words, so no continuation overlaps by chance)."""
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    return " ".join(f"{rng.choice(WORDS)}{rng.randrange(1000)}" for _ in range(14)) + "."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


@dataclass
class Call:
    """One agent call as the server saw it: its answer, and what each attempt reported."""

    answer: str
    reported: list[tuple[int, int]] = field(default_factory=list)  # completed streams' usage
    cut: int = 0  # streams ended without their end marker


@dataclass
class FaultPlan:
    """Request n (from 1): every third is a 429, and of the rest one in six is cut midway."""

    make_script: Callable[..., Any]
    cut_fault: str
    calls: dict[str, Call] = field(default_factory=dict)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: dict[str, Any]) -> Any:
        messages = [(m["role"], _text(m["content"])) for m in body["messages"]]
        partial = ""
        if len(messages) >= 2 and messages[-1] == ("user", CONTINUE_INSTRUCTION):
            partial = messages[-2][1]
            messages = messages[:-2]
        key = json.dumps([body.get("system", ""), messages])
        with self.lock:
            self.requests += 1
            n = self.requests
            call = self.calls.setdefault(key, Call(answer_for(key)))
        if n % 3 == 0:
            return self.make_script(status=429, retry_after="0")
        if not call.answer.startswith(partial):  # the client asked to continue something else
            return self.make_script(status=400, error_message="not a continuation of this answer")
        deltas = re.findall(r"\S+\s*", call.answer[len(partial) :])
        if n % 6 == 1 and len(deltas) > 1:
            call.cut += 1
            return self.make_script(deltas=deltas, fault=self.cut_fault, fault_after=len(deltas) // 2)
        call.reported.append((PROMPT_TOKENS, len(deltas)))
        return self.make_script(deltas=deltas)


def _config(home: Path) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[reliability]\nattempts_per_model = 10\nbase_delay_s = 0.01\nmax_delay_s = 0.05\n", encoding="utf-8"
    )


def _check(events: list[ev.Event], plan: FaultPlan, model: str) -> None:
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done"
    assert plan.requests >= 30 and sum(call.cut for call in plan.calls.values()) >= 3  # faults happened
    texts: dict[tuple[str, int], str] = defaultdict(str)
    for event in events:
        if isinstance(event, ev.Token):
            texts[event.agent, event.chunk] += event.text
    # Every agent's text is exactly one answer the server served, each answer once.
    assert Counter(texts.values()) == Counter(call.answer for call in plan.calls.values())
    by_answer = {call.answer: call for call in plan.calls.values()}
    prices, ref = PriceTable(), ModelRef.parse(model)
    finished = [e for e in events if isinstance(e, ev.AgentFinished)]
    assert len(finished) == 16 and all(e.status == "done" and e.stop_reason == "end" for e in finished)
    for done in finished:
        call = by_answer[texts[done.agent, done.chunk]]
        reads = sum(r for r, _ in call.reported)
        writes = sum(w for _, w in call.reported)
        if call.cut:  # the server never said what the cut stream cost: counted, and marked so
            assert done.usage_estimated and done.output_tokens >= writes and done.input_tokens > reads
        else:
            assert (done.input_tokens, done.output_tokens, done.usage_estimated) == (reads, writes, False)
        usage = Usage(done.input_tokens, done.output_tokens)
        assert done.cost_usd == pytest.approx(prices.cost(ref, usage), rel=1e-12)
    assert final.cost_usd == pytest.approx(sum(e.cost_usd or 0.0 for e in finished), rel=1e-9)


@dataclass(frozen=True)
class Format:
    """One streaming format: its server, how it cuts a stream, its model, key and URL variables."""

    server: Callable[[], Any]
    script: Callable[..., Any]
    cut_fault: str
    model: str
    key_env: str
    url_env: str


FORMATS = {
    "openai": Format(
        openai_sse_server.OpenAISSEServer,
        lambda **kw: openai_sse_server.Script(prompt_tokens=PROMPT_TOKENS, **kw),
        "cut",
        "openai:gpt-4o-mini",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ),
    "anthropic": Format(
        anthropic_sse_server.AnthropicSSEServer,
        lambda **kw: anthropic_sse_server.Script(input_tokens=PROMPT_TOKENS, **kw),
        "no_stop",
        "anthropic:claude-haiku-4-5",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ),
}


@pytest.mark.parametrize("name", FORMATS)
def test_faults_lose_and_repeat_nothing(cli: CliRunner, facilitair_home: Path, name: str) -> None:
    fmt = FORMATS[name]
    _config(facilitair_home)
    with fmt.server() as server:
        plan = FaultPlan(fmt.script, cut_fault=fmt.cut_fault)
        server.script_for = plan
        env = {fmt.key_env: "sk-test-faults-0123456789", fmt.url_env: server.base_url}
        proc = cli(
            "collaborate", "--json", "--no-cache", "--model", fmt.model, "Build a URL shortener", env=env
        )
    assert proc.returncode == 0, proc.stderr
    _check([ev.from_json(line) for line in proc.stdout.splitlines()], plan, fmt.model)


def test_the_plan_is_what_the_docstring_says() -> None:
    plan = FaultPlan(lambda **kw: kw, cut_fault="cut")
    body = {"messages": [{"role": "user", "content": "hi"}]}
    scripts = [plan(body) for _ in range(12)]
    assert [s.get("status") for s in scripts].count(429) == 4
    assert sum(1 for s in scripts if s.get("fault") == "cut") == 2
