"""The engine and the cache: asked before any agent, a hit played without a model call, a done
session stored, and a cache that fails never stopping a run. Scripted models, an in-memory
``SolutionCache`` written for these tests (the real store has its own tests), and the real one
once, end to end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from facilitair_tui.cache import SemanticCache
from facilitair_tui.config import Settings
from facilitair_tui.core import events as ev
from facilitair_tui.core.cache import Answerer, CachedAnswer, CacheMiss, SolutionCache, SolvedSession
from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ConfigurationError
from facilitair_tui.embedded_models import MINILM
from facilitair_tui.native import Embedder
from facilitair_tui.providers.scripted import Reply, ScriptedProvider, SingleProviderResolver
from facilitair_tui.session import cache_settings, open_cache
from tests.conftest import link_model
from tests.unit.test_orchestrator import SYNTH, TASK, WORKFLOW, Script, of_type, run

ANSWER_SYNTHESES = [
    ev.Synthesis(
        session_id="old", chunk=i, agreed=[f"point {i}"], debated=[], confidence=0.9, text=f"Chunk {i}."
    )
    for i in (1, 2)
]


def answer(**changes: object) -> CachedAnswer:
    fields: dict[str, object] = {
        "entry_id": "e1",
        "similarity": 0.93,
        "matched_on": "same task, worded differently (cosine 0.93); same language",
        "output": "## One\n\nChunk 1.\n\n## Two\n\nChunk 2.",
        "chunks": ["One", "Two"],
        "syntheses": ANSWER_SYNTHESES,
        "context": {"language": "Python"},
        "models": {"architect": "openai:gpt-4o"},
        "cost_usd": 0.31,
        "duration_s": 95.0,
        "age_s": 7200.0,
    }
    return CachedAnswer(**{**fields, **changes})  # type: ignore[arg-type]


class FakeCache:
    """A SolutionCache that answers what it is told and records what it was given."""

    def __init__(self, reply: CachedAnswer | CacheMiss | Exception) -> None:
        self.reply = reply
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.answerers: list[Answerer] = []
        self.answers: list[tuple[str, bool]] = []
        self.stored: list[SolvedSession] = []
        self.fail_store: Exception | None = None

    def check(self, task: str, context: Mapping[str, str], answerer: Answerer) -> CachedAnswer | CacheMiss:
        self.asked.append((task, dict(context)))
        self.answerers.append(answerer)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def answered(self, entry_id: str, accepted: bool) -> None:
        self.answers.append((entry_id, accepted))

    def remember(self, solved: SolvedSession) -> str:
        if self.fail_store is not None:
            raise self.fail_store
        self.stored.append(solved)
        return "new-entry"


def collaboration(
    cache: SolutionCache | None, *, pace_s: float = 0.0, script: Script | None = None
) -> tuple[Collaboration, ScriptedProvider]:
    provider = ScriptedProvider(script or Script())
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", context={"language": "Python"})
    collab = Collaboration(
        spec, SingleProviderResolver(provider), retry=NO_RETRY, cache=cache, cache_pace_s=pace_s
    )
    return collab, provider


async def test_a_hit_is_played_through_the_usual_events_without_a_model_call() -> None:
    cache = FakeCache(answer())
    collab, provider = collaboration(cache)
    events = await run(collab)
    assert provider.calls == []
    assert cache.asked == [(TASK, {"language": "Python"})]
    assert [type(e) for e in events] == [
        ev.SessionStarted,
        ev.CacheChecked,
        *[ev.ChunkStarted, ev.Synthesis] * 2,
        ev.SessionFinished,
    ]
    (checked,) = of_type(events, ev.CacheChecked)
    assert checked.hit and checked.entry_id == "e1" and checked.similarity == 0.93
    assert (checked.saved_usd, checked.saved_s, checked.age_s) == (0.31, 95.0, 7200.0)
    assert checked.context == {"language": "Python"}
    assert [(c.chunk, c.title, c.total) for c in of_type(events, ev.ChunkStarted)] == [
        (1, "One", 2),
        (2, "Two", 2),
    ]
    syntheses = of_type(events, ev.Synthesis)
    assert [s.text for s in syntheses] == ["Chunk 1.", "Chunk 2."]
    assert all(s.session_id == collab.session_id for s in syntheses)
    final = events[-1]
    assert isinstance(final, ev.SessionFinished)
    assert final.from_cache and final.status == "done" and final.output == answer().output
    assert (final.cost_usd, final.input_tokens, final.output_tokens) == (0.0, 0, 0)
    assert cache.stored == []  # a served answer is not stored again
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_a_miss_says_why_then_runs_and_a_done_session_is_stored() -> None:
    cache = FakeCache(CacheMiss("the numbers differ: 5 vs 500", entry_id="e9", similarity=0.97))
    collab, provider = collaboration(cache)
    events = await run(collab)
    (checked,) = of_type(events, ev.CacheChecked)
    assert (
        not checked.hit and checked.matched_on == "the numbers differ: 5 vs 500" and checked.entry_id == "e9"
    )
    assert events.index(checked) == 1 and provider.calls
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done" and not final.from_cache
    (stored,) = cache.stored
    assert stored.task == TASK and stored.context == {"language": "Python"} and stored.output == final.output
    assert [s.text for s in stored.syntheses] == [s.text for s in of_type(events, ev.Synthesis)]
    assert stored.chunks == [c.title for c in WORKFLOW.chunks]
    assert stored.cost_usd == final.cost_usd and stored.duration_s == final.duration_s


async def test_a_stopped_session_is_not_stored() -> None:
    cache = FakeCache(CacheMiss("empty"))
    collab, _ = collaboration(cache)

    def stop_at_first_token(event: ev.Event) -> None:
        if isinstance(event, ev.Token):
            collab.stop()

    events = await run(collab, stop_at_first_token)
    assert isinstance(events[-1], ev.SessionFinished) and events[-1].status == "stopped"
    assert cache.stored == []


async def test_a_cache_that_fails_never_stops_the_run() -> None:
    cache = FakeCache(OSError("disk I/O error"))
    cache.fail_store = RuntimeError("database is locked")
    collab, provider = collaboration(cache)
    events = await run(collab)
    errors = [e.message for e in of_type(events, ev.Error)]
    assert any("could not be read (disk I/O error); running without it" in m for m in errors)
    assert any("was not cached: database is locked" in m for m in errors)
    assert all(e.recoverable for e in of_type(events, ev.Error))
    assert provider.calls and events[-1].status == "done"  # type: ignore[attr-defined]


async def test_a_paced_hit_can_be_paused_and_stopped() -> None:
    cache = FakeCache(answer())
    collab, provider = collaboration(cache, pace_s=0.05)
    seen: list[ev.Event] = []

    def steer(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.Synthesis) and event.chunk == 1:
            collab.stop()

    events = await run(collab, steer)
    assert provider.calls == []
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "stopped" and final.from_cache
    assert [s.chunk for s in of_type(events, ev.Synthesis)] == [1]
    # The document of what was served before the stop, under the cached chunk's own title.
    assert "\n## One\n" in final.output and "Chunk 1." in final.output
    assert "**Incomplete:** the session was stopped after 1 of 4 stages (One)" in final.output


async def test_without_a_cache_nothing_is_asked() -> None:
    collab, _ = collaboration(None)
    events = await run(collab)
    assert not of_type(events, ev.CacheChecked)


# ------------------------------------------------------------------------------ settings


def test_cache_settings_come_from_the_config_file() -> None:
    settings = Settings.model_validate(
        {"cache": {"ttl_days": 2, "size_limit_mb": 10, "ignore_context": ["deadline"],
                   "thresholds": {"paraphrase_min": 0.7, "max_synonym_spans": 1}}}
    )  # fmt: skip
    cache = cache_settings(settings)
    assert cache.ttl_s == 2 * 86_400 and cache.size_limit_bytes == 10 * 1024 * 1024
    assert cache.ignore_context == ("deadline",)
    assert cache.match.paraphrase_min == 0.7 and cache.match.max_synonym_spans == 1


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [({"paraphrse_min": 0.7}, "unknown paraphrse_min"), ({"max_synonym_spans": 1.5}, "whole number")],
)
def test_a_wrong_threshold_is_a_clear_error(thresholds: dict[str, float], message: str) -> None:
    settings = Settings.model_validate({"cache": {"thresholds": thresholds}})
    with pytest.raises(ConfigurationError, match=message):
        cache_settings(settings)


def test_a_damaged_cache_becomes_a_note_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link_model(MINILM, tmp_path, monkeypatch)
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    directory = tmp_path / "data" / "cache"
    directory.mkdir(parents=True)
    (directory / "cache.db").write_bytes(b"garbage" * 500)
    notes: list[str] = []
    assert open_cache(Settings(), notes) is None
    (note,) = notes
    assert "running without the cache" in note and "facilitair cache clear" in note


def test_without_the_embedding_model_the_note_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    notes: list[str] = []
    assert open_cache(Settings(), notes) is None
    assert notes == [
        "running without the cache: its embedding model is not installed (run: facilitair models install)"
    ]


async def test_the_real_cache_end_to_end(tmp_path: Path, minilm: Embedder) -> None:
    with SemanticCache.open(tmp_path / "cache", embedder=minilm) as cache:
        first, provider = collaboration(cache)
        done = (await run(first))[-1]
        second, again = collaboration(cache)
        events = await run(second)
    assert provider.calls and again.calls == []
    final = events[-1]
    assert isinstance(done, ev.SessionFinished) and isinstance(final, ev.SessionFinished)
    assert final.from_cache and final.output == done.output


@pytest.mark.parametrize("cut", ["max_tokens", "failed"])
async def test_a_session_whose_synthesis_was_cut_or_missing_is_not_stored(cut: str) -> None:
    cache = FakeCache(CacheMiss("empty"))
    script = Script()
    whole = script.reply(SYNTH, 2)
    if cut == "max_tokens":  # the synthesis of chunk 2 stops mid-sentence at max_tokens
        script.replies[SYNTH, 2] = Reply(whole.deltas[:-1], stop_reason="max_tokens")
    else:
        script.replies[SYNTH, 2] = Reply(whole.deltas, fail_after=1)
    collab, _ = collaboration(cache, script=script)
    events = await run(collab)
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.status == "done"
    assert cache.stored == []  # never served again: it is known to be incomplete
    [note] = [e for e in of_type(events, ev.Error) if "not cached" in e.message]
    assert "chunk 2" in note.message
    synth = [e for e in of_type(events, ev.AgentFinished) if e.agent == SYNTH]
    if cut == "max_tokens":
        assert [e.stop_reason for e in synth] == ["end", "max_tokens"] + ["end"] * (len(synth) - 2)
        assert "cut at max tokens" in note.message
    else:
        assert "synthesizer failed" in note.message


# ------------------------------------------------------------------------------ offers (issue 18)


class Chooser:
    """A ChooseOffer that answers as told and keeps what it was shown."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.shown: list[CachedAnswer] = []

    async def __call__(self, task: str, offered: CachedAnswer) -> bool:
        assert task == TASK
        self.shown.append(offered)
        return self.accept


