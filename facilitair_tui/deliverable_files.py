"""Writing a session's deliverable to a directory: what ``--out DIR`` and the TUI's ``w`` do.

A directory that has anything in it is refused unless ``force``; with it, only the deliverable's
own files are overwritten and nothing else is touched. Every path is checked to stay inside the
directory (a symlinked subdirectory that leads out is refused). Files are written in two steps:
each to a temporary file beside its target, then, once all are written, each renamed into place.
A failure in the first step (a full disk, a directory where a file should go) removes what it
wrote and leaves the directory as it was. Files get the usual permissions (umask applies): they
are the user's code, not private records.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from facilitair_tui import paths


class DeliverableWriteError(Exception):
    """The files cannot be written; the message says what happened and what to do."""


class DirectoryNotEmpty(DeliverableWriteError):
    """The directory has files already and overwriting was not asked for."""

    def __init__(self, directory: Path) -> None:
        super().__init__(f"{directory} already has files; choose an empty directory or add --force")
        self.directory = directory


def has_entries(directory: Path) -> bool:
    """Whether ``directory`` exists and holds anything."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except (FileNotFoundError, NotADirectoryError):
        return False


def check_target(directory: Path, *, force: bool) -> None:
    """Raise ``DeliverableWriteError`` when writing to ``directory`` is bound to be refused; called
    before a session starts, so nobody pays for a run whose files cannot be written."""
    if directory.exists() and not directory.is_dir():
        raise DeliverableWriteError(f"{directory} is a file, not a directory; choose a directory")
    try:
        if has_entries(directory) and not force:
            raise DirectoryNotEmpty(directory)
    except PermissionError:
        raise DeliverableWriteError(
            f"cannot read {directory}: permission denied; choose another directory"
        ) from None


def _relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or "\\" in path or not relative.parts:
        raise DeliverableWriteError(f"refusing to write {path!r}: it would land outside the directory")
    return relative


def _inside(root: Path, target: Path) -> bool:
    return target == root or root in target.parents


def write_deliverable(files: Mapping[str, str], directory: Path, *, force: bool) -> list[Path]:
    """Write ``files`` (relative POSIX path -> text) under ``directory``; the paths written."""
    check_target(directory, force=force)
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []  # (temporary file, target)
    try:
        for candidate in reversed([directory, *directory.parents]):
            if not candidate.exists():
                candidate.mkdir()
                created.append(candidate)
        root = directory.resolve()
        for path, text in files.items():
            relative = _relative(path)
            parent = _directories_inside(root, relative.parts[:-1], created)
            target = parent / relative.name
            if target.is_dir() and not target.is_symlink():
                raise DeliverableWriteError(
                    f"cannot write {path}: {directory / path} is a directory; move it or choose another one"
                )
            staged.append((_stage(target, text.encode("utf-8")), target))
    except BaseException as exc:
        for temporary, _target in staged:
            temporary.unlink(missing_ok=True)
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()  # only when still empty: never anything of the user's
        if isinstance(exc, OSError):
            raise DeliverableWriteError(f"cannot write to {directory}: {exc.strerror or exc}") from None
        raise
    for number, (temporary, target) in enumerate(staged):
        try:
            os.replace(temporary, target)
        except OSError as exc:
            for left, _target in staged[number:]:
                left.unlink(missing_ok=True)
            raise DeliverableWriteError(
                f"cannot write {target}: {exc.strerror or exc}; {number} of {len(staged)} files were written"
            ) from None
    return [directory / path for path in files]


def _directories_inside(root: Path, parts: tuple[str, ...], created: list[Path]) -> Path:
    """``root``/``parts``, each directory made if missing (and remembered in ``created``); one that
    exists must be a directory that resolves inside ``root`` (a link out of it is refused)."""
    current = root
    for part in parts:
        current = current / part
        if current.exists() or current.is_symlink():
            if not _inside(root, current.resolve()):
                raise DeliverableWriteError(
                    f"refusing to write into {current}: it leads outside {root} (a link?)"
                )
            if not current.is_dir():
                raise DeliverableWriteError(f"cannot write into {current}: a file has that name")
        else:
            current.mkdir()
            created.append(current)
    return current


def _stage(target: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``target`` (mode 0666 less the umask)."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    paths.write_new(temporary, data, 0o666)
    return temporary
