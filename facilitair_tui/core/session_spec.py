"""What defines a collaboration before it runs: the task, the workflow, the models, and the
recorded session it may go on from. Checked when made, so a bad request fails before any model call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import events as ev
from .provider import ModelRef, UsageError
from .workflow import Workflow

MAX_TASK_CHARS = 200_000


@dataclass(frozen=True)
class Continuation:
    """A session that goes on from a recorded one: a resume, or a fork with something changed.

    The parent's first ``len(chunks)`` chunks are reused as they were recorded (their syntheses
    are the context of what follows, exactly as in the parent); only the chunks after them run.
    """

    parent_id: str
    # The parent's syntheses of chunks 1..N, in order.
    chunks: Sequence[ev.Synthesis]
    # Feedback for the chunks that run, by chunk number (the parent's pending feedback on a
    # resume; the new feedback on a fork that changes it).
    feedback: Mapping[int, Sequence[str]] = field(default_factory=dict)
    # What this branch changed, in words ("" for a resume).
    change: str = ""
    # The parent finished every chunk but not the session (it was killed or stopped in between):
    # all its chunks are reused and nothing runs; the new session only finishes it.
    finish_only: bool = False


@dataclass(frozen=True)
class SessionSpec:
    """Everything that defines a collaboration before it runs."""

    task: str
    workflow: Workflow
    strategy: str
    context: Mapping[str, str] = field(default_factory=dict)
    # Replaces the strategy's model for every role and the synthesizer (``--model``).
    model_override: ModelRef | None = None
    max_tokens: int | None = None
    read_after_tokens: int | None = None
    session_id: str | None = None
    # The model each role runs on when it is not the strategy's first choice (that one cannot
    # run here), and the models tried in turn when it keeps failing, by role name.
    role_models: Mapping[str, ModelRef] = field(default_factory=dict)
    fallbacks: Mapping[str, Sequence[ModelRef]] = field(default_factory=dict)
    continuation: Continuation | None = None

    def __post_init__(self) -> None:
        if not self.task.strip():
            raise UsageError("the task is empty; describe what the agents should build")
        if len(self.task) > MAX_TASK_CHARS:
            raise UsageError(
                f"the task is {len(self.task):,} characters; the limit is {MAX_TASK_CHARS:,}. "
                "Shorten it or put the details in a file the agents can be pointed to"
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        if self.continuation is not None:
            reused, total = len(self.continuation.chunks), len(self.workflow.chunks)
            if [s.chunk for s in self.continuation.chunks] != list(range(1, reused + 1)):
                raise UsageError("the reused chunks must be chunks 1 to N of the recorded session, in order")
            if reused > total or (reused == total and not self.continuation.finish_only):
                raise UsageError(
                    f"all {total} chunks of that session are done, so nothing would run; "
                    f"pick an earlier chunk (0 to {total - 1})"
                )
            late = [c for c in self.continuation.feedback if not reused < c <= total]
            if late:
                raise UsageError(
                    f"feedback for chunk {late[0]} cannot apply: only chunks {reused + 1} to {total} run"
                )

    def models(self) -> dict[str, ModelRef]:
        if self.model_override is not None:
            names = self.workflow.member_names
            return dict.fromkeys(names, self.model_override)
        return {**self.workflow.models_for(self.strategy), **self.role_models}
