"""What the engine asks of a solution cache, and nothing more.

Before any agent starts, the collaboration asks the cache whether this task in this context was
solved before. On a hit it plays the cached solution through the same events as a live run; on a
miss it runs, and a session that finishes ``done`` is handed to the cache to remember. The
semantic cache (``facilitair_tui/cache``) implements this Protocol; the core never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from . import events as ev


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


@dataclass(frozen=True)
class CacheMiss:
    """No stored solution fits; ``reason`` says why (the nearest entry and what differs, if any)."""

    reason: str
    entry_id: str | None = None
    similarity: float | None = None
    notes: tuple[str, ...] = ()


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


class SolutionCache(Protocol):
    def check(self, task: str, context: Mapping[str, str]) -> CachedAnswer | CacheMiss:
        """Look up without side effects other than hit statistics. May block briefly (an
        embedding, an index search); the engine calls it from a worker thread."""
        ...

    def remember(self, solved: SolvedSession) -> str:
        """Store a finished session's solution; returns the entry id."""
        ...
