"""The semantic cache: past solutions on disk (diskcache), found by task meaning within the same
context profile (the native embedder and vector index), checked by the task matcher.

Layout of a cache directory (0700):

* ``cache.db`` (diskcache, SQLite in WAL mode): the records of ``records.py``, entries and their
  vectors written with the TTL as their expiry, hit counters, statistics, and the index's
  generation number;
* ``index.vec``: the vector index, saved after each change. It is only an accelerator: when it
  is missing, corrupt, from another embedding model or older than the records (another process
  wrote since), it is rebuilt from the ``vec:`` records.

Several processes may share a directory: writes take a lock in the database, bump the
generation and save the index; a reader whose generation is behind reloads. Nothing here
crashes on bad data: a broken record is skipped with a warning and never served, a cache that
can't be written says so and the session goes on.
"""

from __future__ import annotations

import builtins
import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import diskcache  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from ..core import events as ev
from ..core.cache import DEFAULT_WORKFLOW, Answerer, CachedAnswer, CacheDecision, CacheMiss, SolvedSession
from ..library import CachedSolution, age_words
from ..paths import ensure_private_dir
from . import records as rec
from .matching import Candidate, MatchSettings, TaskMatcher, Verdict
from .profile import Profile, display_context, profile_of

DAY_S = 86_400.0
INDEX_FILE = "index.vec"
_GEN, _FILE_GEN, _FILE_MODEL, _LOCK = "index:gen", "index:file_gen", "index:model", "index:lock"
_LOOKUPS, _HITS, _SAVED_MICRO_USD, _SAVED_MS = (
    "stats:lookups",
    "stats:hits",
    "stats:saved_uusd",
    "stats:saved_ms",
)
_OFFERS, _ACCEPTED, _DECLINED = "stats:offers", "stats:accepted", "stats:declined"
# The put() keywords that fill the entry's own fields; any other keyword goes to ``metadata``.
_FIELDS = frozenset(
    {"chunks", "syntheses", "models", "strategy", "workflow", "cost_usd", "duration_s"}
    | {"input_tokens", "output_tokens", "session_id", "feedback"}
)


class CacheError(Exception):
    """The cache can't be used; the message says why and what to do."""


class CacheDamaged(CacheError):
    """The cache's database is not a database any more; setting it aside is the way out."""


class TextEmbedder(Protocol):
    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class CacheSettings:
    ttl_s: float = 7 * DAY_S
    size_limit_bytes: int = 512 * 1024 * 1024
    top_k: int = 5  # same-profile candidates the matcher sees
    # Context fields that never change an answer (all others must match exactly).
    ignore_context: tuple[str, ...] = ()
    match: MatchSettings = field(default_factory=MatchSettings)


@dataclass(frozen=True)
class Match:
    """A cached solution for a request: served (proven the same request, ``decision`` "serve")
    or offered (close, but only the user can say it answers the request: "offer")."""

    entry_id: str
    similarity: float
    output: str
    matched_on: str  # what matched and how, in one sentence; for an offer, what differs
    kind: str  # the matcher's word for it: identical, cosmetic, paraphrase, ...
    solution: CachedSolution
    chunks: list[str]
    syntheses: list[ev.Synthesis]
    decision: CacheDecision = "serve"


