"""Behaviour of ``facilitair_tui.native.VectorIndex``: results against numpy brute force, edits,
namespaces, errors, files (round trip, damage of every kind, interrupted saves), approximate mode
and thread behaviour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from facilitair_tui import _native
from facilitair_tui.native import IndexFileError, VectorIndex

Matrix = npt.NDArray[np.float32]

# Scores of an exact search and of numpy's brute force differ only by float rounding.
TOLERANCE = 1e-5


def unit_rows(x: Matrix) -> Matrix:
    unit: Matrix = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def clustered(rng: np.random.Generator, n: int, dim: int, clusters: int, spread: float) -> Matrix:
    """Points around random centres, like embeddings of texts on a few topics."""
    centres = unit_rows(rng.standard_normal((clusters, dim), dtype=np.float32))
    labels = rng.integers(0, clusters, n)
    noise = rng.standard_normal((n, dim), dtype=np.float32) * (spread / np.sqrt(dim))
    return unit_rows(centres[labels] + noise)


def ids(n: int, prefix: str = "e") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def brute_force(data: Matrix, names: list[str], query: npt.ArrayLike, k: int) -> list[tuple[str, float]]:
    q = np.asarray(query, dtype=np.float32)
    scores = unit_rows(data) @ (q / np.linalg.norm(q))
    order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))[:k]
    return [(names[i], float(scores[i])) for i in order]


def assert_same_top_k(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    """Equal up to float rounding: same scores rank by rank, and the ids agree wherever the
    score is not tied (within rounding) with a neighbour."""
    assert len(got) == len(want)
    got_scores = [s for _, s in got]
    assert got_scores == sorted(got_scores, reverse=True)
    for rank, ((gid, gs), (wid, ws)) in enumerate(zip(got, want, strict=True)):
        assert gs == pytest.approx(ws, abs=TOLERANCE), (rank, got, want)
        near_tie = any(abs(ws - other) <= 2 * TOLERANCE for j, (_, other) in enumerate(want) if j != rank)
        if not near_tie:
            assert gid == wid, (rank, got, want)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


# ------------------------------------------------------------------------------ searching


def test_exact_search_matches_numpy_brute_force(rng: np.random.Generator) -> None:
    data = clustered(rng, 3000, 48, clusters=40, spread=1.0)
    names = ids(3000)
    index = VectorIndex(48)
    index.add(names, data)
    assert len(index) == 3000 and not index.approximate
    for i in range(40):
        query = data[i * 7] + 0.05 * rng.standard_normal(48)
        for k in (1, 10, 50):
            assert_same_top_k(
                index.search(query, k=k, min_similarity=-1.0), brute_force(data, names, query, k)
            )
    # Random queries, far from everything, too.
    for _ in range(10):
        query = rng.standard_normal(48)
        assert_same_top_k(index.search(query, k=10, min_similarity=-1.0), brute_force(data, names, query, 10))


def test_vectors_are_normalised_so_similarity_is_the_cosine() -> None:
    index = VectorIndex(2)
    index.add(["x", "diagonal"], [[10.0, 0.0], [3.0, 3.0]])
    (best, similarity), _ = index.search([0.0, 5.0], k=2)
    assert best == "diagonal"
    assert similarity == pytest.approx(np.sqrt(0.5), abs=1e-6)
    assert index.search([2.0, 0.0], k=1) == [("x", 1.0)]


def test_ties_come_in_id_order() -> None:
    index = VectorIndex(4)
    names = ["delta", "alpha", "charlie", "bravo"]
    index.add(names, np.tile([1.0, 2.0, 3.0, 4.0], (4, 1)))
    assert [i for i, _ in index.search([1.0, 2.0, 3.0, 4.0], k=3)] == ["alpha", "bravo", "charlie"]


def test_min_similarity_and_k_limit_the_results(rng: np.random.Generator) -> None:
    data = clustered(rng, 500, 16, clusters=5, spread=0.5)
    index = VectorIndex(16)
    index.add(ids(500), data)
    hits = index.search(data[0], k=500, min_similarity=0.9)
    assert hits and all(s >= 0.9 for _, s in hits)
    assert len(index.search(data[0], k=500, min_similarity=-1.0)) == 500
    assert len(index.search(data[0], k=3)) == 3
    assert index.search(data[0], k=5, min_similarity=1.5) == []
    assert VectorIndex(16).search(data[0]) == []


def test_namespaces_restrict_a_search(rng: np.random.Generator) -> None:
    data = clustered(rng, 300, 8, clusters=3, spread=0.5)
    index = VectorIndex(8)
    index.add(ids(100, "a"), data[:100], namespace="alpha")
    index.add(ids(100, "b"), data[100:200], namespace="beta")
    index.add(ids(100, "n"), data[200:])
    for namespace, prefix in (("alpha", "a"), ("beta", "b")):
        hits = index.search(data[250], k=100, min_similarity=-1.0, namespace=namespace)
        assert len(hits) == 100 and all(i.startswith(prefix) for i, _ in hits)
    assert len(index.search(data[0], k=300, min_similarity=-1.0)) == 300
    assert index.search(data[0], namespace="gamma") == []
    # Replacing an entry moves it to the new call's namespace.
    index.add(["a0"], data[0], namespace="beta")
    assert index.search(data[0], k=1, namespace="beta")[0][0] == "a0"
    assert "a0" not in [i for i, _ in index.search(data[0], k=100, namespace="alpha")]


def test_add_replaces_and_remove_counts(rng: np.random.Generator) -> None:
    index = VectorIndex(3)
    index.add(["a", "b", "c"], np.eye(3))
    assert len(index) == 3 and "b" in index and "z" not in index and 3 not in index
    index.add(["a"], [0.0, 0.0, 1.0])
    assert len(index) == 3
    assert [i for i, _ in index.search([0.0, 0.0, 1.0], k=2)] == ["a", "c"]
    assert index.remove(["b", "b", "missing"]) == 1
    assert len(index) == 2 and "b" not in index
    assert index.search([0.0, 1.0, 0.0], k=5, min_similarity=0.5) == []
    assert index.remove([]) == 0


def test_a_single_vector_for_a_single_id_and_empty_adds_are_fine() -> None:
    index = VectorIndex(2)
    index.add(["one"], np.array([1.0, 1.0]))
    index.add([], [])
    index.add([], np.zeros((0, 2)))
    assert len(index) == 1


@pytest.mark.parametrize(
    ("names", "vectors", "message"),
    [
        (["a", "b"], [[1.0, 0.0, 0.0]], "2 ids but 1 vectors"),
        (["a"], [[1.0, 0.0]], "shape"),
        (["a"], [[[1.0, 0.0, 0.0]]], "shape"),
        (["a", "a"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "more than once"),
        (["a", "b"], [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "all zeros"),
        (["a", "b"], [[1.0, 0.0, 0.0], [0.0, np.nan, 0.0]], "NaN"),
        (["a", "b"], [[np.inf, 0.0, 0.0], [0.0, 1.0, 0.0]], "infinite"),
    ],
)
def test_bad_adds_raise_value_error_and_change_nothing(
    names: list[str], vectors: object, message: str
) -> None:
    index = VectorIndex(3)
    index.add(["keep"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=message):
        index.add(names, vectors)  # type: ignore[arg-type]
    assert len(index) == 1 and "a" not in index


def test_bad_arguments_raise_clear_errors() -> None:
    index = VectorIndex(3)
    index.add(["a"], [1.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="not one string"):
        index.add("abc", [[1.0, 0.0, 0.0]] * 3)
    with pytest.raises(TypeError, match="not one string"):
        index.remove("a")
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search([1.0, 0.0, 0.0], k=0)
    with pytest.raises(ValueError, match="NaN"):
        index.search([1.0, 0.0, 0.0], min_similarity=float("nan"))
    with pytest.raises(ValueError, match="all zeros"):
        index.search([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search([np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="one vector of 3 values"):
        index.search([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="dim must be between 1 and 65536"):
        VectorIndex(0)
    with pytest.raises(ValueError, match="mode must be"):
        VectorIndex(3, mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nprobe"):
        index.nprobe = 0


# ------------------------------------------------------------------------ approximate mode


def test_approximate_mode_finds_near_duplicates_and_survives_edits(rng: np.random.Generator) -> None:
    dim = 64
    data = clustered(rng, 20_000, dim, clusters=300, spread=1.0)
    names = ids(20_000)
    index = VectorIndex(dim, mode="approximate")
    index.add(names, data)
    assert index.approximate and index.mode == "approximate"

    def recall_at_1(rows: list[int]) -> float:
        found = 0
        for i in rows:
            query = data[i] + 0.3 / np.sqrt(dim) * rng.standard_normal(dim)
            truth = index.search(query, k=1, exact=True)
            found += index.search(query, k=1) == truth
        return found / len(rows)

    assert recall_at_1(list(rng.integers(0, 20_000, 200))) >= 0.95

    # Edits keep working: removed entries are never found, added ones are.
    removed = names[:5000]
    assert index.remove(removed) == 5000
    fresh = clustered(rng, 2000, dim, clusters=20, spread=1.0)
    index.add(ids(2000, "new"), fresh, namespace="new")
    gone = set(removed)
    for i in range(0, 2000, 50):
        assert index.search(fresh[i], k=1, namespace="new")[0][0] == f"new{i}"
        assert not gone & {h for h, _ in index.search(data[i], k=20)}
    assert recall_at_1(list(rng.integers(5000, 20_000, 200))) >= 0.95


# ---------------------------------------------------------------------------------- files


@pytest.fixture
def saved(tmp_path: Path, rng: np.random.Generator) -> Iterator[tuple[Path, VectorIndex]]:
    index = VectorIndex(16, mode="approximate")
    index.add(ids(1500), clustered(rng, 1500, 16, clusters=20, spread=1.0), namespace="ns")
    index.add(ids(10, "plain"), clustered(rng, 10, 16, clusters=2, spread=1.0))
    path = tmp_path / "index.fvx"
    index.save(path)
    yield path, index


def test_save_and_load_round_trip(saved: tuple[Path, VectorIndex], rng: np.random.Generator) -> None:
    path, index = saved
    loaded = VectorIndex.load(path)
    assert len(loaded) == len(index) and loaded.dim == 16 and loaded.mode == "approximate"
    assert loaded.approximate == index.approximate and loaded.nprobe == index.nprobe
    for _ in range(20):
        query = rng.standard_normal(16)
        for namespace in (None, "ns"):
            assert loaded.search(query, k=10, namespace=namespace) == index.search(
                query, k=10, namespace=namespace
            )
    assert VectorIndex.load(str(path)).search(query) == loaded.search(query)
    assert sorted(os.listdir(path.parent)) == ["index.fvx"]


def damaged_copies(data: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    for length in (0, 5, 11, 30, len(data) // 2, len(data) - 1):
        yield f"truncated to {length} bytes", data[:length]
    for at in rng.integers(12, len(data), 20):
        flipped = bytearray(data)
        flipped[at] ^= 0x10
        yield f"bit flipped at {at}", bytes(flipped)
    yield "trailing junk", data + b"junk"
    yield "random bytes", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    yield "a text file", b"task,embedding\nhello,0.1 0.2\n"
    yield "a JSON file", b'{"entries": []}'
    other_version = bytearray(data)
    other_version[8:12] = (99).to_bytes(4, "little")
    yield "another format version", bytes(other_version)


def test_damaged_foreign_and_other_version_files_raise_index_file_error(
    saved: tuple[Path, VectorIndex], rng: np.random.Generator, tmp_path: Path
) -> None:
    path, _ = saved
    for what, content in damaged_copies(path.read_bytes(), rng):
        bad = tmp_path / "bad.fvx"
        bad.write_bytes(content)
        with pytest.raises(IndexFileError) as caught:
            VectorIndex.load(bad)
        message = str(caught.value)
        assert "rebuilt" in message, what
        assert any(word in message for word in ("corrupt", "foreign", "another version")), what
    assert issubclass(IndexFileError, ValueError)
    assert IndexFileError is _native.IndexFileError


def test_the_error_names_what_is_wrong(saved: tuple[Path, VectorIndex], tmp_path: Path) -> None:
    path, _ = saved
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "foreign": b"not an index at all",
        "another version": data[:8] + (7).to_bytes(4, "little") + data[12:],
    }
    for word, content in cases.items():
        bad = tmp_path / f"{word}.fvx"
        bad.write_bytes(content)
        with pytest.raises(IndexFileError, match=word):
            VectorIndex.load(bad)


def test_io_errors_are_os_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing.fvx")
    with pytest.raises(FileNotFoundError):
        VectorIndex(2).save(tmp_path / "no" / "such" / "dir.fvx")
    with pytest.raises(OSError):
        VectorIndex(2).save(tmp_path)


_SAVE_UNDER_A_SIZE_LIMIT = """
import resource, signal, sys
import numpy as np
from facilitair_tui.native import VectorIndex

