"""``facilitair collaborate TASK``: run a collaboration on the terminal, recorded.

It renders the run live (timestamps, agent icons, chunk headers, synthesis panels, a closing
line with time, tokens and cost) or, with ``--json``, writes the events as JSON Lines and
nothing else. Every session is recorded in the session store as it happens. With ``--out DIR``
the session's deliverable (its code as files, its tests, a README) is written to DIR at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from facilitair_tui.cli.headless import code_approval, offer_chooser, open_store_or_fail, run_prepared
from facilitair_tui.cli.options import OneLineUsageErrors, fail, out_options, run_options
from facilitair_tui.cli.out_dir import check_out_dir, writer_for
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, session_options
from facilitair_tui.core.provider import ConfigurationError, UsageError

if TYPE_CHECKING:
    from facilitair_tui.session import CacheMode, RunCode


@click.command(cls=OneLineUsageErrors)
@click.argument("task")
@session_options
@click.option(
    "--read-after",
    "read_after",
    type=click.IntRange(min=0),
    metavar="N",
    help="A role that reads another starts after N of its tokens.",
)
@run_options
@click.option(
    "--run-code",
    type=click.Choice(["ask", "auto", "never"]),
    default=None,
    help="May the agents' code run in the sandbox: ask first (on a terminal; without one, never), "
    "run it without asking, or never. Default: the config file's [sandbox] run, else ask.",
)
@out_options
def collaborate(
    task: str,
    context: tuple[str, ...],
    strategy: str | None,
    model: str | None,
    workflow: Path | None,
    max_tokens: int | None,
    budget_usd: float | None,
    read_after: int | None,
    as_json: bool,
    on_budget: str,
    cache_mode: str | None,
    no_cache: bool,
    run_code: str | None,
    out_dir: Path | None,
    force: bool,
) -> None:
    """Run a collaboration on TASK ("-" reads the task from standard input); with --out DIR, its
    code, tests and a README are written to DIR when it ends."""
    from facilitair_tui.session import prepare

    if out_dir is not None:  # before any model is called: a run is never paid for, then refused
        check_out_dir(out_dir, force=force, as_json=as_json)
    elif force:
        fail("--force goes with --out DIR (it allows writing into a directory that has files)", EXIT_USAGE)
    if task == "-":
        task = sys.stdin.read()
    store = open_store_or_fail(as_json=as_json)
    approval = code_approval(run_code, as_json)
    offers = offer_chooser(cache_mode, as_json)
    try:
        prepared = prepare(
            task,
            context=context,
            strategy=strategy,
            model=model,
            workflow=workflow,
            max_tokens=max_tokens,
            read_after_tokens=read_after,
            budget_usd=budget_usd,
            no_cache=no_cache,
            run_code=cast("RunCode | None", run_code),
            approve=approval,
            cache_mode=cast("CacheMode | None", cache_mode),
            choose_offer=offers,
        )
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    on_end = None
    if out_dir is not None:
        on_end = writer_for(prepared.collaboration.workflow, out_dir, force=force, as_json=as_json)
    run_prepared(
        prepared, store, as_json=as_json, on_budget=on_budget, on_end=on_end, approval=approval, offers=offers
    )