@dataclass(frozen=True)
class Decision:
    """The answer to "would this request hit, and why" (``SemanticCache.explain``)."""

    hit: bool  # served
    kind: str
    reason: str
    entry_id: str | None = None
    similarity: float | None = None
    match: Match | None = None  # the entry served or offered
    warnings: tuple[str, ...] = ()
    task: str = ""  # the entry's task (served, offered, or the nearest turned down)

    @property
    def decision(self) -> str:
        """ "serve", "offer" or "miss"."""
        return self.match.decision if self.match else "miss"

    def as_dict(self) -> dict[str, Any]:
        found = self.match.solution if self.match else None
        return {
            "hit": self.hit,
            "decision": self.decision,
            "kind": self.kind,
            "reason": self.reason,
            "entry_id": self.entry_id,
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "task": found.task if found else (self.task or None),
            "context": found.context if found else None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CacheStats:
    entries: int
    lookups: int
    hits: int  # served, and offers the user took
    saved_usd: float
    saved_s: float
    size_bytes: int
    directory: str
    offers: int = 0  # lookups that offered a close entry
    accepted: int = 0  # offers the user took
    declined: int = 0  # offers the user turned down (ran fresh)

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.lookups if self.lookups else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "lookups": self.lookups,
            "hits": self.hits,
            "hit_rate": self.hit_rate,
            "offers": self.offers,
            "accepted": self.accepted,
            "declined": self.declined,
            "saved_usd": round(self.saved_usd, 6),
            "saved_s": round(self.saved_s, 3),
            "size_bytes": self.size_bytes,
            "directory": self.directory,
        }


_NO_CANDIDATE = "no cached task in this context is similar enough"


def _answerer_of(entry: rec.EntryRecord) -> Answerer:
    return Answerer(entry.workflow or DEFAULT_WORKFLOW, dict(entry.models), tuple(entry.feedback))


def model_id(embedder: TextEmbedder, name: str) -> str:
    return f"{name}/{embedder.dim}"