def offering(cache: SolutionCache, chooser: Chooser | None) -> tuple[Collaboration, ScriptedProvider]:
    provider = ScriptedProvider(Script())
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", context={"language": "Python"})
    collab = Collaboration(
        spec, SingleProviderResolver(provider), retry=NO_RETRY, cache=cache, choose_offer=chooser
    )
    return collab, provider


OFFER = answer(decision="offer", task="Make a link shortener", matched_on="maybe the same task (cosine 0.81)")


async def test_an_offer_the_user_takes_is_played_and_kept_as_accepted() -> None:
    cache, chooser = FakeCache(OFFER), Chooser(accept=True)
    collab, provider = offering(cache, chooser)
    events = await run(collab)
    assert provider.calls == [] and chooser.shown == [OFFER]
    (checked,) = of_type(events, ev.CacheChecked)
    assert (checked.hit, checked.decision, checked.task) == (True, "offer", "Make a link shortener")
    assert checked.saved_usd == 0.31
    assert cache.answers == [("e1", True)]
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and final.from_cache and cache.stored == []


async def test_an_offer_the_user_declines_runs_fresh_and_is_kept_as_declined() -> None:
    cache, chooser = FakeCache(OFFER), Chooser(accept=False)
    collab, provider = offering(cache, chooser)
    events = await run(collab)
    (checked,) = of_type(events, ev.CacheChecked)
    assert (checked.hit, checked.decision, checked.saved_usd) == (False, "offer", None)
    assert provider.calls and cache.answers == [("e1", False)]
    final = events[-1]
    assert isinstance(final, ev.SessionFinished) and not final.from_cache and len(cache.stored) == 1