# Writes beyond the limit fail with EFBIG, like a full disk: the save is cut off midway.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
index = VectorIndex(64)
rng = np.random.default_rng(0)
index.add([f"new{i}" for i in range(4000)], rng.standard_normal((4000, 64)))
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    index.save(sys.argv[1])
except OSError as error:
    print("OSError", error.errno)
"""


def test_a_save_cut_off_midway_leaves_the_old_file(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "index.fvx"
    old = VectorIndex(64)
    old.add(ids(50, "old"), rng.standard_normal((50, 64)))
    old.save(path)
    before = path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", _SAVE_UNDER_A_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.startswith("OSError"), out.stdout + out.stderr
    assert path.read_bytes() == before
    assert len(VectorIndex.load(path)) == 50
    assert os.listdir(tmp_path) == ["index.fvx"], "the temporary file was removed"


_SAVE_FOREVER = """
import sys
import numpy as np
from facilitair_tui.native import VectorIndex

rng = np.random.default_rng(1)
small, big = VectorIndex(64), VectorIndex(64)
small.add([f"s{i}" for i in range(100)], rng.standard_normal((100, 64)))
big.add([f"b{i}" for i in range(20000)], rng.standard_normal((20000, 64)))
print("ready", flush=True)
while True:
    big.save(sys.argv[1])
    small.save(sys.argv[1])
