"""``facilitair eval``: does the team beat one call to the same model? And ``facilitair eval
report``, which compares the runs kept in the session store."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facilitair_tui.cli.headless import ctrl_c_stops, open_store_or_fail, warn
from facilitair_tui.cli.options import OneLineUsageErrors, fail
from facilitair_tui.command_line import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    err_console,
    keep_unwritten,
)
from facilitair_tui.core.provider import ConfigurationError, UsageError
from facilitair_tui.store import StoreError
from facilitair_tui.summaries import clock
from facilitair_tui.traces.settings import open_tracing

if TYPE_CHECKING:  # the evaluation package assembles sessions: imported when an eval runs
    from facilitair_tui.evaluation.runs import Progress, Summary

REPORT = "report"
DEFAULT_WORKFLOW = "code"
MESSAGE_CHARS = 80  # of why a problem failed, on its progress line


def about(seconds: float) -> str:
    """A time left, as roughly as it is known: "about 40 s", "about 12 min", "about 2 h 5 min"."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


@click.command("eval", cls=OneLineUsageErrors)
@click.argument("source")
@click.option("--limit", type=int, metavar="N", help="Only the first N problems (with --seed, N at random).")
@click.option(
    "--seed", type=int, metavar="S", help="Pick the problems at random with this seed; seeds sampling too."
)
@click.option(
    "--workflow",
    default=DEFAULT_WORKFLOW,
    show_default=True,
    metavar="NAME|FILE",
    help="The team's workflow (it needs a [code] section).",
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
    test in the sandbox once it is final (no agent ever sees that test; the agents' code runs
    without asking). Results are kept in the session store: run the same command again to
    continue a run that was stopped. `facilitair eval report` compares the runs."""
    if source == REPORT:
        given = {
            "--limit": limit is not None,
            "--seed": seed is not None,
            "--workflow": workflow != DEFAULT_WORKFLOW,
            "--strategy": strategy is not None,
            "--model": model is not None,
            "--single": single,
            "--fresh": fresh,
        }
        if extra := [name for name, set_ in given.items() if set_]:
            fail(f"eval report takes only --json, not {', '.join(extra)}", EXIT_USAGE, as_json=as_json)
        report(as_json)
        return
    from facilitair_tui.evaluation.attempts import Setup, Stop
    from facilitair_tui.evaluation.problems import load_problems, select
    from facilitair_tui.evaluation.runs import params_for, run_eval

    if strategy and model:
        fail("give --strategy or --model, not both", EXIT_USAGE, as_json=as_json)
    mode = "single" if single else "team"
    setup = Setup(workflow, strategy, model, seed)
    try:
        problems = load_problems(source)
        chosen = select(problems, limit, seed)
        params = params_for(source, mode, setup, limit)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    show = _json_line if as_json else _ProgressLines(Console(highlight=False))
    stop = Stop()
    try:  # the team's sessions are traced like any session when a collector is configured
        tracing = open_tracing() if mode == "team" else None
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    store = open_store_or_fail(as_json=as_json)
    traced = tracing.wrap if tracing is not None else None

    async def run() -> Summary:
        with ctrl_c_stops(stop.request):  # a second Ctrl-C raises KeyboardInterrupt
            return await run_eval(
                store,
                chosen,
                params,
                setup,
                fresh=fresh,
                stop=stop,
                on_progress=show,
                warn=warn,
                traced=traced,
            )

    try:
        summary = asyncio.run(run())
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    except (ConfigurationError, StoreError) as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    except KeyboardInterrupt:
        err_console.print(f"stopped hard; the problems done are kept. {_resume_hint()}", soft_wrap=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        keep_unwritten(store.close())
        if tracing is not None and (problem := tracing.close()):
            warn(problem)
    _show_summary(summary, as_json)
    if summary.stopped is not None:
        sys.exit(EXIT_INTERRUPTED)


def _resume_hint() -> str:
    return f"To go on where it stopped, run the same command again: facilitair {shlex.join(sys.argv[1:])}"


def _json_line(progress: Progress) -> None:
    r = progress.result
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


class _ProgressLines:
    """One line per problem: its result, tokens and time, the running pass@1 and the time left."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._said_kept = False

    def __call__(self, progress: Progress) -> None:
        r = progress.result
        if progress.resumed and not self._said_kept:
            self._said_kept = True
            self.console.print("[dim]continuing an unfinished run; kept from before:[/]")
        if r.passed:
            mark = "[green]passed[/]"
        else:
            why = [r.status] if r.status != "failed" else []
            why += [r.message.strip().splitlines()[0][:MESSAGE_CHARS]] if r.message.strip() else []
            mark = "[red]failed[/]" + (f" ({escape(': '.join(why))})" if why else "")
        left = progress.eta_s if progress.done < progress.total else None
        eta = f", {about(left)} left" if left is not None else ""
        used = f"{r.input_tokens:,} + {r.output_tokens:,} tokens, {r.duration_s:.1f}s"
        self.console.print(
            f"{escape(r.task_id)}: {mark}, {used}{' (kept)' if progress.resumed else ''}"
            f"  ·  {progress.done}/{progress.total}, "
            f"pass@1 {progress.passed / progress.done:.1%}{eta}",
            soft_wrap=True,
        )


def _show_summary(summary: Summary, as_json: bool) -> None:
    if as_json:
        line = {
            "type": "eval_summary",
            "mode": summary.mode,
            "problems": summary.problems,
            "passed": summary.passed,
            "pass_at_1": round(summary.pass_at_1, 4),
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "duration_s": round(summary.duration_s, 3),
            "cost_usd": summary.cost_usd,
            "total": summary.total,
            "status": summary.stopped or "done",
            "run_id": summary.run_id,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    else:
        passed = f"{summary.passed} of {summary.problems} passed (pass@1 {summary.pass_at_1:.1%})"
        Console(highlight=False).print(
            f"{summary.mode}: {passed}, "
            f"{summary.input_tokens:,} tokens in, {summary.output_tokens:,} out, {clock(summary.duration_s)}"
            + ("" if summary.stopped is None else f"; {summary.problems} of {summary.total} problems done"),
            soft_wrap=True,
        )
    if summary.stopped is not None:
        why = "the budget stopped it" if summary.stopped != "stopped" else "stopped"
        err_console.print(f"{why}; what was done is kept. {_resume_hint()}", soft_wrap=True)


def report(as_json: bool) -> None:
    """Every eval run in the store, and each team run against the single run over the same problems."""
    from facilitair_tui.evaluation.report import comparisons, model_label, tokens

    store = open_store_or_fail(as_json=as_json)
    try:
        runs = store.evals.runs()
    except StoreError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {
            "run_id": run.id,
            "source": run.params.source,
            "mode": run.params.mode,
            "workflow": run.params.workflow,
            "model": model_label(run),
            "done": len(run.results),
            "total": run.total,
            "passed": run.passed,
            "pass_at_1": round(run.passed / len(run.results), 4) if run.results else None,
            "input_tokens": sum(r.input_tokens for r in run.results),
            "output_tokens": sum(r.output_tokens for r in run.results),
            "tokens": tokens(run.results),
            "duration_s": round(sum(r.duration_s for r in run.results), 3),
            "finished": run.finished_at is not None,
        }
        for run in runs
    ]
    compared = [
        {
            "team_run": c.team_run,
            "single_run": c.single_run,
            "problems": c.problems,
            "team_pass_at_1": round(c.team_pass_at_1, 4),
            "single_pass_at_1": round(c.single_pass_at_1, 4),
            "points": round(c.points, 1),
            "token_ratio": None if c.token_ratio is None else round(c.token_ratio, 2),
        }
        for c in comparisons(runs)
    ]
    if as_json:
        sys.stdout.write(json.dumps({"runs": rows, "comparisons": compared}) + "\n")
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
    for c in compared:
        ratio = "-" if c["token_ratio"] is None else f"{c['token_ratio']}x"
        console.print(
            f"team {c['team_run']} vs single {c['single_run']} on {c['problems']} problems: "
            f"pass@1 {c['team_pass_at_1']:.1%} vs {c['single_pass_at_1']:.1%} ({c['points']:+.1f} points), "
            f"{ratio} the tokens",
            soft_wrap=True,
        )
