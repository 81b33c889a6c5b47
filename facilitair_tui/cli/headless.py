"""Running a session on the terminal, for ``facilitair``: rendered live or as JSON Lines.

``run_prepared`` drives a prepared collaboration (a new one, a resume or a fork) and records
every event in the session store as it happens, before it is shown: what the user saw is in the
store. ``play`` does the same for a ``Replay`` (nothing is recorded: it is a recording). Ctrl-C
stops a session cleanly (its partial output is kept), a second Ctrl-C hard.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from facilitair_tui import recording
from facilitair_tui.cli.options import fail
from facilitair_tui.cli.render import LiveRenderer
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, err_console, exit_code, keep_unwritten
from facilitair_tui.core import events as ev
from facilitair_tui.core.budget import BudgetChoice
from facilitair_tui.core.cache import CachedAnswer
from facilitair_tui.core.code_run import RunRequest
from facilitair_tui.core.orchestrator import Collaboration
from facilitair_tui.core.workflow import Workflow
from facilitair_tui.library import EventSink, age_words
from facilitair_tui.recording import BudgetAnswer, Feed, Sink, recorded
from facilitair_tui.replay import Replay
from facilitair_tui.store import SessionStore, StoreError
from facilitair_tui.summaries import clock, differing_words, money
from facilitair_tui.traces.settings import open_tracing

if TYPE_CHECKING:  # the session module imports the cache: only when a session runs
    from facilitair_tui.session import Prepared


def open_store_or_fail(*, as_json: bool = False) -> SessionStore:
    try:  # not through session.py: that imports the cache, which these commands may not need
        return SessionStore.open_default()
    except StoreError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)


@contextlib.contextmanager
def opened_store(*, as_json: bool = False) -> Iterator[SessionStore]:
    """The session store for one command: a store error fails the command in one line."""
    store = open_store_or_fail(as_json=as_json)
    try:
        yield store
    except StoreError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    finally:
        store.close()


def session_id_or_fail(store: SessionStore, prefix: str, *, as_json: bool = False) -> str:
    """The one session id ``prefix`` starts, or a one-line failure saying what to do."""
    try:
        return store.resolve(prefix)
    except StoreError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)


def warn(problem: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)


def json_sink(event: ev.Event) -> None:
    sys.stdout.buffer.write(ev.to_json(event) + b"\n")
    sys.stdout.flush()


def run_prepared(
    prepared: Prepared,
    store: SessionStore,
    *,
    as_json: bool,
    on_budget: str,
    on_end: Callable[[Sequence[ev.Event]], None] | None = None,
    approval: TerminalApproval | None = None,
    offers: TerminalOffer | None = None,
) -> None:
    """Run the session to its end, recorded in ``store``; exits with the session's exit code.

    ``on_end`` gets the session's start, syntheses and end (what its deliverable is made of)
    once it has ended, before the exit."""
    for note in prepared.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    collaboration = prepared.collaboration
    traced = open_tracing(prepared.registry.settings.telemetry)  # the settings the session loaded
    recorder: EventSink = store.recorder(collaboration.spec, collaboration.session_id)
    if traced is not None:
        recorder = traced.wrap(recorder)
    kept: list[ev.Event] = []
    try:
        if as_json:
            show: Sink = json_sink
            status = asyncio.run(
                drive(
                    collaboration,
                    recorded(recorder, keeping(show, kept, on_end is not None), warn),
                    prepared.aclose,
                    budget_answer(on_budget, False),
                )
            )
        else:
            renderer = LiveRenderer(Console(highlight=False), collaboration.workflow)
            if approval is not None:
                approval.renderer = renderer
            if offers is not None:
                offers.renderer = renderer
            with renderer:
                answer = budget_answer(on_budget, True, renderer)
                show = keeping(renderer.handle, kept, on_end is not None)
                status = asyncio.run(
                    drive(collaboration, recorded(recorder, show, warn), prepared.aclose, answer)
                )
    finally:  # a second Ctrl-C ends the run hard, but what was recorded is still committed
        keep_unwritten(store.close())
        if traced is not None and (problem := traced.close()):
            warn(problem)
    if on_end is not None:
        on_end(kept)
    sys.exit(exit_code(status))


def keeping(show: Sink, kept: list[ev.Event], keep: bool) -> Sink:
    """``show``, keeping the events a deliverable is made of in ``kept`` (when ``keep``)."""
    if not keep:
        return show

    def sink(event: ev.Event) -> None:
        if isinstance(event, (ev.SessionStarted, ev.Synthesis, ev.SessionFinished)):
            kept.append(event)
        show(event)

    return sink


def play(replay: Replay, *, as_json: bool) -> None:
    """Play a recording to the terminal exactly as a live run shows."""
    if as_json:
        asyncio.run(drive(replay, json_sink, _nothing, None))
        return
    renderer = LiveRenderer(Console(highlight=False), replay.workflow)
    with renderer:
        asyncio.run(drive(replay, renderer.handle, _nothing, None))


def _nothing() -> None:
    return None


def budget_answer(policy: str, human: bool, renderer: LiveRenderer | None = None) -> BudgetAnswer:
    """How the CLI answers the budget guard: the --on-budget choice, or a question on the terminal."""

    async def fixed(alert: ev.BudgetExceeded) -> BudgetChoice:
        # "ask" without a terminal, or "cheaper" with nothing cheaper that can run here: stop,
        # never go past the budget unasked.
        choice = cast(BudgetChoice, policy) if policy in ("continue", "stop") else "stop"
        if policy == "cheaper" and alert.cheaper is not None:
            choice = "cheaper"
        if policy == "ask":
            err_console.print(
                "The next chunk could pass the budget and there is no terminal to ask: stopping. "
                "Run with --on-budget continue (or cheaper) to decide ahead, or raise --budget."
            )
        return choice

    async def ask(alert: ev.BudgetExceeded) -> BudgetChoice:
        options = {"c": "continue", "s": "stop"}
        prompt = "[c]ontinue past the budget, [s]top"
        if alert.cheaper is not None:
            options["x"] = "cheaper"
            prompt += f", switch to [x] {alert.cheaper.upper()}"
        if renderer is not None:
            renderer.pause_live()
        try:
            answer = await asyncio.to_thread(
                click.prompt, prompt, type=click.Choice(list(options)), show_choices=False, err=True
            )
        except (click.Abort, EOFError):
            answer = "s"
        finally:
            if renderer is not None:
                renderer.resume_live()
        return cast(BudgetChoice, options[answer])

    if policy == "ask" and human and sys.stdin.isatty():
        return ask
    return fixed


class TerminalApproval:
    """Asks on the terminal before the agents' code runs: [y]es, [n]o, or [a]lways (for the rest
    of the session). The renderer, once there is one, steps aside while the user answers."""

    def __init__(self) -> None:
        self.renderer: LiveRenderer | None = None
        self._always = False

    async def __call__(self, request: RunRequest) -> bool:
        if self._always:
            return True
        lines = request.code.count("\n") + 1
        prompt = (
            f"Run the {request.agent}'s code ({lines} lines, {len(request.tests)} tests) in the "
            "sandbox? [y]es, [n]o, [a]lways"
        )
        if self.renderer is not None:
            self.renderer.pause_live()
        try:
            answer = await asyncio.to_thread(
                click.prompt, prompt, type=click.Choice(["y", "n", "a"]), show_choices=False, err=True
            )
        except (click.Abort, EOFError):
            answer = "n"
        finally:
            if self.renderer is not None:
                self.renderer.resume_live()
        self._always = answer == "a"
        return answer in ("y", "a")


class TerminalOffer:
    """``core.cache.ChooseOffer`` on the terminal: the cached task above the new one with the
    words that differ highlighted, why it was offered, and the start of the cached answer; then
    "Use the cached answer? [y/N]" (Enter, or no answer, runs the agents)."""

    def __init__(self, console: Console | None = None) -> None:
        self.renderer: LiveRenderer | None = None
        self.console = console or err_console

    async def __call__(self, asked: str, offered: CachedAnswer) -> bool:
        if self.renderer is not None:
            self.renderer.pause_live()
        try:
            self.console.print(offer_panel(asked, offered))
            return bool(
                await asyncio.to_thread(click.confirm, "Use the cached answer?", default=False, err=True)
            )
        except (click.Abort, EOFError):
            return False
        finally:
            if self.renderer is not None:
                self.renderer.resume_live()


def offer_panel(asked: str, offered: CachedAnswer, preview_lines: int = 15) -> Panel:
    """What the terminal shows of an offer (see ``TerminalOffer``)."""
    removed, added = differing_words(offered.task, asked)
    cached, new = Text(), Text()
    for words, shown, style in ((removed, cached, "bold red strike"), (added, new, "bold green")):
        for word, marked in words:
            shown.append(" " if shown else "")
            shown.append(word, style=style if marked else "")
    body = Text()
    body.append("cached: ", style="bold")
    body.append_text(cached)
    body.append("\n  yours: ", style="bold")
    body.append_text(new)
    body.append(f"\n\nWhy offered: {offered.matched_on}\n", style="dim")
    models = ", ".join(sorted(set(offered.models.values()))) or "models not recorded"
    took = f"it took {clock(offered.duration_s)}, {money(offered.cost_usd)}"
    body.append(f"Made {age_words(offered.age_s)} by {models}; {took}.\n\n", style="dim")
    lines = offered.output.strip().splitlines()
    body.append("\n".join(lines[:preview_lines]))
    if len(lines) > preview_lines:
        body.append(f"\n… {len(lines) - preview_lines} more lines", style="dim")
    return Panel(body, title="A cached answer may fit this task", title_align="left", border_style="yellow")


def offer_chooser(cache_mode: str | None, as_json: bool) -> TerminalOffer | None:
    """Who is asked when the cache offers a close solution: the terminal, when there is one (and
    the mode is "ask"); without one only what is proven the same is served."""
    if cache_mode in ("auto", "off") or as_json or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    return TerminalOffer()


def code_approval(run_code: str | None, as_json: bool) -> TerminalApproval | None:
    """Who is asked before code runs: the terminal, when there is one to ask ("ask" without one
    runs nothing)."""
    if run_code == "never" or as_json or not sys.stdin.isatty():
        return None
    return TerminalApproval()


async def drive(
    source: Collaboration | Replay,
    sink: Feed,
    aclose: Callable[[], object],
    answer: BudgetAnswer | None,
) -> ev.SessionFinished | None:
    """``recording.drive`` on the terminal: Ctrl-C stops the session cleanly, a second one hard."""
    with ctrl_c_stops(source.stop):
        return await recording.drive(source, sink, aclose, answer)


@contextlib.contextmanager
def ctrl_c_stops(stop: Callable[[], None]) -> Iterator[None]:
    """Within the running event loop: the first Ctrl-C calls ``stop`` (which ends the work
    cleanly, keeping what is done), a second raises KeyboardInterrupt (a hard stop)."""
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            stop()
        else:
            raise KeyboardInterrupt

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def known_workflows(recorded: Workflow | None) -> list[Workflow]:
    """The workflows a replay can take its panes' titles and icons from."""
    from facilitair_tui.core.workflow import packaged_workflows

    return [*([recorded] if recorded is not None else []), *packaged_workflows()]
