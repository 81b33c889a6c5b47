"""The cache's second check: does a cached task truly answer the query task?

The cache first narrows the entries down to those whose critical context is equal (after
normalisation) and whose task embedding is near the query's (``candidate_floor``). That is not
enough: with all-MiniLM-L6-v2 a trap (another number, a negation, the reverse direction, another
technology, a narrower or wider scope) scores 0.85 to 0.98 cosine, while a real paraphrase has a
median of only 0.80. No single threshold separates them, so this module looks at *what changed*
between the two texts, not only at how far apart their vectors are.

Design, in two regimes chosen by how much of the wording the two tasks share (``difflib``'s
ratio over their word tokens, ``near_duplicate_ratio``):

* **Edit** (most words shared): the query is the cached task with a few words changed. Since
  every trap in practice is such a small edit, the check is strict: the change must be shown to be
  harmless, or the entry is not served. Harmless means one of

  - *identical*: the same text, ignoring case, whitespace and final punctuation;
  - *cosmetic*: the same content words once stop words, inflections, punctuation and a generic
    noun after a name ("the OrderService class" -> "OrderService") are set aside;
  - *reordered*: the same content words in another order, each still governed by the same
    preposition (so "from A to B" -> "from B to A" is not a reordering but a reversal);
  - *synonym*: at most ``max_synonym_spans`` replaced spans, each pair of spans embedding within
    ``synonym_min`` of each other ("daily" -> "every day"; "Stripe" -> "PayPal" is far below).

  Anything else (an inserted or removed requirement, a replaced name) is a miss, with the reason.

* **Rewrite** (the wording differs a lot): the query says the cached task again in other words.
  Here the embedding is the right judge, ``paraphrase_min``, but only for the *nearest*
  same-context candidate: a rewrite far from every entry could otherwise be served by whichever
  entry happens to be a little similar. Farther candidates are served only by the edit regime.

Vetoes look for what embeddings miss, each with its own reason. Number, negation and
direction apply in both regimes, before anything else:

* *number*: the numbers (digits, versions, number words) differ both ways: 5 vs 500, 3.0 vs
  3.1, seven vs thirty. A number only one side has (a rewrite spelling "24 hours" as "a day")
  is left to the rest of the check;
* *negation*: one task has more negations (not, without, never, non-...) and negates, within
  two words, a word the other states plainly ("with versioning" vs "without versioning");
* *direction*: a pair of opposite programming verbs or adjectives from a general list
  (upload/download, encrypt/decrypt, ascending/descending...), or the same words with their
  prepositions swapped ("from PostgreSQL to Redshift" vs "from Redshift to PostgreSQL").
  Opposites of relation (before/after, public/private, read/write...) veto only an edit: a
  rewrite often turns one into the other and means the same ("verify before activating" =
  "active only after verifying").

Entity and scope are judged per regime. In an edit, a replaced name is a swap however close
the names embed ("Spanish" -> "Portuguese"), and inserted or deleted words are a wider or
narrower request. In a rewrite:

* *entity*: each task names something (a capitalised word, an identifier, an acronym, a version)
  the other never mentions, even as a prefix ("Postgres"), initials ("JWT" for "JSON Web
  Tokens", "CSP" for "Content-Security-Policy") or a numeronym ("k8s");
* *scope*: the query has fewer than ``shorter_rewrite_max`` of the cached task's content words
  (a rewrite that leaves requirements out; paraphrases are seldom much shorter), or one task's
  content words nearly all appear in the other, which adds several more (``scope_overlap``,
  ``scope_extra_words``).

The word lists are general English and programming vocabulary; nothing here knows any
particular task. ``bench/cache_eval.py`` measures the design on the development set, with a
threshold sweep and a split-half check of how the thresholds carry over to unseen tasks.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

from .proof import proven_same
from .quantities import is_quantity_word, quantities

__all__ = ["Candidate", "Decision", "Embed", "MatchSettings", "TaskMatcher", "Verdict"]

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class MatchSettings:
    """The thresholds of the match (all configurable from the ``[cache]`` section)."""

    #: The index's minimum cosine for an entry to be a candidate at all.
    candidate_floor: float = 0.5
    #: The cosine a rewritten task (the rewrite regime) needs to be offered.
    paraphrase_min: float = 0.55
    #: ...and to be offered although a veto doubts it (the offer says what the veto saw).
    doubtful_offer_min: float = 0.75
    #: The word-level similarity (0..1) from which the query counts as an edit of the cached task.
    near_duplicate_ratio: float = 0.5
    #: The cosine between a replaced span and its replacement for them to count as synonyms.
    synonym_min: float = 0.62
    #: At most this many replaced spans in a synonym edit.
    max_synonym_spans: int = 2
    #: Scope veto: the share of the smaller task's content words found in the bigger one...
    scope_overlap: float = 0.85
    #: ...and how many more content words the bigger one has.
    scope_extra_words: int = 2
    #: A rewrite with fewer content words than this share of the cached task's leaves part out.
    shorter_rewrite_max: float = 0.65


@dataclass(frozen=True)
class Candidate:
    """A same-context entry the index found near the query task."""

    entry_id: str
    task: str
    #: Cosine between the query task and this entry's task, from the index.
    similarity: float


Decision = Literal["serve", "offer", "miss"]


@dataclass(frozen=True)
class Verdict:
    """The check's answer: serve (proven the same task), offer (close; the user decides) or
    miss, a machine word for why, and a sentence for users."""

    decision: Decision
    kind: str
    reason: str
    entry_id: str | None = None
    similarity: float | None = None

    @property
    def hit(self) -> bool:
        """Served: proven the same task."""
        return self.decision == "serve"


# ------------------------------------------------------------------------------- vocabulary


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _wordset("""a an the and or but of to in on for with by at from into onto as is are be been being it
    its this that these those our your their my we you they i me us them he she his her him
    which who whom whose what when where while so such than then there here can could should
    would will shall may might must do does did done has have had having also just very really
    please let lets let's need needs want wants like up out over about via using use uses used
    if whether how why get gets got go goes going able sure ensure make makes making
    currently existing new given some""")
#: Words that narrow or widen what is asked; never dropped as stop words.
_SCOPE = _wordset("all every each only single any both either none entire whole first last")
_NEGATIONS = _wordset("""not no never without nor neither none nothing cannot cant dont doesnt
    didnt isnt arent wasnt werent wont shouldnt mustnt couldnt wouldnt hasnt havent avoid except excluding""")
_NEGATING_PREFIXES = ("non-", "un-")
#: After "no" or "not" these make a bound ("no later than"), not a negation.
_COMPARATIVES = _wordset("""later earlier more less fewer longer shorter bigger larger smaller greater
    higher lower older newer faster slower""")
#: Where a negation's reach ends.
_CLAUSE_BREAKS = frozenset({",", ";", ":", ".", "!", "?", "(", ")", "and", "but", "or", "then", "so"})
_NEGATION_REACH = 2
_PREPOSITIONS = _wordset("from to into onto in on for with by at over under via before after instead than as")
#: Generic nouns that add nothing right after (or before) a name: "the OrderService class".
_GENERIC_NOUNS = _wordset(
    "class function method component module file script object variable field helper package"
)
#: The verbs a task opens with, interchangeable as far as the cache is concerned.
_TASK_VERBS = _wordset("write build create implement develop generate produce code program construct")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100,
    "thousand": 1000, "dozen": 12,
}  # fmt: skip
#: Opposite programming verbs and adjectives (compared after stemming). They flip what a task
#: does however it is worded, so they veto in both regimes.
_OPPOSITES = (
    ("upload", "download"), ("import", "export"), ("encrypt", "decrypt"), ("encode", "decode"),
    ("serialize", "deserialize"), ("compress", "decompress"), ("pack", "unpack"),
    ("zip", "unzip"), ("lock", "unlock"), ("mount", "unmount"), ("install", "uninstall"),
    ("subscribe", "unsubscribe"), ("follow", "unfollow"), ("wrap", "unwrap"),
    ("promote", "rollback"), ("deploy", "rollback"), ("upgrade", "rollback"), ("release", "rollback"),
    ("attach", "detach"), ("ascending", "descending"), ("asc", "desc"), ("first", "last"),
    ("oldest", "newest"), ("oldest", "latest"), ("oldest", "recent"), ("earliest", "latest"),
    ("add", "remove"), ("add", "drop"), ("add", "delete"), ("create", "delete"),
    ("create", "drop"), ("insert", "delete"), ("enable", "disable"), ("allow", "deny"),
    ("allow", "forbid"), ("show", "hide"), ("increase", "decrease"),
    ("increment", "decrement"), ("push", "pull"), ("producer", "consumer"),
    ("produce", "consume"), ("publish", "subscribe"), ("sender", "receiver"),
    ("minimum", "maximum"), ("min", "max"), ("longest", "shortest"), ("largest", "smallest"),
    ("biggest", "smallest"), ("inbound", "outbound"), ("ingress", "egress"),
    ("synchronous", "asynchronous"), ("sync", "async"), ("mutable", "immutable"),
    ("login", "logout"), ("signin", "signout"), ("dump", "restore"), ("backup", "restore"),
    ("parse", "stringify"), ("upgrade", "downgrade"), ("expand", "collapse"),
    ("grant", "revoke"), ("accept", "reject"), ("include", "exclude"), ("valid", "invalid"),
    ("lowercase", "uppercase"), ("prefix", "suffix"), ("horizontal", "vertical"),
)  # fmt: skip
#: Opposites of relation rather than of action: a rewrite often turns one into the other while
#: saying the same ("verify the email before activating" = "active only after confirming";
#: "private bucket" = "block public access"), so they veto only a small edit.
#: Prepositions that reverse what a word does when one replaces the other in its role: "copy the
#: reports to S3" / "from S3", "CPU over 80%" / "under 80%".
_OPPOSITE_ROLES = (
    ("to", "from"), ("into", "from"), ("onto", "from"), ("into", "out"), ("over", "under"),
    ("above", "below"), ("before", "after"),
)  # fmt: skip
_RELATIVE_OPPOSITES = (
    ("in", "out"), ("into", "out"), ("up", "down"), ("on", "off"), ("promote", "rollback"),
    ("forward", "back"),
    ("before", "after"), ("above", "below"), ("higher", "lower"), ("more", "less"),
    ("more", "fewer"), ("top", "bottom"), ("public", "private"), ("internal", "external"),
    ("client", "server"), ("input", "output"), ("read", "write"), ("send", "receive"),
    ("start", "stop"), ("open", "close"), ("success", "failure"), ("online", "offline"),
    ("local", "remote"), ("light", "dark"), ("head", "tail"), ("nullable", "non-nullable"),
)  # fmt: skip

#: The vetoes that refuse a rewrite too (the others only make its offer say what they saw).
_HARD_VETOES = frozenset({"number", "negation"})

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’._:/+#-][A-Za-z0-9]+)*%?|[,;:.!?()]")
_NUMBER = re.compile(r"(?<![a-uw-z])\d+(?:\.\d+)*(?![a-z])")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}")
_FINAL_PUNCTUATION = re.compile(r"[\s.!?;,]+$")


def _stem(word: str) -> str:
    """A light suffix stripper: enough to equate "adds", "added", "adding" and "add"."""
    word = word.replace("'", "").replace("’", "")
    for suffix, replacement in (
        ("ies", "y"), ("ied", "y"), ("ying", "y"), ("ing", ""), ("ed", ""), ("es", ""),
        ("s", ""), ("er", ""), ("ly", ""),
    ):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: len(word) - len(suffix)] + replacement
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


_OPPOSITE_STEMS = tuple((_stem(a), _stem(b)) for a, b in _OPPOSITES)
_RELATIVE_OPPOSITE_STEMS = tuple((_stem(a), _stem(b)) for a, b in _RELATIVE_OPPOSITES)


def _is_name(raw: str, sentence_start: bool) -> bool:
    """Does ``raw`` look like a name: a product, an identifier, an acronym, a version?"""
    if any(c.isdigit() for c in raw) and any(c.isalpha() for c in raw):
        return True
    if any(c in raw for c in "._/#+") and any(c.isalpha() for c in raw):
        return True
    if _CAMEL.search(raw):
        return True
    return raw[:1].isupper() and not sentence_start


# ---------------------------------------------------------------------------- one task's words


@dataclass
class _Words:
    """One task, taken apart once: its tokens, content words and the facts the vetoes use."""

    text: str
    raw: list[str] = field(default_factory=list)  # word tokens as written
    low: list[str] = field(default_factory=list)  # lowercased, for the edit ratio
    content: list[str] = field(default_factory=list)  # stems of the words that carry meaning
    content_raw: list[str] = field(default_factory=list)  # the same, as written
    roles: list[str | None] = field(default_factory=list)  # each content word's preposition
    negated: set[str] = field(default_factory=set)
    negations: int = 0
    numbers: Counter[str] = field(default_factory=Counter)
    names: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, text: str) -> _Words:
        words = cls(text)
        tokens = _TOKEN.findall(text)
        sentence_start = True
        reach = 0
        preposition: str | None = None
        for i, token in enumerate(tokens):
            if not token[0].isalnum():
                sentence_start = token in ".!?:"
                reach = 0
                preposition = None if token in ".!?;" else preposition
                continue
            low = token.lower().replace("’", "'")
            bare = low.replace("'", "")
            words.raw.append(token)
            words.low.append(low)
            if _is_name(token, sentence_start) and bare not in _STOP and bare not in _NEGATIONS:
                words.names.add(low.rstrip("%"))
            sentence_start = False
            if bare in _CLAUSE_BREAKS:
                reach = 0
            following = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
            if bare in ("no", "not") and following in _COMPARATIVES:
                continue  # "no later than", "not more than": a bound, not a negation
            if bare in _NEGATIONS or (bare.endswith("nt") and bare[:-2] in _AUXILIARIES):
                words.negations += 1
                reach = _NEGATION_REACH
                continue
            negated_here = reach > 0
            for prefix in _NEGATING_PREFIXES:
                if low.startswith(prefix) and len(low) > len(prefix) + 2:
                    words.negations += 1
                    words.negated.add(_stem(low[len(prefix) :]))
            if low in _PREPOSITIONS:
                preposition = low
                reach = 0 if low not in ("to", "for") else reach  # a new phrase: the negation ends
                continue
            if (low in _STOP or low in _NUMBER_WORDS) and low not in _SCOPE:
                continue
            if low in _GENERIC_NOUNS and _next_to_name(tokens, i):
                continue
            stem = "make" if low in _TASK_VERBS else _stem(low)
            if stem == "roll" and "back" in (t.lower() for t in tokens[i + 1 : i + 5]):
                stem = "rollback"  # "roll the release back" undoes it
            words.content.append(stem)
            words.content_raw.append(token)
            words.roles.append(preposition)
            if negated_here:
                words.negated.add(stem)
                reach -= 1
        words.numbers = quantities(text)
        return words

    @cached_property
    def stems(self) -> frozenset[str]:
        return frozenset(self.content) | frozenset(_stem(w) for w in self.low)

    @cached_property
    def joined(self) -> str:
        return " ".join(self.low)

    @cached_property
    def initials(self) -> frozenset[str]:
        parts = [p for w in self.low for p in re.split(r"[^a-z0-9]+", w) if p]
        return frozenset(
            "".join(p[0] for p in parts[i : i + n]) for n in (2, 3, 4) for i in range(len(parts) - n + 1)
        )


_AUXILIARIES = _wordset("do does did is are was were should must wo ca could would has have")


def _next_to_name(tokens: Sequence[str], i: int) -> bool:
    """Is token ``i`` right after or before an identifier-like name ("OrderService class")?"""
    for j in (i - 1, i + 1):
        if 0 <= j < len(tokens) and tokens[j][0].isalnum() and _is_name(tokens[j], False):
            neighbour = tokens[j]
            if _CAMEL.search(neighbour) or any(c in neighbour for c in "._/#+") or "_" in neighbour:
                return True
    return False


# ----------------------------------------------------------------------------------- the vetoes


def _quote(words: Sequence[str]) -> str:
    return "'" + " ".join(words) + "'" if words else "nothing"


def _number_veto(a: _Words, b: _Words) -> str | None:
    only_a, only_b = a.numbers - b.numbers, b.numbers - a.numbers
    if only_a and only_b:
        return f"the numbers differ: {_fmt_numbers(only_a)} vs {_fmt_numbers(only_b)}"
    return None


def _fmt_numbers(numbers: Counter[str]) -> str:
    return ", ".join(_fmt_quantity(n) for n in sorted(numbers))


def _fmt_quantity(quantity: str) -> str:
    unit, _, value = quantity.partition(":")
    if not value:
        return unit
    amount = float(value)
    if unit == "%":
        return f"{value}%"
    if unit == "B":
        return _scaled(amount, ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "bytes")))
    return _scaled(amount, ((86_400, "days"), (3600, "h"), (60, "min"), (1, "s"), (0.001, "ms")))


def _scaled(amount: float, scale: tuple[tuple[float, str], ...]) -> str:
    for size, name in scale:
        if amount >= size and (amount / size) == int(amount / size):
            return f"{int(amount / size)} {name}"
    return f"{amount:g} {scale[-1][1]}"


def _negation_veto(a: _Words, b: _Words) -> str | None:
    for more, fewer, side in ((a, b, "cached"), (b, a, "query")):
        if more.negations <= fewer.negations:
            continue
        plain = fewer.stems - fewer.negated
        flipped = [w for w in dict.fromkeys(more.content) if w in more.negated and _related(w, plain)]
        if flipped:
            other = "query" if side == "cached" else "cached"
            return f"the {side} task negates what the {other} task asks for ({_word_for(flipped[0], more)})"
    return None


def _related(stem: str, stems: frozenset[str]) -> bool:
    """Is ``stem`` among ``stems``, or a word of one family with one ("explain", "explanation")?"""
    if stem in stems:
        return True
    return any(_shared_prefix(stem, s) >= max(5, min(len(stem), len(s)) - 2) for s in stems)


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _role_veto(a: _Words, b: _Words) -> str | None:
    """A word both tasks name, governed by opposite prepositions ("to S3" / "from S3")."""
    roles_a, roles_b = _roles(a), _roles(b)
    for word in roles_a.keys() & roles_b.keys():
        for x, y in _OPPOSITE_ROLES:
            for p, q in ((x, y), (y, x)):
                if roles_a[word] == {p} and roles_b[word] == {q}:
                    return f"the direction is reversed: {p} {_raw_for(word, a)} vs {q} {_raw_for(word, b)}"
    return None


def _raw_for(stem: str, words: _Words) -> str:
    return next((raw for raw, s in zip(words.content_raw, words.content, strict=True) if s == stem), stem)


def _direction_veto(a: _Words, b: _Words, pairs: Sequence[tuple[str, str]]) -> str | None:
    sa, sb = a.stems, b.stems
    for x, y in pairs:
        for p, q in ((x, y), (y, x)):
            if p in sa and q not in sa and q in sb and p not in sb:
                return f"the direction is reversed: {_word_for(p, a)} vs {_word_for(q, b)}"
    if sorted(a.content) == sorted(b.content) and a.content != b.content and _roles(a) != _roles(b):
        return "the same words with their roles swapped (reversed direction)"
    return None


def _word_for(stem: str, words: _Words) -> str:
    """The word as written for a stem, for the reasons users read."""
    return next((w for w in words.low if _stem(w) == stem), stem)


def _roles(w: _Words) -> dict[str, frozenset[str | None]]:
    roles: dict[str, set[str | None]] = {}
    for stem, role in zip(w.content, w.roles, strict=True):
        roles.setdefault(stem, set()).add(role)
    return {k: frozenset(v) for k, v in roles.items()}


_NUMERONYM = re.compile(r"([a-z])(\d+)([a-z])")


def _mentions(name: str, other: _Words) -> bool:
    """Does ``other`` mention ``name``: as a word, a prefix ("postgres"), initials ("jwt" for
    "JSON Web Tokens", "csp" for "Content-Security-Policy") or a numeronym ("k8s")?"""
    if name in other.names or name in other.joined or name in other.initials:
        return True
    parts = [p for p in re.split(r"[^a-z0-9]+", name) if p]
    if len(parts) >= 2:
        initials = "".join(p[0] for p in parts)
        if len(initials) >= 3 and any(initials in word for word in other.low):
            return True
    numeronym = _NUMERONYM.fullmatch(name)
    if numeronym:
        first, count, last = numeronym.groups()
        if any(len(w) == int(count) + 2 and w[0] == first and w[-1] == last for w in other.low):
            return True
    if len(name) >= 4:
        for word in other.low:
            if len(word) >= 4 and (word.startswith(name) or name.startswith(word)):
                return True
    return False


def _unexplained_names(words: _Words, other: _Words) -> list[str]:
    """The names in ``words`` that ``other`` never mentions, in any of the ways it could."""
    spelled_out: set[str] = set()  # words of a run whose initials the other uses ("JSON Web Tokens")
    for n in (2, 3, 4):
        for i in range(len(words.low) - n + 1):
            run = words.low[i : i + n]
            if "".join(w[0] for w in run) in other.low:
                spelled_out.update(run)
    return sorted(n for n in words.names if n not in spelled_out and not _mentions(n, other))


def _entity_veto(a: _Words, b: _Words) -> str | None:
    only_a, only_b = _unexplained_names(a, b), _unexplained_names(b, a)
    if only_a and only_b:
        return f"different things named: {only_a[0]} vs {only_b[0]}"
    return None


def _scope_veto(a: _Words, b: _Words, settings: MatchSettings) -> str | None:
    sa, sb = set(a.content), set(b.content)
    if sa == sb:
        return None
    if len(sb) < settings.shorter_rewrite_max * len(sa):
        return f"the query is much shorter ({len(sb)} content words vs {len(sa)}): it leaves part out"
    small, big = (sa, sb) if len(sa) <= len(sb) else (sb, sa)
    extra = len(big - small)
    if len(small & big) >= settings.scope_overlap * len(small) and extra >= settings.scope_extra_words:
        bigger = b if big is sb else a
        shown = _quote(
            [w for w, stem in zip(bigger.content_raw, bigger.content, strict=True) if stem not in small][:4]
        )
        return f"the query asks for more: {shown}" if big is sb else f"the query leaves out {shown}"
    return None


# ---------------------------------------------------------------------------------- the matcher


class TaskMatcher:
    """Decides whether one of a query's same-context candidates answers it; see the module doc."""

    def __init__(self, embed: Embed, settings: MatchSettings = MatchSettings()) -> None:
        self._embed = embed
        self.settings = settings

    def choose(self, query: str, candidates: Sequence[Candidate]) -> Verdict:
        """The best answer over a query's same-context candidates (best first): the first one
        served, else the first one offered, else why the nearest was refused."""
        verdicts = self.judge_all(query, candidates)
        if not verdicts:
            return Verdict("miss", "no_candidate", "no cached task in this context is similar enough")
        for decision in ("serve", "offer"):
            for verdict in verdicts:
                if verdict.decision == decision:
                    return verdict
        return verdicts[0]

    def judge_all(self, query: str, candidates: Sequence[Candidate]) -> list[Verdict]:
        """A verdict for each candidate above ``candidate_floor``, in their order (best first).
        Only the nearest may be offered as a rewrite (a paraphrase); the others only as an edit."""
        ordered = [c for c in candidates if c.similarity >= self.settings.candidate_floor]
        asked = _Words.of(query)
        vectors: dict[str, npt.NDArray[np.float32]] = {}
        return [
            self._judge(_Words.of(c.task), asked, c, rank == 0, vectors) for rank, c in enumerate(ordered)
        ]

    def check(self, cached: str, query: str, similarity: float, *, nearest: bool = True) -> Verdict:
        """The check on one pair of tasks (``similarity`` is their cosine)."""
        candidate = Candidate("", cached, similarity)
        return self._judge(_Words.of(cached), _Words.of(query), candidate, nearest, {})

    # ------------------------------------------------------------------------------ internals

    def _judge(
        self,
        cached: _Words,
        query: _Words,
        candidate: Candidate,
        nearest: bool,
        vectors: dict[str, npt.NDArray[np.float32]],
    ) -> Verdict:
        def verdict(decision: Decision, kind: str, reason: str) -> Verdict:
            return Verdict(decision, kind, reason, candidate.entry_id or None, candidate.similarity)

        cosine = f"cosine {candidate.similarity:.2f}"
        if _normalised(cached.text) == _normalised(query.text):
            return verdict("serve", "identical", "the same task")
        proof = proven_same(cached.text, query.text)
        if proof == "cosmetic":
            return verdict("serve", proof, "the same task, up to wording that does not change it")
        if proof == "reordered":
            return verdict("serve", proof, "the same phrases in another order, each in its role")
        ratio = difflib.SequenceMatcher(None, cached.low, query.low, autojunk=False).ratio()
        edit = ratio >= self.settings.near_duplicate_ratio
        vetoes = [
            ("number", _number_veto(cached, query)),
            ("negation", _negation_veto(cached, query)),
            ("direction", _direction_veto(cached, query, _OPPOSITE_STEMS)),
            ("direction", _role_veto(cached, query)),
        ]
        if edit:
            vetoes.append(("direction", _direction_veto(cached, query, _RELATIVE_OPPOSITE_STEMS)))
        else:
            vetoes.append(("scope", _scope_veto(cached, query, self.settings)))
            vetoes.append(("entity", _entity_veto(cached, query)))
        for kind, veto in vetoes:
            if not veto:
                continue
            # A small edit that trips a veto is a trap, and so is any task whose numbers differ or
            # that negates what the other asks. A rewrite shares too few words for the other
            # vetoes to be sure: a near one is offered with what the veto saw, for the user to judge.
            soft = kind not in _HARD_VETOES
            if soft and not edit and nearest and candidate.similarity >= self.settings.doubtful_offer_min:
                doubt = f"perhaps the same task, worded differently ({cosine}), but {veto}"
                return verdict("offer", kind, doubt)
            return verdict("miss", kind, veto)
        if edit:
            return self._judge_edit(cached, query, verdict, vectors)
        if not nearest:
            return verdict("miss", "not_nearest", f"worded differently and not the nearest entry ({cosine})")
        if candidate.similarity >= self.settings.paraphrase_min:
            return verdict("offer", "paraphrase", f"maybe the same task, worded differently ({cosine})")
        return verdict("miss", "low_similarity", f"worded differently and not similar enough ({cosine})")

    def _judge_edit(
        self,
        cached: _Words,
        query: _Words,
        verdict: Callable[[Decision, str, str], Verdict],
        vectors: dict[str, npt.NDArray[np.float32]],
    ) -> Verdict:
        if cached.content == query.content:
            return verdict("offer", "cosmetic", "maybe the same task: only small words differ")
        if sorted(cached.content) == sorted(query.content):
            return verdict(
                "miss", "direction", "the same words in another order: who does what may have changed"
            )
        matcher = difflib.SequenceMatcher(None, cached.content, query.content, autojunk=False)
        changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
        spans = [(cached.content_raw[i1:i2], query.content_raw[j1:j2]) for _, i1, i2, j1, j2 in changes]
        changed = [w for a, b in spans for w in (*a, *b)]
        if cached.numbers and cached.numbers == query.numbers and all(map(is_quantity_word, changed)):
            shown = ", ".join(f"{_quote(a)} -> {_quote(b)}" for a, b in spans)
            why = f"maybe the same task, a quantity written another way: {shown}"
            return verdict("offer", "quantity", why)
        inserted = [words for (tag, *_), (_, words) in zip(changes, spans, strict=True) if tag == "insert"]
        deleted = [words for (tag, *_), (words, _) in zip(changes, spans, strict=True) if tag == "delete"]
        if all(tag == "insert" for tag, *_ in changes):
            return verdict("miss", "scope", f"the query asks for more: {_quote(_flat(inserted))}")
        if all(tag == "delete" for tag, *_ in changes):
            return verdict("miss", "scope", f"the query asks for less: {_quote(_flat(deleted))} left out")
        replaced = [(a, b) for (tag, *_), (a, b) in zip(changes, spans, strict=True) if tag == "replace"]
        if len(replaced) == len(changes) and len(replaced) <= self.settings.max_synonym_spans:
            for a, b in replaced:
                narrower = _qualified(a, b)
                if narrower:
                    return verdict("miss", "entity", narrower)
                # A name replaced by another name is a swap however close the two embed
                # ("Spanish" -> "Portuguese").
                only_a = [w for w in a if w.lower() in cached.names and not _mentions(w.lower(), query)]
                only_b = [w for w in b if w.lower() in query.names and not _mentions(w.lower(), cached)]
                if only_a and only_b:
                    return verdict("miss", "entity", f"different things named: {only_a[0]} vs {only_b[0]}")
            texts = [" ".join(a) for a, _ in replaced] + [" ".join(b) for _, b in replaced]
            embedded = self._vectors(texts, vectors)
            n = len(replaced)
            closeness = [float(embedded[k] @ embedded[n + k]) for k in range(n)]
            if min(closeness) >= self.settings.synonym_min:
                shown = ", ".join(f"{_quote(a)} -> {_quote(b)}" for a, b in replaced)
                return verdict("offer", "synonym", f"maybe the same task, with other words: {shown}")
            worst = int(np.argmin(closeness))
            a, b = replaced[worst]
            named = any(w.lower() in cached.names for w in a) or any(w.lower() in query.names for w in b)
            kind = "entity" if named else "edit"
            return verdict("miss", kind, f"{_quote(a)} became {_quote(b)}, not a synonym")
        a, b = spans[0]
        return verdict("miss", "edit", f"the task was changed: {_quote(a)} -> {_quote(b)}")

    def _vectors(
        self, texts: Sequence[str], cache: dict[str, npt.NDArray[np.float32]]
    ) -> list[npt.NDArray[np.float32]]:
        missing = sorted({t for t in texts if t not in cache})
        if missing:
            for text, vector in zip(missing, self._embed(missing), strict=True):
                cache[text] = np.asarray(vector, dtype=np.float32)
        return [cache[t] for t in texts]


def _qualified(a: Sequence[str], b: Sequence[str]) -> str | None:
    """Is one span the other with a qualifier added ("Levenshtein" -> "Damerau-Levenshtein",
    "SHA-256" -> "HMAC-SHA256")? A narrower compound name names another thing."""
    text_a, text_b = " ".join(a).lower(), " ".join(b).lower()
    if not any(c in text_a + text_b for c in "-_/0123456789"):
        return None
    bare_a, bare_b = re.sub(r"[^a-z0-9]", "", text_a), re.sub(r"[^a-z0-9]", "", text_b)
    if bare_a != bare_b and len(min(bare_a, bare_b, key=len)) >= 3 and (bare_a in bare_b or bare_b in bare_a):
        return f"{_quote(a)} and {_quote(b)} name different things"
    return None


def _flat(spans: Sequence[Sequence[str]]) -> list[str]:
    return [w for span in spans for w in span]


def _normalised(text: str) -> str:
    return _FINAL_PUNCTUATION.sub("", " ".join(text.split()).lower())
