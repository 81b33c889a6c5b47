"""Small model files for the install tests: GGUF headers written by hand, and wheels holding parts.

A GGUF header is the magic, the version, two counts and typed key/value pairs, little-endian
(see facilitair_tui/gguf.py). Writing one here, independently of the reader, keeps the reader
honest; arrays are included because real headers have large ones the reader must skip.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def gguf_bytes(
    name: str = "Tiny Test Model",
    architecture: str = "llama",
    *,
    chat_template: str | None = CHATML,
    licence: str | None = None,
    version: int = 3,
    padding: int = 0,
) -> bytes:
    """A GGUF header with no tensors (enough for every check short of loading it), then
    ``padding`` bytes standing for the tensor data."""
    pairs: list[bytes] = [
        _string("general.architecture") + struct.pack("<I", 8) + _string(architecture),
        _string("general.name") + struct.pack("<I", 8) + _string(name),
        _string(f"{architecture}.context_length") + struct.pack("<I", 4) + struct.pack("<I", 2048),
        # An array of strings and one of floats, as a tokenizer's vocabulary and scores are.
        _string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 3)
        + b"".join(_string(t) for t in ("<s>", "a", "b")),
        _string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 0.0, -1.0, -2.0),
        _string("tokenizer.ggml.add_bos_token") + struct.pack("<I?", 7, False),
    ]
    if licence is not None:
        pairs.append(_string("general.license") + struct.pack("<I", 8) + _string(licence))
    if chat_template is not None:
        pairs.append(_string("tokenizer.chat_template") + struct.pack("<I", 8) + _string(chat_template))
    header = b"GGUF" + struct.pack("<IQQ", version, 0, len(pairs)) + b"".join(pairs)
    return header + bytes(range(256)) * (padding // 256) + bytes(padding % 256)


def write_wheel(directory: Path, project: str, version: str, members: dict[str, bytes]) -> Path:
    """A wheel pip can download from a local find-links directory, holding ``members``."""
    module = project.replace("-", "_")
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, data in members.items():
            wheel.writestr(member, data)
        info = f"{module}-{version}.dist-info"
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path
