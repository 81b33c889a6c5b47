"""What each model is asked: the agents' prompts and the synthesizer's.

Prompts are plain data built from the workflow, the task, the context and what happened so far;
nothing here calls a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .provider import ChatMessage
from .workflow import Chunk, Role, Workflow

# Prompts must fit small local contexts; longer material is cut from the front (older text),
# keeping the most recent part, which is what the next step builds on.
MAX_SECTION_CHARS = 6000


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A finished chunk as later prompts see it."""

    title: str
    text: str


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _context_lines(context: Mapping[str, str]) -> str:
    if not context:
        return "(none given)"
    return "\n".join(f"- {key}: {value}" for key, value in context.items())


def _header(task: str, context: Mapping[str, str], history: Sequence[ChunkRecord]) -> list[str]:
    parts = [f"Task: {_clip(task)}", f"Context:\n{_context_lines(context)}"]
    if history:
        done = "\n\n".join(f"{rec.title}:\n{_clip(rec.text, MAX_SECTION_CHARS // 2)}" for rec in history)
        parts.append(f"Agreed in earlier stages:\n{done}")
    return parts


def agent_messages(
    workflow: Workflow,
    role: Role,
    chunk: Chunk,
    *,
    task: str,
    context: Mapping[str, str],
    history: Sequence[ChunkRecord],
    upstream: Mapping[str, str],
    feedback: Sequence[str] = (),
    own_partial: str = "",
) -> tuple[ChatMessage, ...]:
    """The messages for one agent on one chunk.

    ``upstream`` maps each role this agent reads to that role's output so far (possibly
    partial: the upstream may still be writing). ``own_partial`` is this agent's text from an
    interrupted attempt, when user feedback restarted it.
    """
    parts = _header(task, context, history)
    parts.append(f"Current stage: {chunk.title}. {chunk.goal}")
    for name, text in upstream.items():
        if text.strip():
            who = workflow.role(name).display_name
            parts.append(f"The {who}'s notes so far (still being written):\n{_clip(text)}")
    if feedback:
        parts.append("The user's feedback (follow it):\n" + "\n".join(f"- {f}" for f in feedback))
    if own_partial.strip():
        parts.append(
            "Your answer so far, interrupted by that feedback:\n"
            f"{_clip(own_partial)}\n\nRevise it to follow the feedback."
        )
    parts.append(
        f"As the {role.display_name.lower()}, give your contribution to the {chunk.title.lower()} stage."
    )
    return (
        ChatMessage("system", role.system_prompt.strip()),
        ChatMessage("user", "\n\n".join(parts)),
    )


def synthesis_messages(
    workflow: Workflow,
    chunk: Chunk,
    *,
    task: str,
    context: Mapping[str, str],
    history: Sequence[ChunkRecord],
    outputs: Mapping[str, str],
    feedback: Sequence[str] = (),
) -> tuple[ChatMessage, ...]:
    parts = _header(task, context, history)
    parts.append(f"Stage to merge: {chunk.title}. {chunk.goal}")
    for name, text in outputs.items():
        parts.append(
            f"The {workflow.role(name).display_name} ({name}) wrote:\n{_clip(text) or '(no output)'}"
        )
    if feedback:
        parts.append("The user's feedback:\n" + "\n".join(f"- {f}" for f in feedback))
    parts.append("Merge these into one result for this stage, in the required format.")
    return (
        ChatMessage("system", workflow.synthesizer.system_prompt.strip()),
        ChatMessage("user", "\n\n".join(parts)),
    )
