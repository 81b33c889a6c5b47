"""``facilitair sessions ...``: the recorded sessions, from the shell.

list / show ID / export ID --format md|json or --out DIR (the files) / delete ID / replay ID /
resume ID / fork ID / import FILE. An ID may be any unique prefix of a session's id. Replay
re-emits the recorded events through the same renderer as a live run (``--json``: the same JSON
Lines), calling no model. Resume and fork run a new session that reuses the recorded one's
finished chunks.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facilitair_tui.cli.headless import (
    known_workflows,
    open_store_or_fail,
    opened_store,
    play,
    run_prepared,
    session_id_or_fail,
)
from facilitair_tui.cli.options import OneLineUsageErrors, continuation_options, fail
from facilitair_tui.cli.session_export import export, session_record, summary_dict
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, err_console
from facilitair_tui.core import events as ev
from facilitair_tui.core.provider import ConfigurationError, UsageError
from facilitair_tui.library import SessionSummary, branch_label, branches, format_age
from facilitair_tui.replay import SPEEDS, Replay, ReplayError, replay_workflow
from facilitair_tui.store import CONTINUABLE, SessionStore, StoredSession, StoreError
from facilitair_tui.summaries import clock, money
from facilitair_tui.traces.settings import open_tracing

out = Console(highlight=False)


@click.group(name="sessions")
def sessions_group() -> None:
    """List, show, export, replay, resume and fork recorded sessions."""


sessions_group.add_command(export)


@sessions_group.command(cls=OneLineUsageErrors, name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, newest first.")
def list_sessions(as_json: bool) -> None:
    """Every recorded session; resumes and forks under the session they branch from."""
    with opened_store(as_json=as_json) as store:
        sessions = store.list()
    if as_json:
        click.echo(json.dumps([summary_dict(s) for s in sessions], ensure_ascii=False))
        return
    if not sessions:
        err_console.print("No recorded sessions yet: every facilitair collaborate run is recorded.")
        return
    now = datetime.now().astimezone()
    table = Table(title="Sessions", title_justify="left")
    for column in ("id", "when", "status", "chunks", "cost", "time", "task"):
        table.add_column(column, no_wrap=column != "task", overflow="fold")
    for depth, s in branches(sessions):
        task = escape(s.task if depth == 0 else f"{'  ' * (depth - 1)}└ {branch_label(s)}")
        table.add_row(
            s.id[:12],
            format_age(s.started_at, now),
            _status(s),
            f"{s.chunks_done}/{s.chunks_total}",
            money(s.cost_usd),
            clock(s.duration_s),
            task,
        )
    out.print(table)


def _status(s: SessionSummary) -> str:
    colour = {"done": "green", "running": "cyan", "interrupted": "yellow", "stopped": "yellow"}.get(
        s.status, "red"
    )
    extra = " (resumable)" if s.resumable else ""
    return f"[{colour}]{s.status}[/]{extra}"


@sessions_group.command(cls=OneLineUsageErrors, name="show")
@click.argument("session_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON (no events).")
def show(session_id: str, as_json: bool) -> None:
    """A session's chunks, agents (model, tokens, latency, cost) and branches."""
    with opened_store(as_json=as_json) as store:
        sid = session_id_or_fail(store, session_id, as_json=as_json)
        record = session_record(store, sid, events=False)
        summary = store.summary(sid)
        children = [s for s in store.list() if s.parent_id == sid]
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    s = record["session"]
    out.print(f"[b]{escape(s['task'])}[/]", soft_wrap=True)
    out.print(
        f"session {s['id']}, {s['status']}, started {s['started_at']}, {clock(s['duration_s'])}, "
        f"{money(s['cost_usd'])}, strategy {s['strategy']}",
        soft_wrap=True,
    )
    if s["context"]:
        out.print(
            "context: " + escape(", ".join(f"{k}={v}" for k, v in s["context"].items())), soft_wrap=True
        )
    models = s["models"]
    if models:
        distinct = set(models.values())
        text = (
            next(iter(distinct)) if len(distinct) == 1 else ", ".join(f"{k} {v}" for k, v in models.items())
        )
        out.print(f"models: {escape(text)}", soft_wrap=True)
    if s["parent_id"]:
        out.print(f"branch: {escape(branch_label(summary))}", soft_wrap=True)
    table = Table(title_justify="left")
    for column in ("chunk", "agent", "model", "status", "tokens in/out", "latency", "cost"):
        table.add_column(column)
    for e in record["executions"]:
        table.add_row(
            str(e["chunk"]),
            e["agent"],
            e["model"],
            e["status"],
            f"{e['input_tokens'] or 0:,} / {e['output_tokens'] or 0:,}",
            "—" if e["latency_ms"] is None else f"{e['latency_ms'] / 1000:.2f} s",
            money(e["cost_usd"]) if e["status"] != "running" else "—",
        )
    for chunk in record["chunks"]:
        confidence = chunk["synthesis"]["confidence"] if chunk["synthesis"] else None
        shown = "" if confidence is None else f", confidence {confidence:.0%}"
        out.print(f"chunk {chunk['chunk']} {escape(chunk['title'])}: {chunk['status']}{shown}")
    if record["executions"]:
        out.print(table)
    elif s["reused_chunks"]:
        out.print("no model was called")
    for child in children:
        out.print(
            f"└ {child.id[:12]} {branch_label(child)}: {child.status}, {money(child.cost_usd)}",
            soft_wrap=True,
        )
    if s["resumable"]:
        out.print(f"[dim]continue it with: facilitair sessions resume {s['id'][:12]}[/]")


