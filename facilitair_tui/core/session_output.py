"""What a session hands back at its end: the output document and the ``session_finished`` event.

The document is the session's deliverable (``deliverable``): the agreed requirements and design,
the code as named files, the tests and the review's open points. A session that ends before its
last chunk also shows what each agent had written of the interrupted one, marked unfinished, so
nothing the user paid for is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import events as ev
from .agent_call import AgentResult
from .cost import add_costs
from .deliverable import build_deliverable
from .session_result import SessionResult, agent_titles, shown_as, stages_of
from .workflow import Workflow

__all__ = ["agent_titles", "finished_event", "interrupted_section", "output_document", "session_document"]


def interrupted_section(chunk_title: str, unfinished: Mapping[str, str], titles: Mapping[str, str]) -> str:
    """What each agent had written of an interrupted chunk, marked unfinished ("" for nothing)."""
    body = "\n\n".join(
        f"### {titles.get(name, name.capitalize())} (unfinished)\n\n{text.strip()}"
        for name, text in unfinished.items()
        if text.strip()
    )
    return f"## {chunk_title} (interrupted)\n\n{body}" if body else ""


def session_document(result: SessionResult, *, notes: Sequence[str] = (), interrupted: str = "") -> str:
    """The deliverable's document, then the interrupted chunk's unfinished texts, if any."""
    document = build_deliverable(result, notes=notes).document
    return f"{document.rstrip()}\n\n{interrupted.strip()}\n" if interrupted.strip() else document


def output_document(
    workflow: Workflow,
    task: str,
    context: Mapping[str, str],
    syntheses: Sequence[ev.Synthesis],
    *,
    status: ev.SessionStatus,
    shown_titles: Sequence[str] = (),
    unfinished: Mapping[str, str] | None = None,
    chunk: int = 0,
) -> str:
    """The closing event's output; "" when the session produced nothing at all.

    ``shown_titles``: the titles the finished chunks were shown under (a cached solution's may
    not be the workflow's). ``unfinished``: each agent's partial text of chunk ``chunk``
    (1-based), interrupted."""
    interrupted = ""
    if unfinished is not None:
        title = workflow.chunks[max(chunk, 1) - 1].title
        interrupted = interrupted_section(title, unfinished, agent_titles(workflow))
    if not syntheses and not interrupted:
        return ""
    result = SessionResult(
        task=task,
        context=context,
        stages=shown_as(stages_of(workflow), dict(enumerate(shown_titles, start=1))),
        syntheses=syntheses,
        status=status,
        workflow=workflow.name,
        role_titles=agent_titles(workflow),
    )
    return session_document(result, interrupted=interrupted)


def finished_event(
    session_id: str,
    status: ev.SessionStatus,
    output: str,
    duration_s: float,
    results: Sequence[AgentResult] | None,
) -> ev.SessionFinished:
    """``results``: every model call's, or None for a session served from the cache (no call)."""
    if results is None:
        return ev.SessionFinished(
            session_id=session_id,
            status=status,
            output=output,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            duration_s=duration_s,
            from_cache=True,
        )
    return ev.SessionFinished(
        session_id=session_id,
        status=status,
        output=output,
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cached_input_tokens=sum(r.cached_input_tokens for r in results),
        cost_usd=add_costs(r.cost_usd for r in results),
        duration_s=duration_s,
    )
