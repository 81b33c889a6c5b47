"""``--out DIR``: a session's deliverable written as files (``collaborate``, ``sessions export``).

The directory is checked before anything runs, so a ``collaborate`` run is never paid for and
then refused; the files are written once the session has ended, from its syntheses. A session
that ended early writes what it has, and its README says it is incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.markup import escape

from facilitair_tui.cli.options import fail
from facilitair_tui.command_line import EXIT_USAGE, err_console
from facilitair_tui.core import events as ev
from facilitair_tui.core.deliverable import build_deliverable
from facilitair_tui.core.session_result import (
    SessionResult,
    Stage,
    agent_titles,
    result_from_events,
    stages_of,
)
from facilitair_tui.core.workflow import Workflow
from facilitair_tui.deliverable_files import DeliverableWriteError, check_target, write_deliverable
from facilitair_tui.store import SessionStore, StoredSession


def check_out_dir(out: Path, *, force: bool, as_json: bool = False) -> None:
    """Fail now, in one line, when ``out`` could not take the files."""
    try:
        check_target(out, force=force)
    except DeliverableWriteError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)


def write_out(
    result: SessionResult, out: Path, *, force: bool, as_json: bool = False, then: str = ""
) -> None:
    """Write ``result``'s deliverable under ``out`` and say what was written; ``then``: what the
    user can do when it fails (the session is recorded either way)."""
    deliverable = build_deliverable(result)
    try:
        written = write_deliverable(deliverable.files, out, force=force)
    except DeliverableWriteError as exc:
        fail(f"{exc}{then}", EXIT_USAGE, as_json=as_json)
    names = ", ".join(str(path.relative_to(out)) for path in written)
    state = "" if deliverable.complete else f" (the session {result.status}: its README says what is missing)"
    count = f"{len(written)} file" + ("" if len(written) == 1 else "s")
    err_console.print(f"wrote {count} to {escape(str(out))}{escape(state)}: {escape(names)}", soft_wrap=True)


def writer_for(
    workflow: Workflow, out: Path, *, force: bool, as_json: bool
) -> Callable[[Sequence[ev.Event]], None]:
    """What ``run_prepared`` calls with a session's kept events once it has ended."""

    def write(events: Sequence[ev.Event]) -> None:
        result = result_from_events(events, workflow)
        if result is None:
            return  # it never started: nothing to write
        then = f"; the session is recorded: facilitair sessions export {result.session_id[:12]} --out DIR"
        write_out(result, out, force=force, as_json=as_json, then=then)

    return write


def stored_result(store: SessionStore, stored: StoredSession) -> SessionResult:
    """A recorded session as its deliverable needs it, even when its workflow no longer loads."""
    summary = stored.summary
    workflow = stored.workflow
    titles = {number: title for number, title, _status in store.chunks(summary.id)}
    if workflow is not None:
        stages = stages_of(workflow)
        role_titles = agent_titles(workflow)
    else:
        total = max(summary.chunks_total, len(titles))
        stages = [Stage(n, titles.get(n, f"Chunk {n}")) for n in range(1, total + 1)]
        role_titles = {}
    return SessionResult(
        task=summary.task,
        context=stored.context,
        stages=stages,
        syntheses=stored.syntheses,
        status=summary.status,
        session_id=summary.id,
        workflow=workflow.name if workflow is not None else "",
        models=stored.models,
        role_titles=role_titles,
    )