@sessions_group.command(cls=OneLineUsageErrors, name="delete")
@click.argument("session_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
def delete(session_id: str, yes: bool) -> None:
    """Delete a session and its recording (its resumes and forks keep theirs)."""
    with opened_store() as store:
        sid = session_id_or_fail(store, session_id)
        summary = store.summary(sid)
        if not yes:
            if not sys.stdin.isatty():
                fail("deleting cannot be undone; add --yes to delete without a terminal to ask", EXIT_USAGE)
            click.confirm(
                f"Delete session {sid} ({summary.task[:60]!r}, {summary.status})?", abort=True, err=True
            )
        store.delete(sid)
    err_console.print(f"deleted session {sid}")


@sessions_group.command(cls=OneLineUsageErrors, name="replay")
@click.argument("session_id", metavar="ID")
@click.option(
    "--speed",
    type=click.Choice(["1", "4", "instant"]),
    default="1",
    show_default=True,
    help="The recorded pace, four times faster, or at once.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Write the recorded events as JSON Lines, nothing else."
)
def replay(session_id: str, speed: str, as_json: bool) -> None:
    """Play a recorded session again exactly as it ran, without calling any model."""
    with opened_store(as_json=as_json) as store:
        sid = session_id_or_fail(store, session_id, as_json=as_json)
        events = store.events(sid)
        stored = store.load(sid)
    try:
        workflow = replay_workflow(events, known_workflows(stored.workflow))
    except ReplayError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    pace = SPEEDS["instant" if speed == "instant" else f"{speed}x"]
    play(Replay(events, workflow, speed=pace), as_json=as_json)
    if stored.summary.status in CONTINUABLE and not as_json:
        err_console.print(f"[dim]the recording ends here ({stored.summary.status}).[/]")


@sessions_group.command(cls=OneLineUsageErrors, name="trace")
@click.argument("session_id", metavar="ID")
def trace(session_id: str) -> None:
    """Send a recorded session's trace to your OpenTelemetry collector (OTEL_EXPORTER_OTLP_ENDPOINT
    or [telemetry] endpoint), timed as it ran: for sessions from before tracing was on."""
    try:
        tracing = open_tracing()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG)
    if tracing is None:
        fail(
            "no collector is configured: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318) "
            "or endpoint in the config file's [telemetry] table",
            EXIT_USAGE,
        )
    with opened_store() as store:
        sid = session_id_or_fail(store, session_id)
        events = store.events(sid)
        started_at = store.summary(sid).started_at.timestamp()
    try:
        problem = tracing.send(events, started_at)
    finally:
        tracing.close()
    if problem:
        fail(problem, EXIT_CONFIG)
    err_console.print(
        f"sent the trace of session {sid} ({sum(1 for e in events if not isinstance(e, ev.Token))} events)"
    )


