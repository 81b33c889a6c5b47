"""``facilitair sessions export ID``: a recorded session as one document (Markdown), as
everything recorded (JSON), or, with ``--out DIR``, as files: its code, its tests and a README.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from facilitair_tui.cli.headless import opened_store, session_id_or_fail
from facilitair_tui.cli.options import OneLineUsageErrors, fail, write_export
from facilitair_tui.cli.out_dir import check_out_dir, stored_result, write_out
from facilitair_tui.command_line import EXIT_USAGE, err_console
from facilitair_tui.core import events as ev
from facilitair_tui.core.session_output import interrupted_section, session_document
from facilitair_tui.library import SessionSummary, branch_label
from facilitair_tui.store import SessionStore
from facilitair_tui.summaries import clock, finished_summary, money


def summary_dict(s: SessionSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": s.status,
        "task": s.task,
        "started_at": s.started_at.isoformat(),
        "cost_usd": s.cost_usd,
        "duration_s": s.duration_s,
        "chunks_done": s.chunks_done,
        "chunks_total": s.chunks_total,
        "resumable": s.resumable,
        "parent_id": s.parent_id,
        "reused_chunks": s.reused_chunks,
        "change": s.change,
    }


def session_record(store: SessionStore, sid: str, *, events: bool) -> dict[str, Any]:
    """A session as plain data: its summary and settings, chunks, agent executions (and events)."""
    stored = store.load(sid)
    syntheses = {s.chunk: ev.to_dict(s) for s in stored.syntheses}
    session = {
        **summary_dict(stored.summary),
        "context": stored.context,
        "strategy": stored.strategy,
        "models": stored.models,
        "settings": stored.spec,
        "workflow": stored.workflow.name if stored.workflow else None,
        "output": stored.output,
    }
    record: dict[str, Any] = {
        "session": session,
        "chunks": [
            {"chunk": number, "title": title, "status": status, "synthesis": syntheses.get(number)}
            for number, title, status in store.chunks(sid)
        ],
        "executions": store.executions(sid),
        "feedback": [ev.to_dict(f) for f in stored.feedback],
    }
    if events:
        record["events"] = [ev.to_dict(e) for e in store.events(sid)]
    return record


@click.command(cls=OneLineUsageErrors, name="export")
@click.argument("session_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE, not stdout."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Write the session's files instead: its code, its tests and a README.",
)
@click.option("--force", is_flag=True, help="Overwrite FILE, or the files in DIR, when they exist.")
@click.pass_context
def export(
    ctx: click.Context, session_id: str, fmt: str, output: Path | None, out_dir: Path | None, force: bool
) -> None:
    """The session as Markdown (its final output, as the TUI shows it), JSON (everything), or,
    with --out, as files: the code as named files, the tests and a README."""
    if out_dir is not None:
        if output is not None:
            fail("-o writes one file and --out a directory of files; give one of them", EXIT_USAGE)
        if ctx.get_parameter_source("fmt") is not click.core.ParameterSource.DEFAULT:
            fail("--format is for the one-document export; --out writes the files and a README", EXIT_USAGE)
        check_out_dir(out_dir, force=force)
    with opened_store() as store:
        sid = session_id_or_fail(store, session_id)
        if out_dir is not None:
            write_out(stored_result(store, store.load(sid)), out_dir, force=force)
            return
        if fmt == "json":
            text = json.dumps(session_record(store, sid, events=True), ensure_ascii=False, indent=2) + "\n"
        else:
            text = markdown(store, sid)
    if output is None:
        sys.stdout.write(text)
        return
    write_export(output, text.encode("utf-8"), force=force)
    err_console.print(f"wrote {escape(str(output))}")


def markdown(store: SessionStore, sid: str) -> str:
    """The session's document under the closing line, as the TUI's final output shows it; a
    session that never finished gets its finished chunks and what was streamed of the one it
    stopped in."""
    stored = store.load(sid)
    s = stored.summary
    result = stored_result(store, stored)
    finished = store.finished(sid)
    if finished is not None:
        closing = f"_{finished_summary(finished)}_"
    else:
        closing = f"_Collaboration {s.status}: {clock(s.duration_s)}, {money(s.cost_usd)}_"
    details = [f"Session `{s.id}`", f"started {s.started_at.isoformat(timespec='seconds')}", stored.strategy]
    if s.parent_id:
        details.append(branch_label(s))
    interrupted = ""
    unfinished = len(stored.syntheses) + 1
    titles = {number: title for number, title, _ in store.chunks(sid)}
    if s.status != "done" and unfinished in titles:
        partial = store.partial_text(sid, unfinished)
        interrupted = interrupted_section(titles[unfinished], partial, result.role_titles)
    return session_document(result, notes=[closing, " · ".join(details)], interrupted=interrupted)
