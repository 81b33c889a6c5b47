"""``facilitair-tui``: the Textual front end's entry point.

``facilitair-tui --task "..." [--context K=V ...] [--strategy NAME] [--model P:M] [--max-tokens N]``
builds the collaboration exactly like the CLI (``session.prepare``) and runs the app. Without
``--task`` it opens the task entry screen (the other options prefill and steer it). Bad input
or configuration is one line on stderr and exit code 2 (usage) or 3 (configuration), like
``facilitair``. Exit codes after a run: 0 done, 3 failed, 130 stopped or quit early.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

import click

from facilitair_tui import __version__
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, exit_code, session_options
from facilitair_tui.core import events as ev
from facilitair_tui.core.provider import ConfigurationError, UsageError

if TYPE_CHECKING:
    from facilitair_tui.cache import SemanticCache
    from facilitair_tui.session import CacheMode

# Textual draws at most TEXTUAL_FPS frames a second, 60 unless set. At exactly 60, a frame that
# comes a fraction of a millisecond late is a gap over 17 ms; with headroom, frames under a
# stream stay within 17 ms of each other (bench/tui_throughput.py). Frames are only drawn when
# something changed, so an idle screen costs nothing more. A TEXTUAL_FPS of the user's wins.
MAX_FPS = 90


def frame_rate_headroom() -> None:
    """Raise Textual's frame cap to ``MAX_FPS``; call before Textual is imported."""
    os.environ.setdefault("TEXTUAL_FPS", str(MAX_FPS))


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _OneLineUsageErrors(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _fail(f"{exc.format_message()} (see: facilitair-tui --help)", EXIT_USAGE)


@click.command(cls=_OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="facilitair-tui")
@click.option("--task", "-t", metavar="TEXT", help='What the agents should build ("-" reads standard input).')
@session_options
def main(
    task: str | None,
    context: tuple[str, ...],
    strategy: str | None,
    model: str | None,
    workflow: Path | None,
    max_tokens: int | None,
    budget_usd: float | None,
    cache_mode: str | None,
    no_cache: bool,
) -> None:
    """Watch and steer a collaboration of LLM agents on your software task, live."""
    if task == "-":
        task = sys.stdin.read()

    from facilitair_tui.command_line import keep_unwritten
    from facilitair_tui.config import load_settings
    from facilitair_tui.session import Prepared, open_cache, prepare, prepare_continuation
    from facilitair_tui.store import SessionStore, StoreError
    from facilitair_tui.traces.settings import open_tracing
    from facilitair_tui.tui.entry_options import EntryOptions

    prepared: Prepared | None = None
    entry: EntryOptions | None = None
    cache: SemanticCache | None = None
    notes: list[str] = []
    try:
        store = SessionStore.open_default()
    except StoreError as exc:
        _fail(str(exc), EXIT_CONFIG)
    try:
        settings = load_settings()
        from facilitair_tui.tui.screens.run_code import RunApproval

        # Asks in the app before the agents' code runs ([sandbox] run = "ask", the default).
        approval = RunApproval(auto=settings.sandbox.run == "auto")
        from facilitair_tui.tui.screens.cache_offer import OfferChooser

        # Asks in the app when the cache offers a close solution ([cache] mode = "ask").
        chooser = OfferChooser()
        # Traces of every session, sent to the collector the user configured (none by default).
        tracing = open_tracing(settings.telemetry)
        mode = cast("CacheMode | None", cache_mode)
        # One cache for the whole app: the inspector browses it and every session asks it.
        cache = open_cache(settings, notes) if settings.cache.enabled else None
        if task is None:
            entry = EntryOptions.load(
                context=context,
                strategy=strategy,
                model=model,
                workflow=workflow,
                max_tokens=max_tokens,
                budget_usd=budget_usd,
                no_cache=no_cache,
                settings=settings,
            )
        else:
            prepared = prepare(
                task,
                context=context,
                strategy=strategy,
                model=model,
                workflow=workflow,
                max_tokens=max_tokens,
                budget_usd=budget_usd,
                no_cache=no_cache,
                settings=settings,
                cache=cache,
                approve=approval,
                cache_mode=mode,
                choose_offer=chooser,
            )
    except UsageError as exc:
        _fail(str(exc), EXIT_USAGE)
    except ConfigurationError as exc:
        _fail(str(exc), EXIT_CONFIG)

    frame_rate_headroom()

    async def run() -> ev.SessionFinished | None:
        from facilitair_tui.tui.app import FacilitairApp, tune_gc_for_streaming

        app = FacilitairApp(
            prepared.collaboration if prepared is not None else None,
            entry=entry,
            prepared=prepared,
            keymap=settings.keys,
            catalog=cache,
            prepare=functools.partial(
                prepare,
                settings=settings,
                cache=cache,
                approve=approval,
                cache_mode=mode,
                choose_offer=chooser,
            ),
            prepare_continuation=functools.partial(
                prepare_continuation, settings=settings, cache=cache, approve=approval
            ),
            store=store,
            notes=notes,
            traced=tracing.wrap if tracing is not None else None,
        )
        approval.app = app
        chooser.app = app
        if cache is not None:  # the embedder and index load while the user types
            threading.Thread(target=cache.warm, name="cache-warm", daemon=True).start()
        tune_gc_for_streaming()
        final: ev.SessionFinished | None = None
        try:
            final = await app.run_async()
            return final
        finally:
            await app.close_session()
            if cache is not None:
                cache.close()
            keep_unwritten(store.close())
            if tracing is not None and (problem := tracing.close()):
                print(f"warning: {problem}", file=sys.stderr)

    sys.exit(exit_code(asyncio.run(run())))


if __name__ == "__main__":  # pragma: no cover
    main()
