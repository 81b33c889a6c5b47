"""The semantic cache's store: what it keeps, for how long, and how it survives bad data.

Real parts throughout: the real embedder (all-MiniLM-L6-v2), the native index, diskcache on a
real SQLite file, and other processes started with the real interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import diskcache  # type: ignore[import-untyped]
import pytest

from facilitair_tui.cache import CacheError, CacheSettings, SemanticCache, profile_of
from facilitair_tui.cache.store import INDEX_FILE
from facilitair_tui.core import events as ev
from facilitair_tui.native import Embedder

TASK = "Write a command-line tool that renames photos by the date they were taken"
CONTEXT = {"language": "Go", "team_size": "small", "existing_stack": ["GitHub", "Docker"]}
DAY = 86_400.0


@pytest.fixture
def embedder(minilm: Embedder) -> Embedder:
    return minilm


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, embedder: Embedder, clock: Clock) -> Iterator[SemanticCache]:
    with SemanticCache.open(tmp_path / "cache", embedder=embedder, clock=clock) as opened:
        yield opened


def reopen(cache: SemanticCache, embedder: Embedder, clock: Clock, **options: object) -> SemanticCache:
    cache.close()
    return SemanticCache.open(cache.directory, embedder=embedder, clock=clock, **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- put and lookup


def test_a_stored_solution_is_served_with_what_matched(cache: SemanticCache) -> None:
    synthesis = ev.Synthesis(
        session_id="s1", chunk=1, agreed=["use exif"], debated=[], confidence=0.9, text="Read EXIF dates."
    )
    entry_id = cache.put(
        TASK,
        CONTEXT,
        "# The tool\n...",
        cost_usd=0.042,
        duration_s=31.5,
        syntheses=[synthesis],
        chunks=["Plan"],
    )
    match = cache.lookup(TASK, CONTEXT)
    assert match is not None
    assert match.entry_id == entry_id
    assert match.output == "# The tool\n..."
    assert match.similarity == pytest.approx(1.0, abs=1e-4)
    assert "language" in match.matched_on and "team size" in match.matched_on
    assert [s.text for s in match.syntheses] == ["Read EXIF dates."]
    assert match.chunks == ["Plan"]
    assert match.solution.cost_usd == 0.042


def test_context_matches_up_to_case_whitespace_and_list_order(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "out")
    same = {"Language": " go ", "team size": "Small", "existing_stack": "docker,  github"}
    assert profile_of(same) == profile_of(CONTEXT)
    assert cache.lookup(TASK, same) is not None


@pytest.mark.parametrize(
    "change",
    [
        {"language": "Rust"},
        {"team_size": "500"},
        {"existing_stack": ["GitHub", "Docker", "Kubernetes"]},
        {"compliance": ["HIPAA"]},
    ],
)
def test_any_other_context_misses_and_says_which_field(
    cache: SemanticCache, change: dict[str, object]
) -> None:
    cache.put(TASK, CONTEXT, "out")
    decision = cache.explain(TASK, {**CONTEXT, **change})
    assert not decision.hit and decision.match is None
    assert decision.kind == "context"
    assert next(iter(change)) in decision.reason


def test_ignored_context_fields_do_not_count(tmp_path: Path, embedder: Embedder, clock: Clock) -> None:
    settings = CacheSettings(ignore_context=("deadline",))
    with SemanticCache.open(tmp_path, settings=settings, embedder=embedder, clock=clock) as cache:
        cache.put(TASK, {**CONTEXT, "deadline": "friday"}, "out")
        assert cache.lookup(TASK, {**CONTEXT, "deadline": "next month"}) is not None


def test_an_unrelated_task_misses(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "out")
    assert cache.lookup("Set up a Postgres read replica with streaming replication", CONTEXT) is None


def test_the_same_task_again_replaces_its_entry(cache: SemanticCache) -> None:
    first = cache.put(TASK, CONTEXT, "old answer")
    second = cache.put(f"  {TASK} ", CONTEXT, "new answer")
    assert first == second
    assert [s.output for s in cache.list()] == ["new answer"]


def test_put_refuses_what_could_not_be_read_back(cache: SemanticCache) -> None:
    with pytest.raises(ValueError, match="cannot cache"):
        cache.put(TASK, CONTEXT, "out", cost_usd="a lot")
    with pytest.raises(ValueError, match="empty"):
        cache.put("   ", CONTEXT, "out")
    assert cache.list() == []


# ----------------------------------------------------------------------------- TTL, size, statistics


def test_entries_expire_and_a_hit_does_not_keep_them_alive(
    tmp_path: Path, embedder: Embedder, clock: Clock
) -> None:
    with SemanticCache.open(tmp_path, embedder=embedder, clock=clock) as cache:
        cache.put(TASK, CONTEXT, "out")
        clock.now += 6.9 * DAY
        assert cache.lookup(TASK, CONTEXT) is not None  # a hit near the end of its life...
        clock.now += 0.2 * DAY
        assert cache.lookup(TASK, CONTEXT) is None  # ...does not extend it
        assert cache.list() == [] and cache.stats().entries == 0


def test_the_ttl_is_configurable(tmp_path: Path, embedder: Embedder, clock: Clock) -> None:
    with SemanticCache.open(
        tmp_path, settings=CacheSettings(ttl_s=60), embedder=embedder, clock=clock
    ) as cache:
        cache.put(TASK, CONTEXT, "out")
        clock.now += 61
        assert cache.lookup(TASK, CONTEXT) is None


def test_the_size_limit_evicts_the_oldest_entries(tmp_path: Path, embedder: Embedder, clock: Clock) -> None:
    settings = CacheSettings(size_limit_bytes=2_000_000)
    with SemanticCache.open(tmp_path, settings=settings, embedder=embedder, clock=clock) as cache:
        tasks = [f"Write migration number {i} for the orders table" for i in range(40)]
        for task in tasks:
            cache.put(task, CONTEXT, "x" * 100_000)  # 4 MB in all, twice the limit
        kept = {s.task for s in cache.list()}
        assert 0 < len(kept) < len(tasks)
        assert tasks[-1] in kept and tasks[0] not in kept
        # An evicted entry is never served, even though the index still knew it.
        assert cache.lookup(tasks[0], CONTEXT) is None


def test_statistics_count_lookups_hits_and_savings(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "out", cost_usd=0.25, duration_s=40.0)
    cache.lookup(TASK, CONTEXT)
    cache.lookup(TASK, CONTEXT)
    cache.lookup("Something else entirely: a haiku generator", CONTEXT)
    cache.explain(TASK, CONTEXT)  # a question, not a use: not counted
    stats = cache.stats()
    assert (stats.entries, stats.lookups, stats.hits) == (1, 3, 2)
    assert stats.hit_rate == pytest.approx(2 / 3)
    assert stats.saved_usd == pytest.approx(0.5) and stats.saved_s == pytest.approx(80.0)
    (solution,) = cache.list()
    assert solution.hits == 2 and solution.saved_usd == pytest.approx(0.5)


def test_browse_resolve_delete_and_clear(cache: SemanticCache) -> None:
    a = cache.put(TASK, CONTEXT, "out")
    b = cache.put("Add dark mode to the settings page", {"language": "TypeScript"}, "css")
    assert [s.id for s in cache.list("typescript")] == [b]
    assert [s.id for s in cache.list("photos")] == [a]
    assert cache.resolve(a[:5]) == [a]
    assert cache.delete(a) and not cache.delete(a)
    assert cache.lookup(TASK, CONTEXT) is None
    assert cache.clear() == 1
    assert cache.list() == [] and cache.stats().lookups == 0


# ----------------------------------------------------------------------------- robustness


def test_the_index_survives_reopening_and_is_rebuilt_when_missing_or_corrupt(
    cache: SemanticCache, embedder: Embedder, clock: Clock
) -> None:
    cache.put(TASK, CONTEXT, "out")
    cache = reopen(cache, embedder, clock)
    assert cache.lookup(TASK, CONTEXT) is not None and cache.warnings == []

    (cache.directory / INDEX_FILE).write_bytes(b"not an index at all")
    cache = reopen(cache, embedder, clock)
    assert cache.lookup(TASK, CONTEXT) is not None
    assert any("rebuilding" in w for w in cache.warnings)

    (cache.directory / INDEX_FILE).unlink()
    cache = reopen(cache, embedder, clock)
    assert cache.lookup(TASK, CONTEXT) is not None
    cache.close()


@pytest.mark.parametrize("garbage", [b"{not json", b'{"format": 99}', "a plain string", 12345])
def test_a_broken_entry_is_skipped_with_a_warning_never_served(cache: SemanticCache, garbage: object) -> None:
    entry_id = cache.put(TASK, CONTEXT, "out")
    with diskcache.Cache(str(cache.directory)) as raw:
        raw.set(f"entry:{entry_id}", garbage)
    decision = cache.explain(TASK, CONTEXT)
    assert not decision.hit
    assert any(entry_id in w and "skipped" in w for w in decision.warnings)
    assert cache.list() == []


def test_an_entry_from_a_newer_version_is_not_served(cache: SemanticCache) -> None:
    entry_id = cache.put(TASK, CONTEXT, "out")
    with diskcache.Cache(str(cache.directory)) as raw:
        record = raw.get(f"entry:{entry_id}")
        raw.set(f"entry:{entry_id}", record.replace(b'"format":1', b'"format":2'))
    assert cache.lookup(TASK, CONTEXT) is None
    assert any("newer Facilitair" in w for w in cache.warnings)


def test_another_embedding_model_is_not_searched(
    cache: SemanticCache, embedder: Embedder, clock: Clock
) -> None:
    cache.put(TASK, CONTEXT, "out")
    other = reopen(cache, embedder, clock, embedder_name="some-other-model")
    try:
        assert other.lookup(TASK, CONTEXT) is None
        assert any("another model" in w for w in other.warnings)
        other.put(TASK, CONTEXT, "out again")  # and it can still store with its own
        assert other.lookup(TASK, CONTEXT) is not None
    finally:
        other.close()


def test_a_damaged_database_is_a_clear_error(tmp_path: Path, embedder: Embedder) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(CacheError, match="facilitair cache clear"):
        SemanticCache.open(directory, embedder=embedder)


def test_a_full_disk_fails_the_put_with_a_clear_error_and_keeps_the_rest(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "out")
    # SQLite's own "database or disk is full": no page beyond those already used.
    db = cache._db
    pages = db._sql("PRAGMA page_count").fetchone()[0]
    db._sql(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(CacheError, match="full"):
        cache.put("Another task that needs a lot of room", CONTEXT, "y" * 200_000)
    assert cache.lookup(TASK, CONTEXT) is not None


def test_two_processes_share_one_cache(cache: SemanticCache, clock: Clock) -> None:
    clock.now = time.time()  # the other process stamps its entry with the real time
    assert cache.lookup(TASK, CONTEXT) is None  # this process has its index loaded
    script = (
        "import sys\n"
        "from facilitair_tui.cache import SemanticCache\n"
        "from facilitair_tui.native import Embedder\n"
        "with SemanticCache.open(sys.argv[1], embedder=Embedder.load(threads=1)) as cache:\n"
        "    cache.put(sys.argv[2], {'language': 'go', 'team_size': 'small',"
        " 'existing_stack': 'docker, github'}, 'from the other process')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(cache.directory), TASK], check=True, timeout=120)
    match = cache.lookup(TASK, CONTEXT)
    assert match is not None and match.output == "from the other process"


# ------------------------------------------------------------------- what an entry answers (issue 18)

QWEN = {"architect": "local:qwen2.5-coder-1.5b", "coder": "local:qwen2.5-coder-1.5b"}
SMOL = {"architect": "local:smollm2-135m", "coder": "local:smollm2-135m"}


def test_an_answer_from_other_models_is_offered_never_served(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "written by SmolLM2", models=SMOL)
    offered = cache.lookup(TASK, CONTEXT, models=QWEN)
    assert offered is not None and offered.decision == "offer"
    assert "written by other models (local:smollm2-135m)" in offered.matched_on
    served = cache.lookup(TASK, CONTEXT, models=SMOL)
    assert served is not None and served.decision == "serve"


def test_another_workflow_s_answer_is_offered_never_served(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "a tested function", workflow="code")
    offered = cache.lookup(TASK, CONTEXT)
    assert offered is not None and offered.decision == "offer" and "code workflow" in offered.matched_on


def test_a_steered_answer_is_its_own_entry_and_is_never_served_to_a_plain_run(cache: SemanticCache) -> None:
    plain = cache.put(TASK, CONTEXT, "the plain answer")
    steered = cache.put(TASK, CONTEXT, "the PostgreSQL answer", feedback=["use PostgreSQL"])
    again = cache.put(TASK, CONTEXT, "another PostgreSQL answer", feedback=["use PostgreSQL"])
    assert len({plain, steered, again}) == 3  # a steered run never replaces another entry
    served = cache.lookup(TASK, CONTEXT)
    assert served is not None and (served.entry_id, served.decision) == (plain, "serve")
    assert served.output == "the plain answer"
    # a plain run replaces only the plain entry
    assert cache.put(TASK, CONTEXT, "a newer plain answer") == plain


def test_only_a_steered_entry_is_offered_with_its_feedback(cache: SemanticCache) -> None:
    cache.put(TASK, CONTEXT, "the PostgreSQL answer", feedback=["use PostgreSQL"])
    offered = cache.lookup(TASK, CONTEXT)
    assert offered is not None and offered.decision == "offer"
    assert "steered by feedback: “use PostgreSQL”" in offered.matched_on


def test_a_rewrite_is_offered_and_the_user_s_answers_are_counted(cache: SemanticCache) -> None:
    entry = cache.put(TASK, CONTEXT, "the photo renamer")
    offered = cache.lookup("I need a CLI that gives each photo a name from the date it was shot", CONTEXT)
    assert offered is not None and (offered.entry_id, offered.decision) == (entry, "offer")
    decision = cache.explain(
        "Write a command-line tool which renames photos by the date they were taken.", CONTEXT
    )
    assert decision.hit and decision.decision == "serve"
    cache.answered(entry, accepted=True)
    cache.answered(entry, accepted=False)
    stats = cache.stats()
    assert (stats.lookups, stats.offers, stats.accepted, stats.declined) == (1, 1, 1, 1)
    assert stats.hits == 1  # the accepted offer
    assert stats.as_dict()["accepted"] == 1
