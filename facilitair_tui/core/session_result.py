"""What a session produced, as far as its deliverable needs it: the task, the context, the
workflow's stages and the syntheses, and how the session ended.

A workflow of the user's own may name its chunks anything: a chunk is the requirements, the
design, the implementation or the review when its id (or else its title's first word) says so
(``PARTS``); a chunk of another kind is still shown, under its own title.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import events as ev
from .workflow import Workflow

# Words that mark a chunk as one of the parts the deliverable arranges (its id, or its title's first word).
PARTS: dict[str, frozenset[str]] = {
    "requirements": frozenset({"requirements", "requirement", "spec", "specification", "scope", "analysis"}),
    "design": frozenset({"architecture", "design"}),
    "implementation": frozenset({"implementation", "implement", "code", "coding", "build"}),
    "review": frozenset({"review", "qa", "audit"}),
}
# Statuses of a session whose deliverable is whole.
COMPLETE = "done"


@dataclass(frozen=True, slots=True)
class Stage:
    """A chunk of the workflow: its 1-based number, title and id (empty when unknown)."""

    number: int
    title: str
    id: str = ""

    @property
    def part(self) -> str | None:
        """ "requirements", "design", "implementation", "review", or None for another kind."""
        words = [w for w in re.split(r"[^a-z]+", self.id.lower()) if w]
        words += [w for w in re.split(r"[^a-z]+", self.title.lower()) if w][:1]
        for word in words:
            for part, markers in PARTS.items():
                if word in markers:
                    return part
        return None


def agent_titles(workflow: Workflow) -> dict[str, str]:
    """Role and synthesizer names -> the titles the user reads."""
    titles = {r.name: r.display_name for r in workflow.roles}
    if workflow.synthesizer is not None:
        titles[workflow.synthesizer.name] = workflow.synthesizer.title
    return titles


def stages_of(workflow: Workflow) -> list[Stage]:
    return [Stage(number, chunk.title, chunk.id) for number, chunk in enumerate(workflow.chunks, start=1)]


def shown_as(stages: Sequence[Stage], titles: Mapping[int, str]) -> list[Stage]:
    """``stages`` under the titles their chunks were shown with (chunk -> title); a chunk shown
    under another title than the workflow's (a cached solution's) keeps no id."""
    shown = list(stages)
    for chunk, title in sorted(titles.items()):
        index = chunk - 1
        if index < len(shown) and shown[index].title == title:
            continue
        if index < len(shown):
            shown[index] = Stage(chunk, title)
        elif index == len(shown):
            shown.append(Stage(chunk, title))
    return shown


@dataclass(frozen=True)
class SessionResult:
    """What a session produced, as far as the deliverable needs it."""

    task: str
    context: Mapping[str, str]
    stages: Sequence[Stage]
    syntheses: Sequence[ev.Synthesis]
    # "done", or how it ended early: "stopped", "failed", "interrupted" (its process died), "running".
    status: str = COMPLETE
    session_id: str = ""
    workflow: str = ""
    models: Mapping[str, str] = field(default_factory=dict)  # role -> "provider:model"
    role_titles: Mapping[str, str] = field(default_factory=dict)  # role -> the title users read

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def finished(self) -> list[tuple[Stage, ev.Synthesis]]:
        """Each synthesis with its stage, in chunk order (an unknown chunk gets a plain title)."""
        by_number = {stage.number: stage for stage in self.stages}
        ordered = sorted(self.syntheses, key=lambda s: s.chunk)
        return [(by_number.get(s.chunk) or Stage(s.chunk, f"Chunk {s.chunk}"), s) for s in ordered]


def result_from_events(events: Iterable[ev.Event], workflow: Workflow | None) -> SessionResult | None:
    """The result of a session from its events (``session_started``, the syntheses and, if it
    ended, ``session_finished``); None without ``session_started``."""
    started: ev.SessionStarted | None = None
    syntheses: dict[int, ev.Synthesis] = {}
    status = "running"
    for event in events:
        if isinstance(event, ev.SessionStarted):
            started = event
        elif isinstance(event, ev.Synthesis):
            syntheses[event.chunk] = event
        elif isinstance(event, ev.SessionFinished):
            status = event.status
    if started is None:
        return None
    if workflow is not None:
        stages = stages_of(workflow)
        titles = agent_titles(workflow)
    else:
        stages = [Stage(number, title) for number, title in enumerate(started.chunks, start=1)]
        titles = {}
    return SessionResult(
        task=started.task,
        context=dict(started.context),
        stages=stages,
        syntheses=list(syntheses.values()),
        status=status,
        session_id=started.session_id,
        workflow=started.workflow,
        models=dict(started.models),
        role_titles=titles,
    )
