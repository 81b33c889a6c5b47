"""When a cached task may be served without asking: only when the new task is *proven* the same.

A proof is an edit that general rules show harmless, never a similarity score:

* *cosmetic*: the same words once case, punctuation, articles and fillers ("the", "a", "please",
  "that"), inflections ("adds", "added", "adding"; "form", "forms") and the way a number is written ("three",
  "3", "three-step" / "3-step", "daily" / "every day") and a generic noun beside an
  identifier ("the InvoiceParser class") are set aside, and a few words that say the same in a
  task are taken as one ("each", "every", "all"; "to", "into"; "in", "on"; "using", "with",
  "that uses"). Prepositions, particles, negations, quantifiers
  and numbers always count: "copy the reports to S3" is not "from S3", "log the user in" is not
  "out", "over 80%" is not "under 80%";
* *reordered*: the same phrases in another order, where every phrase keeps its role: a phrase
  that opens with a preposition ("in Python", "from S3", "for admins") may move, but stays
  attached to the same head ("write a parser in Python" = "in Python, write a parser"), and the
  heads keep their order ("only the gateway can reach the ledger" is not "the ledger can only
  reach the gateway"). When the task states a sequence ("then", "after", "first"), nothing may
  move.

Anything else (a synonym, a rewrite, an added or dropped word) is not a proof: the matcher may
still offer the entry, and the user decides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["inflection", "normal_tokens", "number_value", "proven_same"]

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’._:/+#][A-Za-z0-9]+)*%?|[,;:.!?()]")
_BREAKS = frozenset(",;:.!?()")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that never change what a task asks for.
_DROP = _wordset("a an the please kindly just simply also really very that which our your my their its some")
#: Words that open a phrase which may move with its head.
_PREPOSITIONS = _wordset("""from to into onto in on for with by at over under via within during through
    across toward towards against between among inside outside using""")
_PARTICLES = _wordset("up down out off back away")
#: Words that state an order of steps: when present, nothing may move.
_SEQUENCE = _wordset("then first next finally after before followed once until afterwards later")
#: Words that end like an inflection but are not one.
_UNINFLECTED = _wordset("news series species always perhaps sometimes various previous analysis status bias")
#: Words that say the same in a task: one spelling each.
_SAME = {
    "each": "every", "all": "every", "into": "to", "on": "in", "using": "with", "via": "with",
    "uses": "with", "use": "with",
}  # fmt: skip
#: A frequency written as one word is "every" and its unit.
_FREQUENCY = {
    "hourly": ("every", "hour"), "daily": ("every", "day"), "nightly": ("every", "night"),
    "weekly": ("every", "week"), "monthly": ("every", "month"), "yearly": ("every", "year"),
}  # fmt: skip

#: Generic nouns that say nothing more right after or before an identifier ("the OrderService class").
_GENERIC = _wordset("class function method component module file script object variable field helper package")
_IDENTIFIER = re.compile(r"[a-z][A-Z]|[A-Za-z0-9]_[A-Za-z0-9]|[A-Za-z]\.[A-Za-z]")

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "dozen": 12,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}


def number_value(words: Sequence[str]) -> tuple[float, int] | None:
    """The number that ``words`` start with, written out ("twenty five", "two hundred", "a
    dozen" is left to the caller), and how many words it took; None when they start with none."""
    total, current, used = 0.0, 0.0, 0
    for word in words:
        if word in _UNITS and (used == 0 or current % 10 == 0 or current >= 100):
            current += _UNITS[word]
        elif word in _TENS and (used == 0 or current % 100 == 0):
            current += _TENS[word]
        elif word in _SCALES and used:
            current = max(current, 1.0) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0.0
        elif word == "and" and used and current >= 100:
            pass
        else:
            break
        used += 1
    if not used:
        return None
    return total + current, used


def inflection(word: str) -> str:
    """A word without its inflection: "adds", "added", "adding" -> "add"; "queries" -> "query";
    "forms" -> "form". Deliberately light (no "-er", "-ly", "-tion"): two words it makes equal
    are forms of one word, never two words ("news" is not "new")."""
    if len(word) <= 3 or not word.isalpha() or word in _UNINFLECTED:
        return word
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            break
        if suffix == "es" and not word[:-2].endswith(("s", "x", "z", "ch", "sh")):
            continue  # "creates": only its "-s" goes
        word = word[: len(word) - len(suffix)] + replacement
        if suffix in ("ing", "ed") and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]  # "stopped" -> "stop"
        break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # "create", "creating" -> "creat"
    return word


