"""Where Facilitair keeps its files.

``FACILITAIR_HOME=DIR`` moves everything the program writes (config, data, models, cache, logs)
under DIR. Otherwise the XDG base directories are used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _home_override() -> Path | None:
    value = os.environ.get("FACILITAIR_HOME", "").strip()
    return Path(value).expanduser() if value else None


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "").strip()
    return (Path(value) if value else Path.home() / fallback) / "facilitair"


def config_dir() -> Path:
    home = _home_override()
    return home / "config" if home else _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    home = _home_override()
    return home / "data" if home else _xdg("XDG_DATA_HOME", ".local/share")


def models_dir() -> Path:
    return data_dir() / "models"


def config_file() -> Path:
    return config_dir() / "config.toml"


def ensure_private_dir(path: Path) -> Path:
    """Create a directory only the user can read (it may hold sessions and keys' config)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (``FileExistsError`` if it exists) with ``mode`` less the umask and write
    ``data`` to it; a failed write removes it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write a file only the user can read (0600, like the databases it is copied from).

    An existing file is refused with ``FileExistsError`` unless ``overwrite``; then it is replaced
    whole (written beside it, then renamed), so a failed write never leaves half a file."""
    if not overwrite:
        write_new(path, data, 0o600)
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