class SemanticCache:
    """Past solutions, served again only when task and context truly match. See the module docs."""

    def __init__(
        self,
        directory: Path,
        db: diskcache.Cache,
        *,
        settings: CacheSettings,
        embedder: TextEmbedder | None,
        embedder_name: str,
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.settings = settings
        self._db = db
        self._embedder: TextEmbedder | None = embedder  # loaded on first use when None
        self._embedder_name = embedder_name
        self._clock = clock
        self._lock = threading.RLock()
        self._index: Any = None  # VectorIndex, loaded on first use
        self._gen = -1
        self._matcher: TaskMatcher | None = None
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._batch_depth = 0  # inside ``batch()``: the index is saved once, at the end

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        settings: CacheSettings | None = None,
        match: MatchSettings | None = None,
        embedder: TextEmbedder | None = None,
        embedder_name: str = "all-minilm-l6-v2",
        clock: Callable[[], float] = time.time,
    ) -> SemanticCache:
        """Open (or create) the cache in ``directory``. The embedder loads on first use unless
        one is given. Raises ``CacheError`` when the directory or its database can't be used."""
        settings = settings or CacheSettings()
        if match is not None:
            settings = CacheSettings(**{**settings.__dict__, "match": match})
        path = Path(directory).expanduser()
        try:
            ensure_private_dir(path)
            db = diskcache.Cache(
                str(path),
                timeout=10,
                size_limit=settings.size_limit_bytes,
                eviction_policy="least-recently-stored",
            )
        except sqlite3.DatabaseError as exc:
            raise CacheDamaged(
                f"the cache database in {path} is damaged ({exc}); run `facilitair cache clear` to set it "
                "aside and start an empty cache"
            ) from None
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the cache in {path}: {exc}") from None
        return cls(path, db, settings=settings, embedder=embedder, embedder_name=embedder_name, clock=clock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SemanticCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the public API

    def put(
        self,
        task: str,
        context: Mapping[str, object],
        output: str,
        *,
        created_at: float | None = None,
        workflow: str = DEFAULT_WORKFLOW,
        models: Mapping[str, str] | None = None,
        feedback: Sequence[str] = (),
        **metadata: Any,
    ) -> str:
        """Store a solution; returns its entry id. What it answers is the task, the context, and
        who answered: the ``workflow``, the ``models`` of its roles (None: the default
        strategy's) and the ``feedback`` that steered it. The same task (same words) answered
        the same way replaces the earlier entry; a steered one is always its own entry. Raises
        ``CacheError`` when it can't be written (a full disk).

        ``created_at`` (Unix time) keeps an imported solution's own age: it expires when it would
        have where it was made, and one already past the TTL is refused (``ValueError``)."""
        if not task.strip():
            raise ValueError("the task is empty")
        now = self._clock()
        if created_at is not None:
            created_at = min(created_at, now)
            if created_at + self.settings.ttl_s <= now:
                days = self.settings.ttl_s / DAY_S
                raise ValueError(
                    f"it was cached {age_words(now - created_at)}, and the cache keeps a solution "
                    f"{days:g} days (the ttl_days setting)"
                )
        profile = profile_of(context, self.settings.ignore_context)
        fields = {key: metadata.pop(key) for key in list(metadata) if key in _FIELDS}
        fields.update(
            workflow=workflow or DEFAULT_WORKFLOW, models=dict(models or {}), feedback=list(feedback)
        )
        answerer = Answerer(fields["workflow"], fields["models"], tuple(fields["feedback"]))
        extra = {key: value for key, value in metadata.items() if isinstance(value, rec.Scalar)}
        vector = self._embed([task])[0]
        made = now if created_at is None else created_at
        with self._lock, self._writing():
            self._sync()
            replaced = None if answerer.feedback else self._same_task(task, vector, profile, answerer)
            entry_id = replaced or uuid.uuid4().hex[:12]
            record = rec.EntryRecord(
                id=entry_id,
                task=task,
                context=display_context(context),
                profile=profile.key,
                output=output,
                created_at=made,
                expires_at=made + self.settings.ttl_s,
                metadata=extra,
                **fields,
            )
            try:  # what is stored must read back: check the caller's types now, not at lookup
                rec.decode_entry(rec.encode_entry(record))
            except (rec.BrokenRecord, TypeError) as exc:
                raise ValueError(f"cannot cache this solution: {exc}") from None
            vec = rec.VectorRecord(model=self._model_id(), profile=profile.key, vector=vector.tobytes())
            expire = made + self.settings.ttl_s - now
            self._db.set(f"entry:{entry_id}", rec.encode_entry(record), expire=expire)
            self._db.set(f"vec:{entry_id}", rec.encode_vector(vec), expire=expire)
            self._db.set(f"hits:{entry_id}", 0, expire=expire)
            self._db.delete(f"last_hit:{entry_id}")
            self._index.add([entry_id], vector[None, :], namespace=profile.key)
            self._changed()
        return entry_id

    def lookup(
        self,
        task: str,
        context: Mapping[str, object],
        *,
        workflow: str = DEFAULT_WORKFLOW,
        models: Mapping[str, str] | None = None,
        feedback: Sequence[str] = (),
    ) -> Match | None:
        """The cached solution for this request, served or offered (``Match.decision``), or None.
        Who would answer it (``workflow``, ``models``, ``feedback``, as in ``put``) must be who
        answered the entry for it to be served; another answerer's entry is at most offered.
        The lookup counts in the statistics, and a served one as a hit."""
        asking = Answerer(workflow, dict(models or {}), tuple(feedback))
        return self.explain(task, context, answerer=asking, record=True).match

    def explain(
        self,
        task: str,
        context: Mapping[str, object],
        *,
        answerer: Answerer | None = None,
        record: bool = False,
    ) -> Decision:
        """Whether this request would be served or offered, and why, without running anything.
        With ``record``, the lookup counts in the statistics (what ``lookup`` does)."""
        asking = answerer or Answerer()
        profile = profile_of(context, self.settings.ignore_context)
        vector = self._embed([task])[0]
        warnings_before = len(self.warnings)
        with self._lock:
            self._sync()
            settings = self.settings
            found = self._index.search(
                vector, settings.top_k, settings.match.candidate_floor, namespace=profile.key
            )
            entries: dict[str, rec.EntryRecord] = {}
            candidates = []
            for entry_id, similarity in found:
                entry = self._entry(entry_id)
                if entry is None or entry.profile != profile.key:
                    continue
                entries[entry_id] = entry
                candidates.append(Candidate(entry_id, entry.task, float(similarity)))
            verdicts = self._matcher_for().judge_all(task, candidates)
            match, verdict = self._decide(verdicts, entries, asking)
            if verdict is None:
                verdict = verdicts[0] if verdicts else Verdict("miss", "no_candidate", _NO_CANDIDATE)
            if not candidates:
                verdict = self._elsewhere(vector, profile) or verdict
            if record:
                self._count(match)
        nearest = entries.get(verdict.entry_id or "")
        return Decision(
            hit=match is not None and match.decision == "serve",
            kind=verdict.kind,
            reason=match.matched_on if match is not None else verdict.reason,
            entry_id=verdict.entry_id,
            similarity=verdict.similarity,
            match=match,
            warnings=tuple(self.warnings[warnings_before:]),
            task=nearest.task if nearest is not None else "",
        )

    def _decide(
        self, verdicts: Sequence[Verdict], entries: Mapping[str, rec.EntryRecord], asking: Answerer
    ) -> tuple[Match | None, Verdict | None]:
        """Serve the first entry proven the same task and answered as this request would be;
        else offer the first one that is close (another answerer's proven task counts as close)."""
        offer: tuple[Verdict, list[str]] | None = None
        for verdict in verdicts:
            entry = entries.get(verdict.entry_id or "")
            if entry is None or verdict.decision == "miss":
                continue
            differs = asking.differences(_answerer_of(entry))
            if verdict.decision == "serve" and not differs:
                return self._match(verdict, entry, "serve", []), verdict
            if offer is None:
                offer = verdict, differs
        if offer is None:
            return None, None
        verdict, differs = offer
        return self._match(verdict, entries[verdict.entry_id or ""], "offer", differs), verdict

    def answered(self, entry_id: str, accepted: bool) -> None:
        """The user's answer to an offer of ``entry_id``: counted, and an accepted one as a hit."""
        with self._lock:
            try:
                self._db.incr(_ACCEPTED if accepted else _DECLINED)
                entry = self._entry(entry_id) if accepted else None
                if entry is not None:
                    self._count_hit(self._solution(entry))
            except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
                self._warn(f"the cache's statistics could not be updated ({exc})")

    # ----------------------------------------------------------------- the engine's port

    def check(self, task: str, context: Mapping[str, str], answerer: Answerer) -> CachedAnswer | CacheMiss:
        """``core.cache.SolutionCache.check``: a lookup, answered in the engine's terms."""
        decision = self.explain(task, context, answerer=answerer, record=True)
        match = decision.match
        if match is None:
            return CacheMiss(
                reason=decision.reason,
                entry_id=decision.entry_id,
                similarity=decision.similarity,
                notes=decision.warnings,
                task=decision.task,
            )
        found = match.solution
        return CachedAnswer(
            entry_id=match.entry_id,
            similarity=match.similarity,
            matched_on=match.matched_on,
            output=match.output,
            chunks=match.chunks,
            syntheses=match.syntheses,
            context=found.context,
            models=found.models,
            cost_usd=found.cost_usd,
            duration_s=found.duration_s,
            age_s=max(0.0, self._clock() - found.created_at.timestamp()),
            imported=found.imported,
            notes=decision.warnings,
            decision=match.decision,
            task=found.task,
        )

    def remember(self, solved: SolvedSession) -> str:
        """``core.cache.SolutionCache.remember``: store a session that finished ``done``."""
        return self.put(
            solved.task,
            solved.context,
            solved.output,
            chunks=solved.chunks,
            syntheses=solved.syntheses,
            models=solved.models,
            strategy=solved.strategy,
            workflow=solved.workflow,
            cost_usd=solved.cost_usd,
            duration_s=solved.duration_s,
            input_tokens=solved.input_tokens,
            output_tokens=solved.output_tokens,
            session_id=solved.session_id,
            feedback=solved.feedback,
        )

    # ----------------------------------------------------------------- browsing (CacheCatalog)

    def list(self, query: str = "", context_filter: dict[str, str] | None = None) -> list[CachedSolution]:
        """Every live entry matching ``query`` (task and context words), newest first."""
        with self._lock:
            found = [
                solution
                for entry in self._entries()
                if (solution := self._solution(entry)).matches(query, context_filter)
            ]
        return sorted(found, key=lambda s: s.created_at, reverse=True)

    def get(self, id: str) -> CachedSolution | None:
        with self._lock:
            entry = self._entry(id)
            return None if entry is None else self._solution(entry)

    def resolve(self, prefix: str) -> builtins.list[str]:
        """The ids of live entries starting with ``prefix`` (so a user may type a few characters)."""
        prefix = prefix.strip()
        if not prefix:
            return []
        with self._lock:
            ids = [key[6:] for key in self._keys("entry:") if key[6:].startswith(prefix)]
            return sorted(i for i in ids if self._entry(i) is not None)

    def delete(self, id: str) -> bool:
        with self._lock, self._writing():
            self._sync()
            existed = self._db.delete(f"entry:{id}")
            for prefix in ("vec:", "hits:", "last_hit:"):
                self._db.delete(f"{prefix}{id}")
            self._index.remove([id])
            self._changed()
        return bool(existed)

    def clear(self) -> int:
        """Remove every entry and the statistics; returns how many entries there were."""
        with self._lock, self._writing():
            count = sum(1 for _ in self._keys("entry:"))
            gen = int(self._db.get(_GEN, 0))
            self._db.clear()
            self._db.set(_GEN, gen)  # others must still see a change
            self._index = None
            self._sync()
            self._changed()
        return count

    def stats(self) -> CacheStats:
        with self._lock:
            entries = sum(1 for key in self._keys("entry:") if self._entry(key[6:]) is not None)
            return CacheStats(
                entries=entries,
                lookups=int(self._db.get(_LOOKUPS, 0)),
                hits=int(self._db.get(_HITS, 0)),
                saved_usd=int(self._db.get(_SAVED_MICRO_USD, 0)) / 1e6,
                offers=int(self._db.get(_OFFERS, 0)),
                accepted=int(self._db.get(_ACCEPTED, 0)),
                declined=int(self._db.get(_DECLINED, 0)),
                saved_s=int(self._db.get(_SAVED_MS, 0)) / 1e3,
                size_bytes=int(self._db.volume()),
                directory=str(self.directory),
            )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Many puts, one index save (``import``): the index is saved when the block ends."""
        with self._lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._index is not None:
                    with self._writing():
                        if int(self._db.get(_GEN, 0)) != self._gen:  # another process wrote too
                            self._index = None
                            self._sync()  # rebuilt from the records: theirs and ours
                        self._changed()

    def records(self) -> Iterator[rec.EntryRecord]:
        """Every live, readable entry (for export)."""
        with self._lock:
            yield from self._entries()

    def warm(self) -> None:
        """Load the embedder and the index now (the TUI does this at start, off the UI thread).
        A failure is only noted: the first lookup meets it again and the session reports it."""
        try:
            with self._lock:
                self._embed(["warm up"])
                self._sync()
        except Exception as exc:
            self._warn(f"the cache could not load ({exc})")

    # ----------------------------------------------------------------- internals

    def _embedder_now(self) -> TextEmbedder:
        if self._embedder is None:
            from ..native import Embedder

            self._embedder = Embedder.load()
        return self._embedder

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(self._embedder_now().encode(list(texts)), dtype=np.float32)

    def _model_id(self) -> str:
        return model_id(self._embedder_now(), self._embedder_name)

    def _matcher_for(self) -> TaskMatcher:
        if self._matcher is None:
            self._matcher = TaskMatcher(self._embed, self.settings.match)
        return self._matcher

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warnings.append(message)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the cross-process write lock; turn a database failure into a CacheError."""
        try:
            with diskcache.Lock(self._db, _LOCK, expire=60):
                yield
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise CacheError("the disk is full; the solution was not cached") from None
            raise CacheError(f"the cache could not be written: {exc}") from None
        except OSError as exc:
            raise CacheError(f"the cache could not be written: {exc.strerror or exc}") from None

    def _keys(self, prefix: str) -> Iterator[str]:
        for key in self._db.iterkeys():
            if isinstance(key, str) and key.startswith(prefix):
                yield key

    def _entry(self, entry_id: str) -> rec.EntryRecord | None:
        raw = self._db.get(f"entry:{entry_id}")
        if raw is None:
            return None
        try:
            entry = rec.decode_entry(raw)
        except rec.BrokenRecord as exc:
            self._warn(f"cache entry {entry_id} is unreadable ({exc}); it is skipped")
            return None
        if entry.id != entry_id:
            self._warn(f"cache entry {entry_id} holds another entry ({entry.id}); it is skipped")
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            return None
        return entry

    def _entries(self) -> Iterator[rec.EntryRecord]:
        for key in self._keys("entry:"):
            entry = self._entry(key[6:])
            if entry is not None:
                yield entry

    def _same_task(
        self, task: str, vector: npt.NDArray[np.float32], profile: Profile, answerer: Answerer
    ) -> str | None:
        """The entry this one replaces: the same words, answered the same way, never steered."""
        words = " ".join(task.split()).casefold()
        for entry_id, _ in self._index.search(vector, 8, 0.999, namespace=profile.key):
            entry = self._entry(entry_id)
            if (
                entry is not None
                and " ".join(entry.task.split()).casefold() == words
                and not answerer.differences(_answerer_of(entry))
            ):
                return str(entry_id)
        return None

    def _sync(self) -> None:
        """Make the in-memory index current: reload the saved one, or rebuild it from the records."""
        from ..native import IndexFileError, VectorIndex

        gen = int(self._db.get(_GEN, 0))
        if self._index is not None and gen == self._gen:
            return
        model = self._model_id()
        dim = self._embedder_now().dim
        path = self.directory / INDEX_FILE
        if self._db.get(_FILE_GEN) == gen and self._db.get(_FILE_MODEL) == model and path.is_file():
            try:
                index = VectorIndex.load(path)
                if index.dim == dim:
                    self._index, self._gen = index, gen
                    return
            except (IndexFileError, OSError) as exc:
                self._warn(f"the cache's index file could not be read ({exc}); rebuilding it")
        self._index, self._gen = self._rebuild(VectorIndex(dim), model, dim), gen

    def _rebuild(self, index: Any, model: str, dim: int) -> Any:
        by_profile: dict[str, tuple[list[str], list[npt.NDArray[np.float32]]]] = {}
        foreign = broken = 0
        for key in self._keys("vec:"):
            raw = self._db.get(key)
            if raw is None:
                continue
            try:
                vec = rec.decode_vector(raw)
            except rec.BrokenRecord:
                broken += 1
                continue
            vector = np.frombuffer(vec.vector, dtype=np.float32)
            if vec.model != model or vector.shape != (dim,) or not np.isfinite(vector).all():
                foreign += 1
                continue
            ids, rows = by_profile.setdefault(vec.profile, ([], []))
            ids.append(key[4:])
            rows.append(vector)
        for profile, (ids, rows) in by_profile.items():
            with contextlib.suppress(ValueError):  # a zero vector: leave that one entry out
                index.add(ids, np.stack(rows), namespace=profile)
        if foreign:
            self._warn(
                f"{foreign} cached entries were embedded by another model and are not searched; "
                "`facilitair cache clear` removes them"
            )
        if broken:
            self._warn(f"{broken} cached vectors are unreadable and are not searched")
        return index

    def _changed(self) -> None:
        """After a write: bump the generation and save the index, so other processes follow."""
        if self._batch_depth:
            return
        gen = int(self._db.incr(_GEN))
        self._gen = gen
        path = self.directory / INDEX_FILE
        try:
            self._index.save(path)
        except OSError as exc:  # the records are safe; others rebuild the index from them
            self._warn(f"the cache's index could not be saved ({exc.strerror or exc})")
            return
        self._db.set(_FILE_GEN, gen)
        self._db.set(_FILE_MODEL, self._model_id())

    def _elsewhere(self, vector: npt.NDArray[np.float32], profile: Profile) -> Verdict | None:
        """No candidate in this context: is the same task cached for another one? Say which."""
        settings = self.settings.match
        for entry_id, similarity in self._index.search(vector, 3, max(settings.candidate_floor, 0.9)):
            entry = self._entry(entry_id)
            if entry is None:
                continue
            other = profile_of(entry.context, self.settings.ignore_context)
            lines = profile.differences(other)
            if not lines:
                continue
            return Verdict(
                "miss",
                "context",
                "a solution to this task is cached for another context ("
                + "; ".join(lines[:3])
                + "): context fields must match",
                entry_id,
                float(similarity),
            )
        return None

    def _match(
        self, verdict: Verdict, entry: rec.EntryRecord, decision: CacheDecision, differs: Sequence[str]
    ) -> Match:
        similarity = verdict.similarity if verdict.similarity is not None else 1.0
        fields = ", ".join(key.replace("_", " ") for key in entry.context)
        shown = f"same {fields}" if fields else "no context on either side"
        why = "; ".join([verdict.reason, *differs])
        if decision == "offer" and verdict.decision == "serve":
            why = "the same task, but " + "; ".join(differs)
        return Match(
            entry_id=entry.id,
            similarity=similarity,
            output=entry.output,
            matched_on=f"{why}; {shown}",
            kind=verdict.kind,
            solution=self._solution(entry),
            chunks=list(entry.chunks),
            syntheses=list(entry.syntheses),
            decision=decision,
        )

    def _count(self, match: Match | None) -> None:
        try:
            self._db.incr(_LOOKUPS)
            if match is None:
                return
            if match.decision == "offer":
                self._db.incr(_OFFERS)
                return
            self._count_hit(match.solution)
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:  # statistics must not cost a hit
            self._warn(f"the cache's statistics could not be updated ({exc})")

    def _count_hit(self, entry: CachedSolution) -> None:
        """A solution used (served, or offered and taken): its hits and what it saved."""
        remaining = max(1.0, entry.created_at.timestamp() + self.settings.ttl_s - self._clock())
        self._db.incr(_HITS)
        self._db.incr(f"hits:{entry.id}")
        self._db.touch(f"hits:{entry.id}", expire=remaining)
        self._db.set(f"last_hit:{entry.id}", self._clock(), expire=remaining)
        if entry.cost_usd is not None:
            self._db.incr(_SAVED_MICRO_USD, round(entry.cost_usd * 1e6))
        self._db.incr(_SAVED_MS, round(entry.duration_s * 1e3))

    def _solution(self, entry: rec.EntryRecord) -> CachedSolution:
        hits = self._db.get(f"hits:{entry.id}", 0)
        last = self._db.get(f"last_hit:{entry.id}")
        hits = hits if isinstance(hits, int) else 0
        return CachedSolution(
            id=entry.id,
            task=entry.task,
            context=dict(entry.context),
            output=entry.output,
            syntheses=[s.text for s in entry.syntheses],
            models=dict(entry.models),
            cost_usd=entry.cost_usd,
            duration_s=entry.duration_s,
            created_at=datetime.fromtimestamp(entry.created_at, UTC),
            hits=hits,
            last_hit=datetime.fromtimestamp(last, UTC) if isinstance(last, (int, float)) else None,
            saved_usd=None if entry.cost_usd is None else hits * entry.cost_usd,
            imported=entry.metadata.get("imported") is True,
        )
