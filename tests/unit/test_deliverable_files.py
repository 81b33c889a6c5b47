"""Writing a deliverable to a directory: refusing what it must, and never leaving half a result."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from facilitair_tui import deliverable_files
from facilitair_tui.deliverable_files import (
    DeliverableWriteError,
    DirectoryNotEmpty,
    check_target,
    has_entries,
    write_deliverable,
)

FILES = {"app.py": "print('hi')\n", "tests/test_app.py": "def test_x():\n    pass\n", "README.md": "# App\n"}


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative POSIX path -> text), hidden ones included."""
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_files_are_written_with_their_directories_and_usual_permissions(
    tmp_path: Path, umask_022: None
) -> None:
    out = tmp_path / "new" / "out"
    written = write_deliverable(FILES, out, force=False)
    assert written == [out / "app.py", out / "tests" / "test_app.py", out / "README.md"]
    assert tree(out) == FILES
    assert stat.S_IMODE((out / "app.py").stat().st_mode) == 0o644  # user code, not a private record


def test_an_empty_directory_is_fine(tmp_path: Path) -> None:
    write_deliverable(FILES, tmp_path, force=False)
    assert tree(tmp_path) == FILES


def test_a_directory_with_files_is_refused_without_force_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DirectoryNotEmpty) as refused:
        write_deliverable(FILES, tmp_path, force=False)
    assert str(refused.value) == f"{tmp_path} already has files; choose an empty directory or add --force"
    assert tree(tmp_path) == {"notes.txt": "mine"}
    assert has_entries(tmp_path) and not has_entries(tmp_path / "missing")


def test_force_overwrites_only_its_own_files(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_other.py").write_text("other")
    write_deliverable(FILES, tmp_path, force=True)
    assert tree(tmp_path) == {**FILES, "notes.txt": "mine", "tests/test_other.py": "other"}


def test_a_directory_where_a_file_goes_fails_the_write_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "tests" / "test_app.py").mkdir(parents=True)  # a directory has the name of a file
    with pytest.raises(DeliverableWriteError, match="is a directory"):
        write_deliverable(FILES, out, force=True)
    # No file, no half file, no temporary file: app.py, written before, was never put in place.
    assert tree(out) == {}


def test_a_failure_while_writing_removes_what_was_staged_and_the_directories_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stage = deliverable_files._stage
    staged: list[Path] = []

    def stage_then_fail(target: Path, data: bytes) -> Path:
        if staged:
            raise OSError(28, "No space left on device")
        staged.append(real_stage(target, data))
        return staged[-1]

    monkeypatch.setattr(deliverable_files, "_stage", stage_then_fail)
    out = tmp_path / "out"
    with pytest.raises(DeliverableWriteError) as failed:
        write_deliverable(FILES, out, force=False)
    assert str(failed.value) == f"cannot write to {out}: No space left on device"
    assert staged and not staged[0].exists()
    assert not out.exists()  # the directory this call made is gone again


def test_a_path_that_leads_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "src").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DeliverableWriteError, match="leads outside"):
        write_deliverable({"src/app.py": "x"}, out, force=True)
    assert tree(outside) == {}
    for path in ("../escape.py", "/etc/escape.py", "a\\b.py"):
        with pytest.raises(DeliverableWriteError, match="outside the directory"):
            write_deliverable({path: "x"}, tmp_path / "fresh", force=False)
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "fresh").exists()


def test_a_file_given_as_the_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file")
    with pytest.raises(DeliverableWriteError, match="is a file, not a directory"):
        check_target(target, force=True)
