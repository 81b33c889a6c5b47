"""Does the team beat one call to the same model? HumanEval (or a JSONL of problems) answered
twice on the same model: one call with the coder's first prompt (the baseline, run first), then
the code workflow's team. Each answer is checked with the problem's official test in the sandbox
after it is final; no agent sees that test.

Both runs go through ``facilitair_tui.evaluation`` and are kept in the session store like any
``facilitair eval`` run, so an interrupted bench continues where it stopped (run the same command
again) and ``facilitair eval report`` shows the runs. Prints both side by side: pass@1 and the
difference in points, input and output tokens and the team/single ratio, wall time. The wall time
is this machine's (its cores are printed), shared and noisy: compare the two columns, not the
absolute figures.

Usage: python bench/collaboration_quality.py [--limit N] [--seed S] [--model PROVIDER:MODEL]
       [--source humaneval|FILE]
--limit N takes N problems, picked with --seed S (17 by default) as ``facilitair eval`` picks them.
Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Callable

from facilitair_tui.evaluation.attempts import Setup
from facilitair_tui.evaluation.problems import HUMANEVAL, load_problems, select
from facilitair_tui.evaluation.runs import Progress, Summary, params_for, run_eval
from facilitair_tui.store import SessionStore

DEFAULT_MODEL = "local:qwen2.5-coder-0.5b"
WORKFLOW = "code"
# As in `facilitair eval --seed`: the problems are a seeded sample (all of them when there is no
# limit) and the repair rounds' sampled candidates are seeded, so a run can be repeated.
DEFAULT_SEED = 17


def _progress(mode: str) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        r = progress.result
        eta = f", ~{progress.eta_s / 60:.0f} min left" if progress.eta_s else ""
        kept = " (kept)" if progress.resumed else ""
        print(
            f"  {mode:6} {progress.done:3}/{progress.total} {r.task_id:15} {'pass' if r.passed else 'FAIL'}"
            f" {r.input_tokens + r.output_tokens:6} tok {r.duration_s:6.1f}s{kept}"
            f"  pass@1 {progress.passed / progress.done:.1%}{eta}",
            flush=True,
        )

    return show


async def _run(source: str, limit: int | None, seed: int | None, model: str) -> tuple[Summary, Summary]:
    problems = load_problems(source)
    chosen = select(problems, limit, seed)
    setup = Setup(WORKFLOW, None, model, seed)
    store = SessionStore.open_default()
    try:
        summaries = []
        for mode in ("single", "team"):
            params = params_for(source, mode, setup, limit)
            summaries.append(await run_eval(store, chosen, params, setup, on_progress=_progress(mode)))
        return summaries[0], summaries[1]
    finally:
        store.close()


def _row(name: str, single: str, team: str) -> None:
    print(f"| {name:22} | {single:>12} | {team:>20} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", default=HUMANEVAL, help="humaneval (164 problems) or a JSONL file")
    parser.add_argument("--limit", type=int, default=None, help="the first N problems (default: all)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="picks the sample, seeds sampling")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="every role and the single call on it")
    args = parser.parse_args()
    limit = [] if args.limit is None else ["--limit", str(args.limit)]
    same = ["facilitair", "eval", args.source, *limit, "--seed", str(args.seed), "--model", args.model]
    print(f"machine: {os.cpu_count()} cores; model {args.model}; problems: {args.source}")
    print(f"the same runs by hand: {shlex.join(same)} --single, then without --single")
    single, team = asyncio.run(_run(args.source, args.limit, args.seed, args.model))
    s_tokens = single.input_tokens + single.output_tokens
    t_tokens = team.input_tokens + team.output_tokens
    points = 100 * (team.pass_at_1 - single.pass_at_1)
    print()
    _row("", "single call", "team (code workflow)")
    print(f"|{'-' * 24}|{'-' * 14}|{'-' * 22}|")
    _row("problems", f"{single.problems}", f"{team.problems}")
    _row("passed", f"{single.passed}", f"{team.passed}")
    _row("pass@1", f"{single.pass_at_1:.1%}", f"{team.pass_at_1:.1%}")
    _row("input tokens", f"{single.input_tokens:,}", f"{team.input_tokens:,}")
    _row("output tokens", f"{single.output_tokens:,}", f"{team.output_tokens:,}")
    _row("wall time (s)", f"{single.duration_s:.1f}", f"{team.duration_s:.1f}")
    ratio = f"{t_tokens / s_tokens:.2f}x" if s_tokens else "n/a"
    slower = f"{team.duration_s / single.duration_s:.2f}x" if single.duration_s else "n/a"
    print(f"\nteam - single: {points:+.1f} points; team tokens / single tokens: {ratio}; wall time: {slower}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
