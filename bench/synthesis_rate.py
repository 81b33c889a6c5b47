"""How the syntheses of real default-workflow sessions come out on the embedded model.

Runs ``--sessions N`` sessions (the tasks of ``_sessions.TASKS`` in turn) on the default local
model with the default workflow and settings, and prints, over every synthesis:

- parsed: the synthesis was read as the format (the target: at least 99%);
- whole: the answer was complete JSON of the schema and ended by itself (not cut at max_tokens,
  not salvaged, not a fallback);
- copied: syntheses whose raw answer repeated the worked example (the model's habit), and those
  whose shown synthesis still does after ``strip_example`` (the target: none);
- the computed confidence's spread, and each session's wall time and tokens/s.

The baseline is the same count for the free-text answer the synthesizer gave before schemas:
not measurable in this run (the old prompt is gone), so none is printed; the rates are the
result. Each raw synthesis is written to ``--out FILE`` (JSON Lines) for reading.
Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from _sessions import TASKS, SessionOutcome, SynthesisOutcome, run_session, workflow_with_agent_tokens

from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL


def wilson_lower(successes: int, total: int, z: float = 1.96) -> float:
    """The 95% lower bound of a rate (Wilson score): what ``successes`` of ``total`` can show."""
    if total == 0:
        return 0.0
    p = successes / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (centre - margin) / (1 + z * z / total)


def mark(s: SynthesisOutcome) -> str:
    shape = "whole" if s.whole else "parsed" if s.parsed else "free"
    return shape + ("+copied" if s.copied else "")


def report(sessions: list[SessionOutcome]) -> None:
    syntheses = [s for session in sessions for s in session.syntheses]
    total = len(syntheses)
    parsed = sum(s.parsed for s in syntheses)
    whole = sum(s.whole for s in syntheses)
    cut = sum(s.stop_reason == "max_tokens" for s in syntheses)
    copied = sum(s.copied > 0 for s in syntheses)
    shown_copied = sum(s.shown_copied > 0 for s in syntheses)
    confidences = [s.confidence for s in syntheses if s.confidence is not None]
    print(f"== Syntheses of {len(sessions)} default-workflow sessions on local:{DEFAULT_CHAT_MODEL.name} ==")
    if not total:
        print("  no synthesis was written")
        return
    lower = wilson_lower(parsed, total)
    rate = f"{parsed / total:6.1%}  (95% lower bound {lower:.1%}; target 99%)"
    print(f"  parsed        {parsed:4d} of {total}  {rate}")
    print(f"  whole JSON    {whole:4d} of {total}  {whole / total:6.1%}  (cut at max_tokens: {cut})")
    print(f"  copied the example (raw answer)   {copied:4d} of {total}")
    print(f"  still repeating it when shown     {shown_copied:4d} of {total}  (target 0)")
    if confidences:
        q = statistics.quantiles(confidences, n=4) if len(confidences) > 1 else [confidences[0]] * 3
        spread = " / ".join(f"{v:.2f}" for v in q)
        print(f"  confidence    min {min(confidences):.2f}  quartiles {spread}  max {max(confidences):.2f}")
    walls = [s.wall_s for s in sessions]
    rates = [s.tokens_per_s for s in sessions]
    done = sum(s.status == "done" for s in sessions)
    print(
        f"  sessions done {done} of {len(sessions)}; wall time median {statistics.median(walls):.0f} s;"
        f" output tokens/s median {statistics.median(rates):.1f}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument(
        "--agent-max-tokens",
        type=int,
        default=0,
        help="cap the agents' answers (not the synthesizer's) to make sessions shorter",
    )
    parser.add_argument(
        "--out", default="", help="write each synthesis (raw answer included) here, as JSON Lines"
    )
    parser.add_argument("--running-report", action="store_true", help="print the report after every session")
    args = parser.parse_args()
    sessions = []
    scratch = Path(tempfile.mkdtemp(prefix="synthesis-rate-"))
    workflow = workflow_with_agent_tokens(args.agent_max_tokens, scratch) if args.agent_max_tokens else None
    if workflow is not None:
        print(f"  agents capped at {args.agent_max_tokens} tokens; the synthesizer as by default")
    for number in range(args.sessions):
        task, context = TASKS[number % len(TASKS)]
        outcome = await run_session(f"local:{DEFAULT_CHAT_MODEL.name}", task, context, workflow)
        sessions.append(outcome)
        marks = " ".join(f"{s.chunk}:{mark(s)}" for s in outcome.syntheses)
        print(
            f"  session {number + 1}: {outcome.status}, {outcome.wall_s:.0f} s,"
            f" {outcome.tokens_per_s:.1f} tok/s  [{marks}]  {task[:50]}",
            flush=True,
        )
        if args.out:
            lines = "".join(json.dumps({"task": task, **asdict(s)}) + "\n" for s in outcome.syntheses)
            with Path(args.out).open("a", encoding="utf-8") as out:  # noqa: ASYNC230 - between sessions
                out.write(lines)
        if number + 1 < args.sessions and args.running_report:
            report(sessions)  # so far: a long run stopped early still says what it measured
    report(sessions)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
