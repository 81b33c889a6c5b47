"""What both commands (``facilitair`` and ``facilitair-tui``) share: exit codes, the options that
describe a session, and where events the session store could not take are kept. One definition,
so the two commands can't drift apart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from . import paths
from .core import events as ev

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False)


def exit_code(final: ev.SessionFinished | None) -> int:
    """0 done, 3 failed (a provider or configuration problem), 130 stopped or never finished."""
    if final is None or final.status == "stopped":
        return EXIT_INTERRUPTED
    if final.status == "failed":
        return EXIT_CONFIG
    return EXIT_OK


def keep_unwritten(events: list[ev.Event]) -> None:
    """Events the store could not take go to JSON Lines files (one per session) the user can
    import later; each file holds the whole session, so the import stands alone."""
    if not events:
        return
    # Here, not at the top: every command imports this module, and the store costs ~125 ms.
    from .store.unsaved import append_events, unsaved_path

    by_session: dict[str, list[ev.Event]] = {}
    for event in events:
        by_session.setdefault(event.session_id, []).append(event)
    directory = paths.ensure_private_dir(paths.data_dir() / "sessions")
    for session_id, lost in by_session.items():
        target = unsaved_path(directory, session_id)  # the store's own name: one file per session
        append_events(target, lost)
        err_console.print(
            f"[yellow]warning:[/] {len(lost)} events of session {session_id} could not be saved in the "
            f"session database; they are in {escape(str(target))}",
            soft_wrap=True,
        )


def budget_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--budget",
        "budget_usd",
        type=click.FloatRange(min=0),
        metavar="USD",
        help=f"Pause before a chunk that could take {what} cost past USD dollars.",
    )


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
        budget_option("the session's"),
        click.option(
            "--cache",
            "cache_mode",
            type=click.Choice(["ask", "auto", "off"]),
            default=None,
            help="Serve a cached solution proven to answer this task, and ask about one that only "
            "may (ask; without a terminal or with --json: auto), never ask (auto), or skip the cache "
            "(off). Default: the config file's [cache] mode, else ask.",
        ),
        click.option(
            "--no-cache",
            "no_cache",
            is_flag=True,
            help="Run the agents even when the cache holds a solution to this task (--cache off).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
