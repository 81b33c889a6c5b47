"""``facilitair eval``: does the team beat one call to the same model? And ``facilitair eval
report``, which compares the runs kept in the session store."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from facilitair_tui.cli.headless import open_store_or_fail
from facilitair_tui.cli.options import OneLineUsageErrors, fail
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, err_console
from facilitair_tui.core.provider import ConfigurationError, UsageError
from facilitair_tui.summaries import clock

REPORT = "report"


@click.command("eval", cls=OneLineUsageErrors)
@click.argument("source")
@click.option("--limit", type=int, metavar="N", help="Only the first N problems (with --seed, N at random).")
@click.option(
    "--seed", type=int, metavar="S", help="Pick the problems at random with this seed; seeds sampling too."
)
@click.option(
    "--workflow", default="code", show_default=True, metavar="NAME|FILE", help="The team's workflow."
)
@click.option("--strategy", metavar="NAME", help="The workflow's strategy (which models).")
@click.option("--model", metavar="PROVIDER:MODEL", help="Every role on this model.")
@click.option("--single", is_flag=True, help="One call to the coder's model with the coder's first prompt.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per problem, then the summary.")
@click.option("--fresh", is_flag=True, help="Start a new run rather than continue an unfinished one.")
def eval_command(
    source: str,
    limit: int | None,
    seed: int | None,
    workflow: str,
    strategy: str | None,
    model: str | None,
    single: bool,
    as_json: bool,
    fresh: bool,
) -> None:
    """Run SOURCE's problems (`humaneval`, or a JSONL file with task_id, prompt, entry_point and
    test) through the team, or one call with --single, and check each answer with the problem's
    test in the sandbox once it is final (no agent ever sees that test). Results are kept in the
    session store: run the same command again to continue a run that was stopped. `facilitair
    eval report` compares the runs."""
    if source == REPORT:
        report(as_json)
        return
    from facilitair_tui.evaluation.attempts import Setup
    from facilitair_tui.evaluation.problems import load_problems, select
    from facilitair_tui.evaluation.run import Progress, run_eval
    from facilitair_tui.store.evals import EvalParams

    if strategy and model:
        fail("give --strategy or --model, not both", EXIT_USAGE, as_json=as_json)
    try:
        problems, digest = load_problems(source)
        chosen = select(problems, limit, seed)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    mode = "single" if single else "team"
    shown_source = source if source.lower() == "humaneval" else str(Path(source).resolve())
    params = EvalParams(shown_source, digest, mode, workflow, strategy, model, seed, limit)
    console = Console(stderr=True, highlight=False)

    def on_progress(progress: Progress) -> None:
        r = progress.result
        if as_json:
            line = {
                "task_id": r.task_id,
                "passed": r.passed,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cost_usd": r.cost_usd,
                "duration_s": r.duration_s,
                "status": r.status,
                "session_id": r.session_id,
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
            return
        mark = "[green]✓[/]" if r.passed else "[red]✗[/]"
        eta = f", about {clock(progress.eta_s)} left" if progress.eta_s is not None else ""
        kept = " (kept from before)" if progress.resumed else ""
        console.print(
            f"{mark} {r.task_id}: {r.status}, {r.input_tokens + r.output_tokens} tokens, {r.duration_s:.1f}s"
            f"{kept}  ·  {progress.done}/{progress.total}, pass@1 {progress.passed / progress.done:.1%}{eta}"
        )

    store = open_store_or_fail(as_json=as_json)

    try:
        summary = asyncio.run(
            run_eval(
                store,
                chosen,
                params,
                Setup(workflow, strategy, model, seed),
                fresh=fresh,
                on_progress=on_progress,
            )
        )
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    except KeyboardInterrupt:
        err_console.print("stopped; what was done is kept. Run the same command again to go on.")
        sys.exit(130)
    finally:
        store.close()
    line = {
        "type": "eval_summary",
        "mode": summary.mode,
        "problems": summary.problems,
        "passed": summary.passed,
        "pass_at_1": round(summary.pass_at_1, 4),
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
        "duration_s": round(summary.duration_s, 3),
    }
    if as_json:
        sys.stdout.write(json.dumps(line) + "\n")
        return
    console.print(
        f"{summary.mode}: {summary.passed} of {summary.problems} passed (pass@1 {summary.pass_at_1:.1%}), "
        f"{summary.input_tokens:,} tokens in, {summary.output_tokens:,} out, {clock(summary.duration_s)}"
    )


def report(as_json: bool) -> None:
    """Every eval run in the store, and for each single run the team run over the same problems."""
    store = open_store_or_fail(as_json=as_json)
    try:
        runs = store.evals.runs()
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for run in runs:
        tokens = sum(r.input_tokens + r.output_tokens for r in run.results)
        rows.append(
            {
                "run_id": run.id,
                "source": run.params.source,
                "mode": run.params.mode,
                "workflow": run.params.workflow,
                "model": run.params.model or run.params.strategy or "default",
                "done": len(run.results),
                "total": run.total,
                "passed": run.passed,
                "pass_at_1": round(run.passed / len(run.results), 4) if run.results else None,
                "tokens": tokens,
                "duration_s": round(sum(r.duration_s for r in run.results), 3),
                "finished": run.finished_at is not None,
            }
        )
    comparisons = []
    singles = [r for r in runs if r.params.mode == "single"]
    for team in (r for r in runs if r.params.mode == "team"):
        for one in singles:
            same = {r.task_id for r in team.results} & {r.task_id for r in one.results}
            if (
                not same
                or one.params.source_hash != team.params.source_hash
                or one.params.model != team.params.model
            ):
                continue
            t = [r for r in team.results if r.task_id in same]
            s = [r for r in one.results if r.task_id in same]
            t_tokens = sum(r.input_tokens + r.output_tokens for r in t)
            s_tokens = sum(r.input_tokens + r.output_tokens for r in s)
            comparisons.append(
                {
                    "team_run": team.id,
                    "single_run": one.id,
                    "problems": len(same),
                    "team_pass_at_1": round(sum(r.passed for r in t) / len(same), 4),
                    "single_pass_at_1": round(sum(r.passed for r in s) / len(same), 4),
                    "points": round(
                        100 * (sum(r.passed for r in t) - sum(r.passed for r in s)) / len(same), 1
                    ),
                    "token_ratio": round(t_tokens / s_tokens, 2) if s_tokens else None,
                }
            )
    if as_json:
        sys.stdout.write(json.dumps({"runs": rows, "comparisons": comparisons}) + "\n")
        return
    console = Console(highlight=False)
    if not rows:
        console.print("No eval runs yet: `facilitair eval humaneval --limit 20` starts one.")
        return
    table = Table("run", "source", "mode", "model", "done", "pass@1", "tokens", "time", title="Eval runs")
    for row in rows:
        pass_at_1 = "-" if row["pass_at_1"] is None else f"{row['pass_at_1']:.1%}"
        done = f"{row['done']}/{row['total']}" + ("" if row["finished"] else " (unfinished)")
        table.add_row(
            str(row["run_id"]),
            Path(str(row["source"])).name,
            str(row["mode"]),
            str(row["model"]),
            done,
            pass_at_1,
            f"{row['tokens']:,}",
            clock(float(row["duration_s"])),
        )
    console.print(table)
    for c in comparisons:
        console.print(
            f"team {c['team_run']} vs single {c['single_run']} on {c['problems']} problems: "
            f"{c['team_pass_at_1']:.1%} vs {c['single_pass_at_1']:.1%} ({c['points']:+} points), "
            f"{c['token_ratio']}x the tokens"
        )
