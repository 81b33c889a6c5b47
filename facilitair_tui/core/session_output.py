"""What a session hands back at its end: the output document and the ``session_finished`` event.

The document is every finished chunk's synthesis under its title; a session that ends before
its last chunk also shows what each agent had written of the interrupted one, marked unfinished,
so nothing the user paid for is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import events as ev
from .agent_call import AgentResult
from .cost import add_costs
from .prompts import ChunkRecord
from .workflow import Workflow


def agent_titles(workflow: Workflow) -> dict[str, str]:
    """Role and synthesizer names -> the titles the user reads."""
    titles = {r.name: r.display_name for r in workflow.roles}
    titles[workflow.synthesizer.name] = workflow.synthesizer.title
    return titles


def output_document(
    workflow: Workflow,
    history: Sequence[ChunkRecord],
    *,
    unfinished: Mapping[str, str] | None = None,
    chunk: int = 0,
) -> str:
    """``unfinished``: each agent's partial text of chunk ``chunk`` (1-based), interrupted."""
    parts = [f"## {rec.title}\n\n{rec.text.strip()}" for rec in history]
    if unfinished is not None and any(text.strip() for text in unfinished.values()):
        titles = agent_titles(workflow)
        body = "\n\n".join(
            f"### {titles.get(name, name)} (unfinished)\n\n{text.strip()}"
            for name, text in unfinished.items()
            if text.strip()
        )
        chunk_title = workflow.chunks[max(chunk, 1) - 1].title
        parts.append(f"## {chunk_title} (interrupted)\n\n{body}")
    return "\n\n".join(parts)


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
        cost_usd=add_costs(r.cost_usd for r in results),
        duration_s=duration_s,
    )
