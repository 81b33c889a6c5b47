"""The quantities a task states, in one unit each, so that two ways of writing one are equal and
two different ones never are: "every hour" = "hourly" = "every 60 minutes" but not "every 15
minutes"; "a day" = "24 hours" = "daily"; "three-step" = "3-step" but not "five-step"; "10 MB" is
not "10 GB"; "a dozen" is 12.

``quantities(text)`` gives them as a multiset of strings: ``"s:900"`` (a duration in seconds),
``"B:10485760"`` (a size in bytes), ``"%:80"``, or a bare number (``"5"``, ``"3.12"`` for a
version). The number veto compares these both ways.
"""

from __future__ import annotations

import re
from collections import Counter

from .proof import number_value

__all__ = ["is_quantity_word", "quantities"]

_SECOND, _MINUTE, _HOUR, _DAY = 1, 60, 3600, 86_400
_DURATIONS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001, "msec": 0.001,
    "s": _SECOND, "sec": _SECOND, "secs": _SECOND, "second": _SECOND, "seconds": _SECOND,
    "min": _MINUTE, "mins": _MINUTE, "minute": _MINUTE, "minutes": _MINUTE,
    "h": _HOUR, "hr": _HOUR, "hrs": _HOUR, "hour": _HOUR, "hours": _HOUR,
    "day": _DAY, "days": _DAY, "night": _DAY, "nights": _DAY,
    "week": 7 * _DAY, "weeks": 7 * _DAY, "fortnight": 14 * _DAY,
    "month": 30 * _DAY, "months": 30 * _DAY,
    "year": 365 * _DAY, "years": 365 * _DAY,
}  # fmt: skip
_FREQUENCIES = {
    "hourly": _HOUR, "daily": _DAY, "nightly": _DAY, "weekly": 7 * _DAY,
    "biweekly": 14 * _DAY, "fortnightly": 14 * _DAY, "monthly": 30 * _DAY,
    "quarterly": 91 * _DAY, "yearly": 365 * _DAY, "annually": 365 * _DAY, "annual": 365 * _DAY,
}  # fmt: skip
_SIZES = {
    "b": 1, "byte": 1, "bytes": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kilobyte": 1e3, "kilobytes": 1e3, "megabyte": 1e6, "megabytes": 1e6,
    "gigabyte": 1e9, "gigabytes": 1e9, "terabyte": 1e12, "terabytes": 1e12,
}  # fmt: skip
_PERCENT = frozenset({"%", "percent", "pct"})
#: Words that mean "one" before a unit: "every hour", "an hour", "per second".
_ONE = frozenset({"a", "an", "every", "per", "each", "one"})
#: A share of the unit that follows: "half an hour", "a quarter of an hour".
_SHARES = {"half": 0.5, "quarter": 0.25}

_WORD = re.compile(r"\d+(?:\.\d+)*%?|[a-z]+|%")
_GLUED = re.compile(r"(\d+(?:\.\d+)?)([a-z]+|%)")
_VERSION = re.compile(r"\d+\.\d+\.\d+")


def _words(text: str) -> list[str]:
    words: list[str] = []
    for token in _WORD.findall(text.lower().replace(",", "")):
        glued = _GLUED.fullmatch(token)
        if glued and (glued.group(2) in _DURATIONS or glued.group(2) in _SIZES or glued.group(2) == "%"):
            words.extend(glued.groups())  # "15min", "10mb", "80%"
        elif token.endswith("%") and token[:-1]:
            words.extend((token[:-1], "%"))
        else:
            words.append(token)
    return words


def _unit(word: str) -> tuple[str, float] | None:
    if word in _DURATIONS:
        return "s", _DURATIONS[word]
    if word in _SIZES:
        return "B", _SIZES[word]
    if word in _PERCENT:
        return "%", 1.0
    return None


def _shown(value: float) -> str:
    rounded = round(value, 6)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def quantities(text: str) -> Counter[str]:
    """The quantities ``text`` states (see the module doc)."""
    words = _words(text)
    found: Counter[str] = Counter()
    i = 0
    while i < len(words):
        word = words[i]
        if word in _FREQUENCIES:
            found[f"s:{_shown(_FREQUENCIES[word])}"] += 1
            i += 1
            continue
        value: float | None = None
        used = 0
        if word[0].isdigit():
            if _VERSION.fullmatch(word) or word.count(".") > 1:
                found[word] += 1  # a version: compared as written
                i += 1
                continue
            value, used = float(word), 1
        else:
            spelled = number_value(words[i:])
            if spelled is not None and word == "one" and spelled[1] == 1:
                following = words[i + 1] if i + 1 < len(words) else ""
                if _unit(following) is None:  # "from one airport to another": a pronoun
                    i += 1
                    continue
            if spelled is not None:
                value, used = spelled
            elif word in _SHARES:  # "half an hour", "a quarter of an hour"
                rest = [w for w in words[i + 1 : i + 4] if w not in ("of", "a", "an")]
                unit = _unit(rest[0]) if rest else None
                if unit is not None and unit[0] == "s":
                    found[f"s:{_shown(_SHARES[word] * unit[1])}"] += 1
                    i += 1 + words[i + 1 : i + 4].index(rest[0]) + 1
                    continue
            elif word in _ONE:
                following = words[i + 1] if i + 1 < len(words) else ""
                unit = _unit(following)
                if unit is not None and unit[0] != "%":
                    found[f"{unit[0]}:{_shown(unit[1])}"] += 1
                    i += 2
                    continue
        if value is None:
            i += 1
            continue
        following = words[i + used] if i + used < len(words) else ""
        unit = _unit(following)
        if unit is not None:
            found[f"{unit[0]}:{_shown(value * unit[1])}"] += 1
            i += used + 1
        else:
            found[_shown(value)] += 1
            i += used
    return found


def is_quantity_word(word: str) -> bool:
    """Is ``word`` part of how a quantity is written (a number, a unit, "every", "hourly")?"""
    low = word.lower()
    return (
        low[:1].isdigit()
        or low in _DURATIONS
        or low in _FREQUENCIES
        or low in _SIZES
        or low in _PERCENT
        or low in _ONE
        or low in _SHARES
        or number_value([low]) is not None
    )
