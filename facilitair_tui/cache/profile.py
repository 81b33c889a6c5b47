"""A context profile: the normalised context fields a cached solution is only valid for.

An answer written for Java and SOC2 is wrong for Python and HIPAA, however alike the tasks, and
embeddings can't tell (with the context in the embedded text, changing one field leaves the
cosine above what a rewritten task needs: ``bench/cache_eval.py`` prints it). So context is matched
exactly, after normalisation that removes only what cannot change the answer: case, whitespace,
the order of list items (``FastAPI, SQLAlchemy`` = ``sqlalchemy,fastapi``) and repeats. Every
field is critical unless the settings name it as ignorable. The profile's key (a hash) is the
vector index namespace, so a lookup only ever sees entries of its own profile.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.context import normalise_key

_ITEM_SEPARATORS = re.compile(r"[,;\n]")
_DIGIT_GROUPS = re.compile(r"(?<=\d),(?=\d{3}\b)")  # 1,000 is a number, not a list


def _items(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple, set, frozenset)):
        raw: Iterable[object] = value
    elif value is None:
        raw = ()
    else:
        raw = _ITEM_SEPARATORS.split(_DIGIT_GROUPS.sub("", str(value)))
    items = {" ".join(str(item).split()).casefold() for item in raw}
    items.discard("")
    return tuple(sorted(items))


@dataclass(frozen=True)
class Profile:
    fields: tuple[tuple[str, tuple[str, ...]], ...]  # sorted (key, sorted items); empty fields dropped

    @property
    def key(self) -> str:
        blob = json.dumps(self.fields, separators=(",", ":"), ensure_ascii=False)
        return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()

    def differences(self, other: Profile) -> list[str]:
        """Human lines for each field that differs, e.g. ``language: python ≠ java``."""
        mine, theirs = dict(self.fields), dict(other.fields)
        lines = []
        for key in sorted(mine.keys() | theirs.keys()):
            a, b = mine.get(key, ()), theirs.get(key, ())
            if a != b:
                lines.append(f"{key}: {', '.join(a) or '(none)'} ≠ {', '.join(b) or '(none)'}")
        return lines


def profile_of(context: Mapping[str, object], ignore: Iterable[str] = ()) -> Profile:
    """The profile of ``context``; keys in ``ignore`` (normalised the same way) don't count."""
    skip = {normalise_key(key) for key in ignore}
    fields: dict[str, tuple[str, ...]] = {}
    for key, value in context.items():
        name = normalise_key(str(key))
        items = _items(value)
        if name and items and name not in skip:
            fields[name] = tuple(sorted(set(fields.get(name, ()) + items)))
    return Profile(tuple(sorted(fields.items())))


def display_context(context: Mapping[str, object]) -> dict[str, str]:
    """The context as given, with list values joined, for showing and storing."""
    shown: dict[str, str] = {}
    for key, value in context.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            text = ", ".join(str(item) for item in value)
        else:
            text = "" if value is None else str(value)
        text = " ".join(text.split())
        if text:
            shown[normalise_key(str(key))] = text
    return shown
