"""Reading a GGUF file's header: enough to tell a model file from anything else, and what it says it is.

A GGUF file starts with the magic ``GGUF``, a format version, the tensor count and a list of
typed key/value pairs (``general.name``, ``general.architecture``, ``tokenizer.chat_template``…),
all little-endian. We read that list and nothing after it, keep the scalar and string values and
skip the arrays (the tokenizer's vocabulary is most of the header). No llama.cpp is needed: the
installer and ``facilitair models add`` check files with this before anything loads them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
# Version 1 (2023) stored counts as 32-bit integers; llama.cpp reads only 2 and 3 today.
SUPPORTED_VERSIONS = (2, 3)
# No key or string value in a real model comes near this (a chat template is a few KB); a larger
# length means the bytes are not a GGUF header, and reading it would only allocate memory.
_MAX_STRING = 1 << 24

_SCALARS: dict[int, struct.Struct] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_STRING = 8
_ARRAY = 9
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

MetadataValue = int | float | bool | str


class NotGGUF(ValueError):
    """The file is not a GGUF model file this program can read; the message says why."""


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    tensor_count: int
    # Scalar and string values by key; arrays are left out.
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def text(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        return self.text("general.name")

    @property
    def architecture(self) -> str | None:
        return self.text("general.architecture")

    @property
    def licence(self) -> str | None:
        return self.text("general.license")

    @property
    def chat_template(self) -> str | None:
        return self.text("tokenizer.chat_template")


def read_header(path: Path) -> GGUFHeader:
    """The header of the GGUF file at ``path``. Raises NotGGUF, or OSError if it cannot be read."""
    with path.open("rb") as handle:
        try:
            return _read(handle)
        except (struct.error, UnicodeDecodeError) as exc:
            raise NotGGUF(f"{path} has a damaged GGUF header ({exc})") from None
        except NotGGUF as exc:
            raise NotGGUF(f"{path} {exc}") from None


def is_gguf(path: Path) -> bool:
    """Whether ``path`` starts like a GGUF file (magic and a known version): a cheap first check."""
    try:
        with path.open("rb") as handle:
            start = handle.read(8)
    except OSError:
        return False
    return len(start) == 8 and start[:4] == MAGIC and _U32.unpack(start[4:])[0] in SUPPORTED_VERSIONS


def _read(handle: BinaryIO) -> GGUFHeader:
    magic = handle.read(4)
    if magic != MAGIC:
        raise NotGGUF(f"is not a GGUF model file (it starts with {magic!r}, not {MAGIC!r})")
    version = _unpack(handle, _U32)
    if version not in SUPPORTED_VERSIONS:
        raise NotGGUF(f"is GGUF version {version}; llama.cpp reads versions 2 and 3")
    tensor_count = _unpack(handle, _U64)
    pairs = _unpack(handle, _U64)
    metadata: dict[str, MetadataValue] = {}
    for _ in range(pairs):
        key = _string(handle)
        kind = _unpack(handle, _U32)
        if kind == _ARRAY:
            _skip_array(handle)
        else:
            metadata[key] = _value(handle, kind)
    return GGUFHeader(version=version, tensor_count=tensor_count, metadata=metadata)


def _unpack(handle: BinaryIO, shape: struct.Struct) -> int:
    value: int = shape.unpack(_exactly(handle, shape.size))[0]
    return value


def _exactly(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise NotGGUF("ends inside its header (the file is truncated)")
    return data


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, _U64)
    if length > _MAX_STRING:
        raise NotGGUF(f"has a damaged header (a string of {length} bytes)")
    return _exactly(handle, length).decode("utf-8")


def _value(handle: BinaryIO, kind: int) -> MetadataValue:
    if kind == _STRING:
        return _string(handle)
    shape = _SCALARS.get(kind)
    if shape is None:
        raise NotGGUF(f"has a damaged header (unknown value type {kind})")
    value: MetadataValue = shape.unpack(_exactly(handle, shape.size))[0]
    return value


def _skip_array(handle: BinaryIO) -> None:
    kind = _unpack(handle, _U32)
    count = _unpack(handle, _U64)
    if kind == _STRING:
        for _ in range(count):
            length = _unpack(handle, _U64)
            if length > _MAX_STRING:
                raise NotGGUF(f"has a damaged header (a string of {length} bytes)")
            handle.seek(length, 1)
        return
    shape = _SCALARS.get(kind)
    if shape is None:  # arrays of arrays exist in the format but not in model headers
        raise NotGGUF(f"has a damaged header (an array of type {kind})")
    handle.seek(shape.size * count, 1)