"""


def test_a_process_killed_while_saving_never_leaves_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "index.fvx"
    for delay in (0.05, 0.13, 0.29, 0.41):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)  # Only chooses when to kill; any moment must leave a valid file.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        if path.exists():
            assert len(VectorIndex.load(path)) in (100, 20000)


# -------------------------------------------------------------------------------- threads


def _progress_while(work: object) -> int:
    """How often another Python thread ran while ``work()`` ran on this one.

    With a switch interval far longer than the test, this thread never hands the GIL over on
    its own: the counter advances only while the native code has released it."""
    assert callable(work)
    count = 0
    stop = threading.Event()

    def counter() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1
            time.sleep(0)  # releases the GIL, so this thread never holds it for long

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=counter)
    thread.start()
    while count == 0:  # the counter runs (and waits on the GIL) before the work starts
        time.sleep(0.001)
    try:
        sys.setswitchinterval(1000.0)
        before = count
        # Another thread may take the GIL the native code lets go (threads earlier tests left
        # waiting): repeat the work until the counter ran, a few times at most. Code that never
        # released the GIL would leave it at zero however often it ran.
        for _ in range(20):
            work()
            if count > before:
                break
        return count - before
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        thread.join()


def test_search_and_big_adds_release_the_gil(rng: np.random.Generator) -> None:
    data = clustered(rng, 60_000, 96, clusters=200, spread=1.0)
    index = VectorIndex(96, mode="exact")
    assert _progress_while(lambda: index.add(ids(60_000), data)) > 0
    queries = rng.standard_normal((30, 96))
    assert _progress_while(lambda: [index.search(q, k=10, min_similarity=-1.0) for q in queries]) > 0


def test_threads_can_search_and_add_at_once(rng: np.random.Generator) -> None:
    data = clustered(rng, 4000, 32, clusters=40, spread=1.0)
    index = VectorIndex(32)
    index.add(ids(2000), data[:2000])
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for i in range(200):
                hits = index.search(data[i], k=3)
                assert hits and hits[0][1] >= hits[-1][1]
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for start in range(2000, 4000, 500):
        index.add(ids(start + 500)[start:], data[start : start + 500])
    for thread in threads:
        thread.join()
    assert not errors
    assert len(index) == 4000
    assert index.search(data[3999], k=1)[0][0] == "e3999"


def test_nprobe_can_be_set_and_reset(rng: np.random.Generator) -> None:
    index = VectorIndex(16, mode="approximate")
    index.add(ids(5000), clustered(rng, 5000, 16, clusters=30, spread=1.0))
    default = index.nprobe
    index.nprobe = 3
    assert index.nprobe == 3
    index.nprobe = None
    assert index.nprobe == default
    assert index.memory_bytes > 5000 * 16 * 4
