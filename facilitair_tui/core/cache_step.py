"""A collaboration's two moments with the solution cache: asked before any agent starts, and
handed the session when it finishes ``done``.

The cache only saves work: when it cannot be read or written the session goes on without it,
and an ``error`` event says what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from . import events as ev
from .cache import CachedAnswer, CacheMiss, SolutionCache, SolvedSession
from .provider import ModelRef
from .session_spec import SessionSpec


class CacheStep:
    """The cache as one session sees it; events go out through ``emit``."""

    def __init__(
        self, cache: SolutionCache, spec: SessionSpec, session_id: str, emit: Callable[[ev.Event], None]
    ) -> None:
        self._cache = cache
        self._spec = spec
        self._session_id = session_id
        self._emit = emit

    async def ask(self) -> CachedAnswer | None:
        """Ask the cache before any agent starts; emit ``cache_checked`` with its answer."""
        sid = self._session_id
        try:
            answer = await asyncio.to_thread(self._cache.check, self._spec.task, self._spec.context)
        except Exception as exc:  # the cache only saves work: a broken one never stops a run
            self._emit(
                ev.Error(session_id=sid, message=f"the cache could not be read ({exc}); running without it")
            )
            return None
        for note in answer.notes:
            self._emit(ev.Error(session_id=sid, message=f"cache: {note}"))
        if isinstance(answer, CacheMiss):
            self._emit(
                ev.CacheChecked(
                    session_id=sid,
                    hit=False,
                    entry_id=answer.entry_id,
                    similarity=answer.similarity,
                    matched_on=answer.reason,
                )
            )
            return None
        self._emit(
            ev.CacheChecked(
                session_id=sid,
                hit=True,
                entry_id=answer.entry_id,
                similarity=answer.similarity,
                matched_on=answer.matched_on,
                saved_usd=answer.cost_usd,
                saved_s=answer.duration_s,
                age_s=answer.age_s,
                imported=answer.imported,
                context=dict(answer.context),
            )
        )
        return answer

    async def remember(
        self, final: ev.SessionFinished, syntheses: Sequence[ev.Synthesis], models: Mapping[str, ModelRef]
    ) -> None:
        """Store a session that finished ``done``; ``models`` are the ones it ended on."""
        spec = self._spec
        solved = SolvedSession(
            task=spec.task,
            context=dict(spec.context),
            output=final.output,
            chunks=[c.title for c in spec.workflow.chunks],
            syntheses=list(syntheses),
            models={name: str(ref) for name, ref in models.items()},
            strategy=spec.strategy,
            workflow=spec.workflow.name,
            cost_usd=final.cost_usd,
            duration_s=final.duration_s,
            input_tokens=final.input_tokens,
            output_tokens=final.output_tokens,
            session_id=self._session_id,
        )
        try:
            await asyncio.to_thread(self._cache.remember, solved)
        except Exception as exc:  # the answer is already the user's; only the copy is lost
            self._emit(ev.Error(session_id=self._session_id, message=f"the solution was not cached: {exc}"))
