"""What the ``facilitair`` commands share: failing on bad input in one line (or one JSON error
event) and the options that say how a session runs on the terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.markup import escape

from facilitair_tui import paths
from facilitair_tui.command_line import EXIT_USAGE, F, budget_option, err_console
from facilitair_tui.core import events as ev


def write_export(path: Path, data: bytes, *, force: bool) -> None:
    """Write an export only the user can read (it copies a private database); an existing file
    is kept unless ``--force``."""
    try:
        paths.write_private(path, data, overwrite=force)
    except FileExistsError:
        fail(f"{path} exists; add --force to overwrite it", EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)


def fail(message: str, code: int, *, as_json: bool = False) -> NoReturn:
    """End a ``facilitair`` command on bad input: one line on stderr (or, with ``--json``, one
    ``error`` event on stdout, so a script reading events still gets one), and the exit code."""
    if as_json:
        line = ev.to_json(ev.Error(session_id="", message=message, recoverable=False))
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.flush()
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    sys.exit(code)


class OneLineUsageErrors(click.Command):
    """A bad option value fails like every other bad input: one line, or one JSON error event."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        as_json = "--json" in args  # read first: click consumes ``args`` as it parses
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            names, node = [], ctx
            while node.parent is not None:  # the root's name is however Python was started
                names.append(node.info_name or "")
                node = node.parent
            path = " ".join(["facilitair", *reversed(names)])
            fail(f"{exc.format_message()} (see: {path} --help)", EXIT_USAGE, as_json=as_json)


def run_options(command: F) -> F:
    """How a session runs on the terminal: --json and the answer to the budget guard."""
    options = [
        click.option(
            "--json", "as_json", is_flag=True, help="Write the events as JSON Lines to stdout, nothing else."
        ),
        click.option(
            "--on-budget",
            type=click.Choice(["ask", "continue", "cheaper", "stop"]),
            default="ask",
            show_default=True,
            help="What to do when a chunk could pass the budget: ask (on the terminal; without one, "
            "stop), go on, switch to the cheaper strategy offered, or stop.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def out_options(command: F) -> F:
    """Where the session's files go (``--out DIR``) and whether files already there may be replaced."""
    options = [
        click.option(
            "--out",
            "out_dir",
            type=click.Path(path_type=Path, file_okay=False),
            metavar="DIR",
            help="Write the session's code, tests and a README to DIR when it ends (DIR must be empty "
            "or new; checked before any model is called).",
        ),
        click.option("--force", is_flag=True, help="With --out: write into DIR even if it has files."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def continuation_options(command: F) -> F:
    """What ``sessions resume`` and ``sessions fork`` share: how the new session runs, its budget."""
    return budget_option("the new session's")(run_options(command))
