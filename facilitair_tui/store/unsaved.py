"""A session's unsaved file: where its events go when the database will not take them.

``unsaved-<id>.jsonl`` beside the database holds JSON Lines of events, the format ``facilitair
sessions import`` reads. The writer appends to it with plain ``write`` calls: once one returns, the
operating system has the bytes, so the process being killed (``kill -9`` included) loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import msgspec

from facilitair_tui.core import events as ev

# Ids the program makes are hex; an imported recording's id can be anything, so an id that is not a
# plain file name (a slash, a leading dot) is named by its digest instead.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def unsaved_path(directory: Path, session_id: str) -> Path:
    name = session_id if _PLAIN_ID.fullmatch(session_id) else hashlib.sha256(session_id.encode()).hexdigest()
    return directory / f"unsaved-{name}.jsonl"


def append_events(path: Path, events: Iterable[ev.Event]) -> None:
    """Append ``events`` to ``path`` (created readable by the user only). Raises OSError, and
    then leaves the file as it was: a half line would make the whole file unimportable."""
    data = memoryview(b"".join(_line(event) for event in events))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)


def _line(event: ev.Event) -> bytes:
    try:
        return ev.to_json(event) + b"\n"
    except UnicodeEncodeError:
        # Text UTF-8 cannot hold (a lone surrogate a server sent, often why the session is here):
        # JSON Lines cannot hold it either. Each such code point becomes U+FFFD, the rest is exact.
        return msgspec.json.encode(_valid(ev.to_dict(event))) + b"\n"


def _valid(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_valid(key): _valid(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_valid(item) for item in value]
    return value
