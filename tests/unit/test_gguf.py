"""Reading a GGUF header: what a file says it is, and a clear refusal of anything else."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from facilitair_tui.embedded_models import gguf
from tests.support.model_files import CHATML, gguf_bytes


def _write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_header_gives_name_architecture_licence_and_chat_template(tmp_path: Path) -> None:
    path = _write(tmp_path, gguf_bytes("Tiny", "qwen2", licence="apache-2.0", padding=1000))
    header = gguf.read_header(path)
    assert (header.version, header.tensor_count) == (3, 0)
    assert (header.name, header.architecture, header.licence) == ("Tiny", "qwen2", "apache-2.0")
    assert header.chat_template == CHATML
    # Scalars are kept, arrays (the vocabulary) skipped.
    assert header.metadata["qwen2.context_length"] == 2048
    assert header.metadata["tokenizer.ggml.add_bos_token"] is False
    assert "tokenizer.ggml.tokens" not in header.metadata
    assert gguf.is_gguf(path)


def test_version_2_is_read_too(tmp_path: Path) -> None:
    assert gguf.read_header(_write(tmp_path, gguf_bytes(version=2))).version == 2


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"PK\x03\x04 a zip file, not a model", r"is not a GGUF model file \(it starts with b'PK\\x03\\x04'"),
        (b"GGUF" + struct.pack("<I", 1) + bytes(16), "is GGUF version 1; llama.cpp reads versions 2 and 3"),
        (gguf_bytes()[:60], r"ends inside its header \(the file is truncated\)"),
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 40), "has a damaged header"),
        (b"", "is not a GGUF model file"),
    ],
    ids=["zip", "version-1", "truncated", "absurd-length", "empty"],
)
def test_anything_else_is_refused_with_the_reason(tmp_path: Path, data: bytes, says: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(gguf.NotGGUF, match=says) as refused:
        gguf.read_header(path)
    assert str(refused.value).startswith(str(path))


def test_is_gguf_is_a_cheap_check_of_the_start(tmp_path: Path) -> None:
    assert not gguf.is_gguf(_write(tmp_path, b"GGUF"))
    assert not gguf.is_gguf(_write(tmp_path, b"GGUF" + struct.pack("<I", 7)))
    assert not gguf.is_gguf(tmp_path / "missing.gguf")
    assert gguf.is_gguf(_write(tmp_path, gguf_bytes()[:8]))