@sessions_group.command(cls=OneLineUsageErrors, name="resume")
@click.argument("session_id", metavar="ID")
@continuation_options
def resume(session_id: str, as_json: bool, budget_usd: float | None, on_budget: str) -> None:
    """Continue an interrupted, stopped or failed session from its last finished chunk: the same
    workflow, context, models and syntheses; the finished chunks are not run again."""
    store = open_store_or_fail(as_json=as_json)
    sid = session_id_or_fail(store, session_id, as_json=as_json)
    stored = store.load(sid)
    status = stored.summary.status
    if status == "done":
        fail(
            f"session {sid} finished; to run part of it again, fork it: "
            f"facilitair sessions fork {sid[:12]} --at N",
            EXIT_USAGE,
            as_json=as_json,
        )
    if status == "running":
        fail(
            f"session {sid} is still running (process {stored.pid}); stop it first",
            EXIT_USAGE,
            as_json=as_json,
        )
    _continue(store, stored, as_json=as_json, on_budget=on_budget, budget_usd=budget_usd)


@sessions_group.command(cls=OneLineUsageErrors, name="fork")
@click.argument("session_id", metavar="ID")
@click.option(
    "--at",
    "at_chunk",
    type=click.IntRange(min=0),
    metavar="N",
    help="Reuse chunks 1..N (default: all finished).",
)
@click.option(
    "--feedback",
    "-f",
    multiple=True,
    metavar="TEXT",
    help="Feedback for chunk N+1, replacing the recorded one.",
)
@click.option("--strategy", "-s", metavar="NAME", help="Run the rest on another strategy.")
@click.option("--model", "-m", metavar="PROVIDER:MODEL", help="Run the rest with every role on this model.")
@click.option(
    "--role-model",
    "role_models",
    multiple=True,
    metavar="ROLE=PROVIDER:MODEL",
    help="Move one role to a model.",
)
@continuation_options
def fork(
    session_id: str,
    at_chunk: int | None,
    feedback: tuple[str, ...],
    strategy: str | None,
    model: str | None,
    role_models: tuple[str, ...],
    as_json: bool,
    budget_usd: float | None,
    on_budget: str,
) -> None:
    """Branch off a session after chunk N with other feedback, models or strategy; chunks 1..N are
    reused as recorded (no model is called for them) and only what follows runs."""
    if strategy and model:
        fail("--strategy and --model both choose the models; give one", EXIT_USAGE, as_json=as_json)
    roles: dict[str, str] = {}
    for item in role_models:
        role, sep, ref = item.partition("=")
        if not sep or not role.strip() or not ref.strip():
            fail(f"--role-model wants ROLE=PROVIDER:MODEL, not {item!r}", EXIT_USAGE, as_json=as_json)
        roles[role.strip()] = ref.strip()
    store = open_store_or_fail(as_json=as_json)
    sid = session_id_or_fail(store, session_id, as_json=as_json)
    stored = store.load(sid)
    if stored.summary.status == "running":
        fail(f"session {sid} is still running; fork it once it has ended", EXIT_USAGE, as_json=as_json)
    _continue(
        store,
        stored,
        as_json=as_json,
        on_budget=on_budget,
        budget_usd=budget_usd,
        at_chunk=at_chunk,
        feedback=list(feedback) if feedback else None,
        strategy=strategy,
        model=model,
        role_models=roles,
    )


def _continue(
    store: SessionStore, stored: StoredSession, *, as_json: bool, on_budget: str, **changes: Any
) -> None:
    from facilitair_tui.session import prepare_continuation

    try:
        prepared = prepare_continuation(stored, **changes)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_CONFIG, as_json=as_json)
    run_prepared(prepared, store, as_json=as_json, on_budget=on_budget)


@sessions_group.command(cls=OneLineUsageErrors, name="import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def import_recording(file: Path) -> None:
    """Store a recording kept as JSON Lines of events (e.g. one the store could not save)."""
    try:
        lines = file.read_bytes().splitlines()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE)
    events: list[ev.Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(ev.from_json(line))
        except ev.EventFormatError as exc:
            fail(f"{file}: line {number}: {exc}; nothing was imported", EXIT_USAGE)
    with opened_store() as store:
        try:
            sid = store.import_events(events)
        except StoreError as exc:
            fail(f"{file}: {exc}", EXIT_USAGE)  # the store says what, if anything, was kept
    err_console.print(f"imported session {sid} ({len(events)} events): facilitair sessions replay {sid[:12]}")
