"""What the engine asks of a solution cache, and nothing more.

Before any agent starts, the collaboration asks the cache whether this task in this context was
solved before, by the workflow and models about to run (the ``Answerer``). The cache answers in
one of three ways:

* *serve*: the request is proven the same as a cached one; the cached solution is played through
  the same events as a live run, and no model is called;
* *offer*: a cached solution is close but not proven the same (other words, other models, steered
  by feedback). Only the user can say it answers the request: the session asks its ``ChooseOffer``
  and plays the solution if the user takes it, else runs. Without one, an offer is a miss;
* *miss*: the session runs, and one that finishes ``done`` with nothing cut or failed is handed to
  the cache to remember.

The semantic cache (``facilitair_tui/cache``) implements this Protocol; the core never imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from . import events as ev

DEFAULT_WORKFLOW = "default"

CacheDecision = Literal["serve", "offer"]


@dataclass(frozen=True)
class Answerer:
    """What writes (or wrote) an answer: the workflow, the model of each role, and the feedback
    that steered it. A cached answer is served only to a request its own answerer would run; one
    from another answerer may be offered, never served."""

    workflow: str = DEFAULT_WORKFLOW
    # Role -> model reference ("local:qwen2.5-coder-0.5b"); empty: the default strategy's models.
    models: Mapping[str, str] = field(default_factory=dict)
    # The feedback that steered the run, and what a fork changed; empty for a plain run.
    feedback: tuple[str, ...] = ()

    def differences(self, other: Answerer) -> list[str]:
        """How ``other`` (a cached answer's) differs from this one (the request's), in words."""
        found = []
        if other.workflow != self.workflow:
            found.append(f"made by the {other.workflow} workflow, not {self.workflow}")
        if dict(other.models) != dict(self.models):
            theirs = sorted(set(other.models.values()) - set(self.models.values()))
            shown = f" ({', '.join(theirs)})" if theirs else " (another role mapping)"
            found.append("written by other models" + shown)
        if other.feedback != self.feedback:
            if other.feedback:
                found.append("steered by feedback: " + "; ".join(f"“{text}”" for text in other.feedback))
            else:
                found.append("not steered by this session's feedback")
        return found


@dataclass(frozen=True)
class CachedAnswer:
    """A stored solution that matches the request, and why it does."""

    entry_id: str
    similarity: float
    matched_on: str  # one sentence: what matched and how
    output: str
    chunks: list[str]  # the original run's chunk titles
    syntheses: list[ev.Synthesis]
    context: dict[str, str]  # as the original run was given it
    models: dict[str, str]
    cost_usd: float | None  # of the original run (None: a price was unknown)
    duration_s: float
    age_s: float  # since it was made (an imported solution keeps its own age)
    imported: bool = False  # from a file (``facilitair cache import``), not a run on this machine
    notes: tuple[str, ...] = ()  # warnings met while looking (a skipped broken entry)
    # Served (proven the same request) or only offered (close; the user decides).
    decision: CacheDecision = "serve"
    task: str = ""  # the cached request's task, as it was asked (an offer shows it beside the new one)


@dataclass(frozen=True)
class CacheMiss:
    """No stored solution fits; ``reason`` says why (the nearest entry and what differs, if any)."""

    reason: str
    entry_id: str | None = None
    similarity: float | None = None
    notes: tuple[str, ...] = ()
    task: str = ""  # the nearest cached task turned down, if any


@dataclass(frozen=True)
class SolvedSession:
    """A session that finished ``done``: what the cache keeps of it."""

    task: str
    context: dict[str, str]
    output: str
    chunks: list[str]
    syntheses: list[ev.Synthesis]
    models: dict[str, str]
    strategy: str
    workflow: str
    cost_usd: float | None
    duration_s: float
    input_tokens: int
    output_tokens: int
    session_id: str
    # The feedback that steered it (and what a fork changed): its own entry, never served plainly.
    feedback: tuple[str, ...] = ()


#: Asked when the cache offers a solution, with the task as the user asked it: True uses the
#: offered solution, False runs the session fresh.
ChooseOffer = Callable[[str, CachedAnswer], Awaitable[bool]]


class SolutionCache(Protocol):
    def check(self, task: str, context: Mapping[str, str], answerer: Answerer) -> CachedAnswer | CacheMiss:
        """Look up without side effects other than statistics. May block briefly (an embedding,
        an index search); the engine calls it from a worker thread."""
        ...

    def answered(self, entry_id: str, accepted: bool) -> None:
        """The user's answer to an offer of ``entry_id`` (kept for the statistics)."""
        ...

    def remember(self, solved: SolvedSession) -> str:
        """Store a finished session's solution; returns the entry id."""
        ...
