"""What the semantic cache keeps on disk, as msgspec structs (never pickles).

* ``entry:<id>``: an ``EntryRecord`` (JSON): the task, the context, the final output and the
  per-chunk syntheses, models, cost and duration of the original run, created-at.
* ``vec:<id>``: a ``VectorRecord`` (msgpack): the task's embedding, the model that made it and
  the entry's context profile, from which the vector index can always be rebuilt.
* ``hits:<id>`` / ``last_hit:<id>``: counters kept apart, so a hit never rewrites the entry.

A record whose format is newer than ours, or that does not decode, is "broken": it is skipped
with a warning and never served.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ..core import events as ev

FORMAT = 1

Scalar = str | int | float | bool | None
T = TypeVar("T")


class EntryRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    format: int = FORMAT
    id: str
    task: str
    context: dict[str, str]  # as given, for showing
    profile: str  # the normalised context's key (the index namespace)
    output: str
    created_at: float  # Unix time
    expires_at: float | None
    chunks: list[str] = []
    syntheses: list[ev.Synthesis] = []
    models: dict[str, str] = {}
    strategy: str = ""
    workflow: str = ""
    cost_usd: float | None = None
    duration_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    session_id: str = ""
    # The feedback that steered the run (and what a fork changed): never served to a plain run.
    feedback: list[str] = []
    metadata: dict[str, Scalar] = {}


class VectorRecord(msgspec.Struct, kw_only=True):
    model: str
    profile: str
    vector: bytes  # float32, native order


class BrokenRecord(ValueError):
    """A stored value that is not a record this version can read."""


_entry_decoder = msgspec.json.Decoder(EntryRecord)
_vector_decoder = msgspec.msgpack.Decoder(VectorRecord)


def encode_entry(record: EntryRecord) -> bytes:
    return msgspec.json.encode(record)


def decode_entry(raw: Any) -> EntryRecord:
    record = _decode(_entry_decoder, raw)
    if record.format > FORMAT:
        raise BrokenRecord(f"written by a newer Facilitair (cache format {record.format})")
    return record


def encode_vector(record: VectorRecord) -> bytes:
    return msgspec.msgpack.encode(record)


def decode_vector(raw: Any) -> VectorRecord:
    return _decode(_vector_decoder, raw)


def _decode(decoder: msgspec.json.Decoder[T] | msgspec.msgpack.Decoder[T], raw: Any) -> T:
    if not isinstance(raw, bytes):
        raise BrokenRecord(f"a {type(raw).__name__} where a cache record should be")
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BrokenRecord(str(exc)) from None
