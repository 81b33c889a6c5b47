"""Run whole default-workflow sessions in-process, as a user's would run, and read their events.

Shared by ``local_model.py`` (a session's wall time per model) and ``synthesis_rate.py`` (how
the syntheses of many sessions came out). Nothing is recorded or cached: each session is fresh.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from facilitair_tui.core import events as ev
from facilitair_tui.core.prompts import strip_example
from facilitair_tui.core.synthesis import ParsedSynthesis, parse_synthesis
from facilitair_tui.session import prepare

# Tasks a user might bring, of the kinds the product is for; none is the prompts' example task.
TASKS = (
    ("Build a URL shortener with click statistics", ("language=python", "framework=fastapi")),
    (
        "Write a function that checks whether a string is a palindrome, ignoring case and punctuation",
        ("language=python",),
    ),
    ("A rate limiter for an HTTP API: 100 requests per minute per API key", ("language=python",)),
    ("Parse a CSV of bank transactions and report the total spent per category", ("language=python",)),
    ("A command-line todo list that keeps its items in a JSON file", ("language=python",)),
    ("An LRU cache with a fixed capacity and O(1) get and put", ("language=python",)),
    ("Validate an email address and a phone number from a sign-up form", ("language=typescript",)),
    ("A retry decorator with exponential backoff and jitter", ("language=python",)),
    ("Merge overlapping time intervals in a calendar", ("language=python",)),
    (
        "A webhook receiver that checks an HMAC signature before accepting the payload",
        ("language=python", "framework=flask"),
    ),
    ("Convert Roman numerals to integers and back", ("language=python",)),
    ("A markdown table formatter that aligns the columns", ("language=python",)),
)


@dataclass
class SynthesisOutcome:
    chunk: int
    raw: str  # what the synthesizer wrote
    stop_reason: str  # how its answer ended ("end", "max_tokens"), "failed" when it failed
    parsed: bool  # the synthesis event's: the answer read as the format
    whole: bool  # the answer is complete JSON of the schema, not cut, not a fallback
    copied: int  # items and lines of the prompt's example the raw answer repeated
    shown_copied: int  # what the synthesis shown to the user still repeats of it (0 expected)
    confidence: float | None


@dataclass
class SessionOutcome:
    model: str
    task: str
    status: str
    wall_s: float
    output_tokens: int
    syntheses: list[SynthesisOutcome] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.wall_s if self.wall_s else 0.0


def workflow_with_agent_tokens(agent_max_tokens: int, directory: Path) -> Path:
    """The default workflow with the agents' ``max_tokens`` changed, the synthesizer's kept (and
    continuing cut answers kept): shorter sessions whose syntheses are made as by default."""
    default = (resources.files("facilitair_tui") / "data" / "workflows" / "default.toml").read_text("utf-8")
    marker = "\n[defaults]\n"
    head, _, rest = default.partition(marker)
    rest = re.sub(
        r"^max_tokens = \d+$", f"max_tokens = {agent_max_tokens}", rest, count=1, flags=re.MULTILINE
    )
    path = directory / "default-agents-capped.toml"
    path.write_text(head + marker + rest, encoding="utf-8")
    return path


async def run_session(
    model: str, task: str, context: tuple[str, ...], workflow: Path | None = None
) -> SessionOutcome:
    prepared = prepare(task, context=context, model=model, workflow=workflow, no_cache=True)
    agents = [r.name for r in prepared.collaboration.workflow.roles]
    synthesizer = prepared.collaboration.workflow.merger.name
    raw: dict[int, str] = {}
    stops: dict[int, str] = {}
    outcome = SessionOutcome(model, task, "failed", 0.0, 0)
    start = time.perf_counter()
    try:
        async for event in prepared.collaboration.events():
            if isinstance(event, ev.Token) and event.agent == synthesizer:
                raw[event.chunk] = raw.get(event.chunk, "") + event.text
            elif isinstance(event, ev.AgentFinished) and event.agent == synthesizer:
                stops[event.chunk] = event.stop_reason if event.status == "done" else "failed"
            elif isinstance(event, ev.Synthesis):
                text = raw.get(event.chunk, "")
                _, copied = strip_example(parse_synthesis(text, agents))
                shown = ParsedSynthesis(event.agreed, event.debated, event.text, parsed=True)
                _, shown_copied = strip_example(shown)
                stop = stops.get(event.chunk, "failed")
                whole = stop == "end" and _complete_json(text)
                outcome.syntheses.append(
                    SynthesisOutcome(
                        event.chunk, text, stop, event.parsed, whole, copied, shown_copied, event.confidence
                    )
                )
            elif isinstance(event, ev.SessionFinished):
                outcome.status = event.status
                outcome.output_tokens = event.output_tokens
    finally:
        outcome.wall_s = time.perf_counter() - start
        await prepared.aclose()
    return outcome


def _complete_json(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and {"agreed", "debated", "merged"} <= data.keys()
