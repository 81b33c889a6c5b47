"""What both front ends (``facilitair`` and ``facilitair-tui``) share: exit codes and the options
that describe a session. One definition, so the two commands can't drift apart."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from .core import events as ev

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False)


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


def exit_code(final: ev.SessionFinished | None) -> int:
    """0 done, 3 failed (a provider or configuration problem), 130 stopped or never finished."""
    if final is None or final.status == "stopped":
        return EXIT_INTERRUPTED
    if final.status == "failed":
        return EXIT_CONFIG
    return EXIT_OK


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


def _budget_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--budget",
        "budget_usd",
        type=click.FloatRange(min=0),
        metavar="USD",
        help=f"Pause before a chunk that could take {what} cost past USD dollars.",
    )


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


def continuation_options(command: F) -> F:
    """What ``sessions resume`` and ``sessions fork`` share: how the new session runs, its budget."""
    return _budget_option("the new session's")(run_options(command))


def session_options(command: F) -> F:
    """The options that shape a collaboration: context, strategy, model, workflow, max tokens, budget."""
    options = [
        click.option(
            "--context",
            "-c",
            "context",
            multiple=True,
            metavar="KEY=VALUE",
            help="Context the answer must fit, e.g. language=python (repeatable).",
        ),
        click.option(
            "--strategy", "-s", metavar="NAME", help="Which models the roles run on (see the workflow)."
        ),
        click.option("--model", "-m", metavar="PROVIDER:MODEL", help="Run every role on this one model."),
        click.option(
            "--workflow",
            "-w",
            "workflow",
            type=click.Path(path_type=Path),
            metavar="FILE",
            help="A workflow TOML file instead of the default one.",
        ),
        click.option(
            "--max-tokens",
            type=click.IntRange(min=1, max=32768),
            metavar="N",
            help="Cap every model call at N output tokens.",
        ),
        _budget_option("the session's"),
        click.option(
            "--no-cache",
            "no_cache",
            is_flag=True,
            help="Run the agents even when the cache holds a solution to this task.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
