"""Does the team beat one call to the same model? HumanEval (or a JSONL of problems) answered
twice on the same embedded model: one call with the coder's first prompt (the baseline, run
first), then the code workflow's team. Each answer is checked with the problem's official test
in the sandbox after it is final; no agent sees that test.

Both runs go through ``facilitair_tui.evaluation`` and are kept in the session store, so an
interrupted bench continues where it stopped (run the same command again). Prints both side by
side: pass@1 and the difference in points, tokens and the team/single ratio, wall time. The wall
time is this machine's, shared and noisy: compare the two columns, not the absolute figures.

Usage: python bench/collaboration_quality.py [--limit N] [--seed S] [--model PROVIDER:MODEL]
Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from facilitair_tui.evaluation.attempts import Setup
from facilitair_tui.evaluation.problems import load_problems, select
from facilitair_tui.evaluation.run import Progress, Summary, run_eval
from facilitair_tui.store import SessionStore
from facilitair_tui.store.evals import EvalParams

DEFAULT_MODEL = "local:qwen2.5-coder-0.5b"
SAMPLING_SEED = 17  # the repair rounds' sampled candidates; the problems are taken in file order


def _progress(mode: str):  # type: ignore[no-untyped-def]
    def show(progress: Progress) -> None:
        r = progress.result
        eta = f", ~{progress.eta_s / 60:.0f} min left" if progress.eta_s is not None else ""
        kept = " (kept)" if progress.resumed else ""
        print(
            f"  {mode:6} {progress.done:3}/{progress.total} {r.task_id:15} {'pass' if r.passed else 'FAIL'}"
            f" {r.input_tokens + r.output_tokens:6} tok {r.duration_s:6.1f}s{kept}"
            f"  pass@1 {progress.passed / progress.done:.1%}{eta}",
            flush=True,
        )

    return show


async def _run(source: str, limit: int | None, model: str) -> tuple[Summary, Summary]:
    problems, digest = load_problems(source)
    chosen = select(problems, limit, None)
    store = SessionStore.open_default()
    try:
        summaries = []
        for mode in ("single", "team"):
            params = EvalParams(source, digest, mode, "code", None, model, SAMPLING_SEED, limit)
            setup = Setup("code", None, model, SAMPLING_SEED)
            summaries.append(await run_eval(store, chosen, params, setup, on_progress=_progress(mode)))
        return summaries[0], summaries[1]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="humaneval")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; model {args.model}; problems: {args.source}, limit {args.limit}")
    single, team = asyncio.run(_run(args.source, args.limit, args.model))
    s_tokens = single.input_tokens + single.output_tokens
    t_tokens = team.input_tokens + team.output_tokens
    points = 100 * (team.pass_at_1 - single.pass_at_1)
    print()
    print(f"| {'':22} | {'single call':>12} | {'team (code workflow)':>20} |")
    print(f"|{'-' * 24}|{'-' * 14}|{'-' * 22}|")
    print(f"| {'problems':22} | {single.problems:12} | {team.problems:20} |")
    print(f"| {'passed':22} | {single.passed:12} | {team.passed:20} |")
    print(f"| {'pass@1':22} | {single.pass_at_1:12.1%} | {team.pass_at_1:20.1%} |")
    print(f"| {'input tokens':22} | {single.input_tokens:12,} | {team.input_tokens:20,} |")
    print(f"| {'output tokens':22} | {single.output_tokens:12,} | {team.output_tokens:20,} |")
    print(f"| {'wall time (s)':22} | {single.duration_s:12.0f} | {team.duration_s:20.0f} |")
    ratio = t_tokens / s_tokens if s_tokens else float("nan")
    print(f"\nteam - single: {points:+.1f} points; team tokens / single tokens: {ratio:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