async def test_without_anyone_to_ask_an_offer_is_a_miss() -> None:
    cache = FakeCache(OFFER)
    collab, provider = offering(cache, None)
    events = await run(collab)
    (checked,) = of_type(events, ev.CacheChecked)
    assert not checked.hit and checked.decision == "offer" and provider.calls and cache.answers == []


async def test_the_cache_is_asked_for_what_is_about_to_run() -> None:
    cache = FakeCache(CacheMiss("empty"))
    collab, _ = offering(cache, None)
    await run(collab)
    (asking,) = cache.answerers
    assert asking.workflow == WORKFLOW.name and asking.feedback == ()
    assert asking.models == {name: str(ref) for name, ref in collab.models.items()}


async def test_a_steered_session_is_stored_with_its_feedback() -> None:
    cache = FakeCache(CacheMiss("empty"))
    collab, _ = offering(cache, None)

    def steer(event: ev.Event) -> None:
        if isinstance(event, ev.ChunkStarted) and event.chunk == 1:
            collab.inject_feedback("use PostgreSQL")

    await run(collab, steer)
    (stored,) = cache.stored
    assert stored.feedback == ("use PostgreSQL",)


async def test_a_session_whose_agent_was_cut_is_not_stored() -> None:
    cache = FakeCache(CacheMiss("empty"))
    script = Script(replies={("coder", 2): Reply(["half an ans"], stop_reason="max_tokens")})
    collab, _ = collaboration(cache, script=script)
    events = await run(collab)
    assert events[-1].status == "done"  # type: ignore[attr-defined]
    assert cache.stored == []
    assert any("not cached" in e.message and "chunk 2" in e.message for e in of_type(events, ev.Error))


async def test_a_session_whose_agent_failed_is_not_stored() -> None:
    cache = FakeCache(CacheMiss("empty"))
    script = Script(replies={("reviewer", 1): Reply(["A"], fail_after=1)})
    collab, _ = collaboration(cache, script=script)
    events = await run(collab)
    assert cache.stored == []
    assert any("not cached" in e.message and "failed" in e.message for e in of_type(events, ev.Error))
