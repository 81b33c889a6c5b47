"""A collaboration's two moments with the solution cache: asked before any agent starts, and
handed the session when it finishes ``done``.

The cache is asked for what this session would run (its workflow, the models of its roles, and
the feedback a continuation brings), so an answer written by other models or steered by feedback
is at most offered. An offer goes to the user (``ChooseOffer``); without one it is a miss.

The cache only saves work: when it cannot be read or written the session goes on without it,
and an ``error`` event says what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from . import events as ev
from .cache import Answerer, CachedAnswer, CacheMiss, ChooseOffer, SolutionCache, SolvedSession
from .provider import ModelRef
from .session_spec import SessionSpec


class CacheStep:
    """The cache as one session sees it; events go out through ``emit``."""

    def __init__(
        self,
        cache: SolutionCache,
        spec: SessionSpec,
        session_id: str,
        emit: Callable[[ev.Event], None],
        *,
        models: Mapping[str, ModelRef],
        choose: ChooseOffer | None = None,
    ) -> None:
        self._cache = cache
        self._spec = spec
        self._session_id = session_id
        self._emit = emit
        self._choose = choose
        self._asking = Answerer(
            workflow=spec.workflow.name,
            models={name: str(ref) for name, ref in models.items()},
            feedback=steering(spec),
        )

    async def ask(self) -> CachedAnswer | None:
        """Ask the cache before any agent starts; put an offer to the user; emit ``cache_checked``
        with the outcome. Returns the solution to play, or None to run."""
        sid = self._session_id
        try:
            spec = self._spec
            began = time.perf_counter()
            answer = await asyncio.to_thread(self._cache.check, spec.task, spec.context, self._asking)
            lookup_ms = round((time.perf_counter() - began) * 1000, 3)
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
                    decision="miss",
                    task=answer.task,
                    lookup_ms=lookup_ms,
                )
            )
            return None
        taken = answer.decision == "serve" or await self._offer(answer)
        self._emit(
            ev.CacheChecked(
                session_id=sid,
                hit=taken,
                entry_id=answer.entry_id,
                similarity=answer.similarity,
                matched_on=answer.matched_on,
                saved_usd=answer.cost_usd if taken else None,
                saved_s=answer.duration_s if taken else None,
                age_s=answer.age_s,
                imported=answer.imported,
                context=dict(answer.context),
                decision=answer.decision,
                task=answer.task,
                lookup_ms=lookup_ms,
            )
        )
        return answer if taken else None

    async def _offer(self, answer: CachedAnswer) -> bool:
        """The user's choice on an offer (False without anyone to ask); kept by the cache."""
        if self._choose is None:
            return False
        accepted = bool(await self._choose(self._spec.task, answer))
        try:
            await asyncio.to_thread(self._cache.answered, answer.entry_id, accepted)
        except Exception as exc:  # only the statistics are lost
            note = f"cache: your answer to the offer was not kept ({exc})"
            self._emit(ev.Error(session_id=self._session_id, message=note))
        return accepted

    async def remember(
        self,
        final: ev.SessionFinished,
        syntheses: Sequence[ev.Synthesis],
        models: Mapping[str, ModelRef],
        feedback: Sequence[str] = (),
    ) -> None:
        """Store a session that finished ``done``; ``models`` are the ones it ended on and
        ``feedback`` what the user injected while it ran."""
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
            feedback=(*self._asking.feedback, *feedback),
        )
        try:
            await asyncio.to_thread(self._cache.remember, solved)
        except Exception as exc:  # the answer is already the user's; only the copy is lost
            self._emit(ev.Error(session_id=self._session_id, message=f"the solution was not cached: {exc}"))


def steering(spec: SessionSpec) -> tuple[str, ...]:
    """What steers a session before it starts: a continuation's feedback and a fork's change."""
    continuation = spec.continuation
    if continuation is None:
        return ()
    texts = [text.strip() for _, texts in sorted(continuation.feedback.items()) for text in texts]
    if continuation.change:
        texts.append(continuation.change)
    return tuple(t for t in texts if t)
