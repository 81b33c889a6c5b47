"""End-to-end tests of the Rust extension ``facilitair_tui._native`` through its Python API."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from itertools import accumulate, pairwise
from typing import Any

import pytest

from facilitair_tui import _native as native
from facilitair_tui._native import StreamRouter, coalesce


def test_version_is_a_string() -> None:
    assert isinstance(native.__version__, str)
    assert native.__version__.count(".") >= 2


def test_unknown_agent_is_empty() -> None:
    router = StreamRouter()
    assert router.text("architect") == ""
    assert router.count("architect") == 0
    assert router.total() == 0
    assert router.agents() == []
    assert router.snapshot() == {}
    assert router.pending() == 0
    assert router.drain() == []
    assert router.due_in() is None


def test_push_counts_per_agent() -> None:
    router = StreamRouter()
    assert router.push("architect", "Plan")
    router.push("architect", ": ")
    router.push("coder", "def")
    router.push("architect", "go")
    assert router.count("architect") == 3
    assert router.count("coder") == 1
    assert router.total() == 4
    assert router.text("architect") == "Plan: go"
    assert router.text("coder") == "def"


def test_empty_delta_is_ignored() -> None:
    router = StreamRouter()
    assert router.push("architect", "")
    assert router.agents() == []
    assert router.total() == 0
    assert router.next_seq() == 0
    router.push("architect", "a")
    router.push("architect", "")
    assert router.count("architect") == 1
    assert router.total() == 1
    assert router.pending() == 1


def test_multibyte_text_is_preserved_exactly() -> None:
    router = StreamRouter()
    parts = ["日本語", "🦀", "👩‍💻", "e\u0301", " ok ", "Ω≈ç√"]
    for part in parts:
        router.push("coder", part)
    assert router.text("coder") == "".join(parts)
    assert router.count("coder") == len(parts)
    router.push("日本", "語")
    assert router.snapshot() == {"coder": "".join(parts), "日本": "語"}
    assert [(a, text) for a, text, *_ in router.drain()] == [("coder", "".join(parts)), ("日本", "語")]


def test_first_seen_order() -> None:
    router = StreamRouter()
    for agent in ["reviewer", "architect", "reviewer", "coder", "architect"]:
        router.push(agent, "x")
    assert router.agents() == ["reviewer", "architect", "coder"]
    snap = router.snapshot()
    assert list(snap) == ["reviewer", "architect", "coder"]
    assert snap == {"reviewer": "xx", "architect": "xx", "coder": "x"}


def test_reset_forgets_one_agent() -> None:
    router = StreamRouter()
    router.push("architect", "a1")
    router.push("coder", "c1")
    router.push("coder", "c2")
    router.reset("coder")
    assert router.text("coder") == ""
    assert router.count("coder") == 0
    assert router.total() == 1
    assert router.text("architect") == "a1"
    assert router.agents() == ["architect", "coder"]
    router.push("coder", "new")
    assert router.count("coder") == 1
    assert router.text("coder") == "new"
    router.reset("nobody")  # never seen: nothing happens
    assert router.total() == 2
    # What was written before the reset is still delivered.
    assert [text for _, text, *_ in router.drain()] == ["a1", "c1c2new"]


def test_clear_forgets_transcripts_and_keeps_pending_deltas() -> None:
    router = StreamRouter()
    router.push("architect", "a")
    router.push("coder", "c")
    router.clear()
    assert router.agents() == []
    assert router.total() == 0
    assert router.snapshot() == {}
    assert router.pending() == 2
    router.push("coder", "C")
    router.push("architect", "A")
    assert router.agents() == ["coder", "architect"]
    assert [(a, text) for a, text, *_ in router.drain()] == [
        ("architect", "a"),
        ("coder", "cC"),
        ("architect", "A"),
    ]


def test_repr() -> None:
    router = StreamRouter()
    router.push("architect", "a")
    router.push("coder", "c")
    router.hold()
    router.push("coder", "c")
    assert repr(router) == "StreamRouter(agents=2, total=3, pending=3, held=True)"


def test_reader_gets_partial_upstream_text() -> None:
    router = StreamRouter()
    seen: str | None = None
    for i, delta in enumerate(["The ", "plan ", "is ", "ready"]):
        router.push("architect", delta)
        if router.count("architect") == 3:
            seen = router.text("architect")
        assert router.count("architect") == i + 1
    assert seen == "The plan is "


def test_text_since_is_what_a_reader_has_not_seen() -> None:
    router = StreamRouter()
    router.push("architect", "日本語 ")
    seen = router.text("architect")
    router.push("architect", "🦀 done")
    assert router.text_since("architect", len(seen)) == "🦀 done"
    assert router.text_since("architect", 0) == router.text("architect")
    assert router.text_since("architect", 100) == ""
    assert router.text_since("nobody", 0) == ""


def test_drain_merges_runs_in_push_order_with_seq_count_and_t() -> None:
    router = StreamRouter()
    for i, (agent, text) in enumerate([("a", "1"), ("a", "2"), ("b", "3"), ("a", "4")]):
        router.push(agent, text, t=10.0 + i)
    assert router.drain() == [("a", "12", 0, 2, 10.0), ("b", "3", 2, 1, 12.0), ("a", "4", 3, 1, 13.0)]
    assert router.pending() == 0
    assert router.drain() == []


def test_timestamps_never_go_back() -> None:
    router = StreamRouter()
    router.push("a", "1", t=5.0)
    router.push("b", "2", t=4.0)
    router.push("a", "3")  # the router's own clock, seconds since it was made: far below 5
    assert [t for *_, t in router.drain()] == [5.0, 5.0, 5.0]


def test_own_clock_is_monotonic() -> None:
    router = StreamRouter()
    for i in range(200):
        router.push("abc"[i % 3], "x")
    times = [t for *_, t in router.drain()]
    assert len(times) == 200
    assert times == sorted(times)
    assert times[0] >= 0.0


def test_drain_stops_at_a_barrier() -> None:
    router = StreamRouter()
    router.push("a", "before")
    barrier = router.next_seq()
    router.push("a", "after")
    assert [text for _, text, *_ in router.drain(barrier)] == ["before"]
    assert router.drain(barrier) == []
    assert [text for _, text, *_ in router.drain()] == ["after"]


def test_hold_loses_nothing_and_release_delivers_in_order() -> None:
    router = StreamRouter()
    router.push("a", "before")
    router.hold()
    assert router.held()
    router.push("b", "during")
    router.push("a", "later")
    assert [text for _, text, *_ in router.drain()] == ["before"]
    assert router.drain() == []
    assert router.due_in() is None
    assert router.pending() == 2
    router.release()
    assert not router.held()
    assert [(a, text) for a, text, *_ in router.drain()] == [("b", "during"), ("a", "later")]


def test_push_says_when_the_producer_must_wait() -> None:
    router = StreamRouter(capacity=2)
    assert router.capacity == 2
    assert router.push("a", "1")
    assert not router.push("b", "2")
    assert not router.has_room()
    assert not router.push("a", "3"), "never refused, but still full"
    assert router.pending() == 3
    router.drain()
    assert router.has_room()


def test_frame_policy_interval_and_delta_count() -> None:
    router = StreamRouter(frame_s=0.016, frame_deltas=3)
    assert router.frame_policy == (0.016, 3)
    router.push("a", "x")
    assert router.due_in(now=1.0) == 0.0  # nothing drained yet: at once
    router.drain(now=1.0)
    router.push("a", "y")
    wait = router.due_in(now=1.004)
    assert wait is not None
    assert wait == pytest.approx(0.012)
    assert router.due_in(now=1.02) == 0.0
    router.push("b", "z")
    router.push("a", "w")
    assert router.due_in(now=1.004) == 0.0  # three waiting: due before the interval


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity must be at least 1"),
        ({"frame_s": -0.5}, "frame_s must be a finite number"),
        ({"frame_s": float("inf")}, "frame_s must be a finite number"),
        ({"frame_s": float("nan")}, "frame_s must be a finite number"),
        ({"frame_deltas": 0}, "frame_deltas must be at least 1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        StreamRouter(**kwargs)


def test_large_drain_releases_the_gil_and_loses_nothing() -> None:
    router = StreamRouter(capacity=100_000)
    agents = ["architect", "coder", "reviewer"]
    deltas = [(agents[(i // 7) % 3], f"{i},") for i in range(10_000)]
    for agent, text in deltas:
        router.push(agent, text)
    frames = router.drain()
    assert "".join(text for _, text, *_ in frames) == "".join(text for _, text in deltas)
    assert sum(count for *_, count, _ in frames) == len(deltas)
    assert all(a1 != a2 for (a1, *_), (a2, *_) in pairwise(frames))


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, to interleave calls."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_thread_switching")
def test_concurrent_pushes_and_drains_from_threads() -> None:
    router = StreamRouter(capacity=1_000_000)
    agents = [f"agent{i}" for i in range(4)]
    per_agent = 1000
    barrier = threading.Barrier(len(agents) + 1)
    errors: list[BaseException] = []
    drained: list[tuple[str, str, int, int, float]] = []

    def work(agent: str) -> None:
        try:
            barrier.wait()
            for i in range(per_agent):
                router.push(agent, f"{i % 10}")
                assert router.count(agent) == i + 1
        except BaseException as exc:
            errors.append(exc)

    def drain_while_pushed() -> None:
        barrier.wait()
        while any(t.is_alive() for t in threads):
            drained.extend(router.drain())

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    drain_while_pushed()
    for t in threads:
        t.join()
    drained.extend(router.drain())

    assert errors == []
    for agent in agents:
        assert router.count(agent) == per_agent
        assert router.text(agent) == "0123456789" * (per_agent // 10)
        assert "".join(text for a, text, *_ in drained if a == agent) == router.text(agent)
    assert router.total() == per_agent * len(agents)
    assert sorted(router.agents()) == agents
    # Drained in push order: sequence numbers without a gap.
    seqs = [seq for _, _, seq, _, _ in drained]
    counts = [count for *_, count, _ in drained]
    assert seqs == list(accumulate(counts, initial=0))[:-1]


def test_coalesce_empty_list() -> None:
    assert coalesce([]) == []


def test_coalesce_merges_runs_without_reordering() -> None:
    deltas = [("a", "1"), ("a", "2"), ("b", "3"), ("a", "4"), ("a", "5"), ("c", "6"), ("b", "7")]
    assert coalesce(deltas) == [("a", "12"), ("b", "3"), ("a", "45"), ("c", "6"), ("b", "7")]


def test_coalesce_respects_max_chars_in_characters() -> None:
    deltas = [("a", "ab"), ("a", "cd"), ("a", "e"), ("a", "fg"), ("b", "x")]
    assert coalesce(deltas, 3) == [("a", "ab"), ("a", "cde"), ("a", "fg"), ("b", "x")]
    # Limits count characters (as len() does), not UTF-8 bytes.
    assert coalesce([("a", "日本語"), ("a", "日本語"), ("a", "🦀")], max_chars=6) == [
        ("a", "日本語日本語"),
        ("a", "🦀"),
    ]


def test_coalesce_oversized_delta_is_its_own_frame() -> None:
    deltas = [("a", "x"), ("a", "0123456789"), ("a", "y"), ("a", "z")]
    assert coalesce(deltas, max_chars=4) == [("a", "x"), ("a", "0123456789"), ("a", "yz")]


def test_coalesce_drops_empty_deltas() -> None:
    assert coalesce([("a", "1"), ("b", ""), ("a", "2")]) == [("a", "12")]


@pytest.mark.parametrize("bad", [0, -1])
def test_coalesce_rejects_max_chars_below_one(bad: int) -> None:
    with pytest.raises(ValueError, match="max_chars"):
        coalesce([("a", "x")], max_chars=bad)
    with pytest.raises(ValueError):
        coalesce([], bad)


def test_coalesce_long_list_preserves_everything() -> None:
    # Long enough to take the path that releases the GIL.
    agents = ["architect", "coder", "reviewer"]
    deltas = [(agents[(i // 7) % 3], f"{i},") for i in range(10_000)]
    frames = coalesce(deltas, max_chars=50)
    assert all(len(text) <= 50 for _, text in frames)
    assert "".join(text for _, text in frames) == "".join(text for _, text in deltas)
    for agent in agents:
        assert "".join(t for a, t in frames if a == agent) == "".join(t for a, t in deltas if a == agent)
    # Greedy: a frame is only cut short when the next delta of its agent would not fit.
    for (a1, t1), (a2, t2) in pairwise(frames):
        if a1 == a2:
            assert len(t1) + len(t2) > 50
