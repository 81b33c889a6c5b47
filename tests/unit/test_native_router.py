"""End-to-end tests of the Rust extension ``facilitair_tui._native`` through its Python API."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from itertools import pairwise

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


def test_append_returns_per_agent_count() -> None:
    router = StreamRouter()
    assert router.append("architect", "Plan") == 1
    assert router.append("architect", ": ") == 2
    assert router.append("coder", "def") == 1
    assert router.append("architect", "go") == 3
    assert router.count("architect") == 3
    assert router.count("coder") == 1
    assert router.total() == 4
    assert router.text("architect") == "Plan: go"
    assert router.text("coder") == "def"


def test_empty_delta_is_ignored() -> None:
    router = StreamRouter()
    assert router.append("architect", "") == 0
    assert router.agents() == []
    assert router.total() == 0
    router.append("architect", "a")
    assert router.append("architect", "") == 1
    assert router.count("architect") == 1
    assert router.total() == 1


def test_multibyte_text_is_preserved_exactly() -> None:
    router = StreamRouter()
    parts = ["日本語", "🦀", "👩‍💻", "e\u0301", " ok ", "Ω≈ç√"]
    for part in parts:
        router.append("coder", part)
    assert router.text("coder") == "".join(parts)
    assert router.count("coder") == len(parts)
    router.append("日本", "語")
    assert router.snapshot() == {"coder": "".join(parts), "日本": "語"}


def test_first_seen_order() -> None:
    router = StreamRouter()
    for agent in ["reviewer", "architect", "reviewer", "coder", "architect"]:
        router.append(agent, "x")
    assert router.agents() == ["reviewer", "architect", "coder"]
    snap = router.snapshot()
    assert list(snap) == ["reviewer", "architect", "coder"]
    assert snap == {"reviewer": "xx", "architect": "xx", "coder": "x"}


def test_reset_forgets_one_agent() -> None:
    router = StreamRouter()
    router.append("architect", "a1")
    router.append("coder", "c1")
    router.append("coder", "c2")
    router.reset("coder")
    assert router.text("coder") == ""
    assert router.count("coder") == 0
    assert router.total() == 1
    assert router.text("architect") == "a1"
    assert router.agents() == ["architect", "coder"]
    assert router.append("coder", "new") == 1
    assert router.text("coder") == "new"
    router.reset("nobody")  # never seen: nothing happens
    assert router.total() == 2


def test_clear_forgets_everything() -> None:
    router = StreamRouter()
    router.append("architect", "a")
    router.append("coder", "c")
    router.clear()
    assert router.agents() == []
    assert router.total() == 0
    assert router.snapshot() == {}
    router.append("coder", "c")
    router.append("architect", "a")
    assert router.agents() == ["coder", "architect"]


def test_repr() -> None:
    router = StreamRouter()
    router.append("architect", "a")
    router.append("coder", "c")
    router.append("coder", "c")
    assert repr(router) == "StreamRouter(agents=2, total=3)"


def test_reader_gets_partial_upstream_text() -> None:
    router = StreamRouter()
    seen: str | None = None
    for i, delta in enumerate(["The ", "plan ", "is ", "ready"]):
        if router.append("architect", delta) == 3:
            seen = router.text("architect")
        assert router.count("architect") == i + 1
    assert seen == "The plan is "


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
def test_concurrent_appends_from_four_threads() -> None:
    router = StreamRouter()
    agents = [f"agent{i}" for i in range(4)]
    per_agent = 1000
    barrier = threading.Barrier(len(agents))
    errors: list[BaseException] = []

    def work(agent: str) -> None:
        try:
            barrier.wait()
            for i in range(per_agent):
                assert router.append(agent, f"{i % 10}") == i + 1
                router.total()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    for agent in agents:
        assert router.count(agent) == per_agent
        assert router.text(agent) == "0123456789" * (per_agent // 10)
    assert router.total() == per_agent * len(agents)
    assert sorted(router.agents()) == agents


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