def normal_tokens(text: str) -> list[str]:
    """The words of a task that count, normalised; clause breaks kept as ","."""
    raw: list[str] = []
    tokens = _TOKEN.findall(text.replace("’", "'"))
    for k, token in enumerate(tokens):
        if token in _BREAKS:
            raw.append(",")
            continue
        if token.lower() in _GENERIC and _beside_identifier(tokens, k):
            continue
        for part in token.lower().split("-"):
            if part:
                raw.append(part)
    out: list[str] = []
    i = 0
    while i < len(raw):
        found = number_value(raw[i:])
        if found is not None:
            value, used = found
            out.append(_number_text(value))
            i += used
            continue
        word = raw[i]
        i += 1
        following = raw[i] if i < len(raw) else ""
        if word in _DROP or (word == "while" and following.endswith("ing")):
            continue  # "..., keeping" = "... while keeping"
        if word == "over" and following in ("to", "into"):
            continue  # "switch over to" = "switch to"
        if word in _FREQUENCY:
            out.extend(_FREQUENCY[word])
            continue
        word = _SAME.get(word, word)
        out.append(_SAME.get(inflection(word), inflection(word)))
    while out and out[-1] == ",":
        out.pop()
    return out


def _beside_identifier(tokens: Sequence[str], k: int) -> bool:
    return any(0 <= j < len(tokens) and _IDENTIFIER.search(tokens[j]) for j in (k - 1, k + 1))


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _segments(tokens: Sequence[str]) -> list[tuple[str, ...]]:
    """The phrases of a task: a new one at each clause break, preposition and particle."""
    segments: list[tuple[str, ...]] = []
    current: list[str] = []
    for token in tokens:
        if token == "," or token in _PREPOSITIONS or token in _PARTICLES:
            if current:
                segments.append(tuple(current))
            current = [] if token == "," else [token]
            continue
        current.append(token)
    if current:
        segments.append(tuple(current))
    return segments


def _structure(tokens: Sequence[str]) -> tuple[list[tuple[str, ...]], Counter[tuple[tuple[str, ...], int]]]:
    """The heads (phrases that open with no preposition) in order, and each prepositional phrase
    with the head it belongs to: the one before it, or for a task that opens with one, the first."""
    segments = _segments(tokens)
    heads = [s for s in segments if s[0] not in _PREPOSITIONS and s[0] not in _PARTICLES]
    attached: Counter[tuple[tuple[str, ...], int]] = Counter()
    head = 0 if heads else -1
    seen = -1
    for segment in segments:
        if segment[0] in _PREPOSITIONS or segment[0] in _PARTICLES:
            attached[(segment, seen if seen >= 0 else head)] += 1
        else:
            seen += 1
    return heads, attached


def proven_same(cached: str, query: str) -> str | None:
    """``"cosmetic"`` or ``"reordered"`` when the query is proven the same task as the cached
    one (see the module doc), else None."""
    a, b = normal_tokens(cached), normal_tokens(query)
    words_a, words_b = [t for t in a if t != ","], [t for t in b if t != ","]
    if words_a == words_b:
        return "cosmetic"
    if sorted(words_a) != sorted(words_b) or _SEQUENCE & (set(words_a) | set(words_b)):
        return None
    if _structure(a) == _structure(b):
        return "reordered"
    return None
