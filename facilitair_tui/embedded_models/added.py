"""GGUF files of the user's own: ``local:/path/to/model.gguf``, or a name given with
``facilitair models add NAME FILE``.

The names live in ``added-models.json`` in the data directory (0600): each one's path, and what
its GGUF header said when it was added. The file itself is never copied; it must still be a GGUF
file when a session uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..core.provider import ConfigurationError, UsageError
from . import gguf

REGISTRY_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class AddedModel:
    name: str
    path: Path
    gguf_name: str | None = None  # the header's general.name when it was added
    architecture: str | None = None
    licence: str | None = None  # the header's general.license, when it has one


def registry_file() -> Path:
    return paths.data_dir() / "added-models.json"


def is_path(model: str) -> bool:
    """Whether the model part of ``local:<model>`` is a file path rather than a name."""
    return "/" in model or "\\" in model or model.startswith("~") or model.lower().endswith(".gguf")


def check_file(path: Path, *, name: str | None = None) -> Path:
    """``path`` made absolute, if it is a readable GGUF file; else a ConfigurationError saying so."""
    path = path.expanduser().absolute()
    where = ""
    if name:
        where = f" (the file of local:{name}; point it at another with: facilitair models add {name} FILE)"
    if not path.exists():
        raise ConfigurationError(f"the model file {path} does not exist{where}")
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a file{where}; give the path of a .gguf model file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"cannot read the model file {path}: {exc.strerror or exc}{where}") from None
    if not gguf.is_gguf(path):
        raise ConfigurationError(
            f"{path} is not a GGUF model file{where}; llama.cpp runs GGUF files (version 2 or 3)"
        )
    return path


def load() -> dict[str, AddedModel]:
    """The models added by name; an unreadable registry is named with what to do."""
    file = registry_file()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot read {file} ({exc}); fix it or delete it and add your models again"
        ) from None
    try:
        return {
            name: AddedModel(
                name=name,
                path=Path(entry["path"]),
                gguf_name=entry.get("gguf_name"),
                architecture=entry.get("architecture"),
                licence=entry.get("licence"),
            )
            for name, entry in data["models"].items()
        }
    except (KeyError, TypeError, AttributeError):
        raise ConfigurationError(
            f"{file} is not a list of added models; fix it or delete it and add your models again"
        ) from None


def add(name: str, file: Path, *, reserved: Collection[str]) -> AddedModel:
    """Record ``file`` as ``local:<name>`` after checking it is a GGUF chat model. A name added
    before is pointed at the new file; ``reserved`` (the embedded models' names) are refused."""
    if not _NAME.fullmatch(name) or name.lower().endswith(".gguf"):
        raise UsageError(
            f"{name!r} cannot name a model: use letters, digits, '.', '_' and '-' (at most 64, "
            "not ending in .gguf)"
        )
    if name in reserved:
        raise UsageError(f"{name} is an embedded model's name; choose another")
    path = check_file(file)
    try:
        header = gguf.read_header(path)
    except gguf.NotGGUF as exc:
        raise ConfigurationError(str(exc)) from None
    if not header.chat_template:
        raise ConfigurationError(
            f"{path} has no chat template (tokenizer.chat_template) in its GGUF header; Facilitair formats "
            "each conversation with the model's own template: use the instruct or chat version of the model"
        )
    model = AddedModel(name, path, header.name, header.architecture, header.licence)
    _save({**load(), name: model})
    return model


def remove(name: str) -> AddedModel:
    models = load()
    if name not in models:
        known = ", ".join(models) or "none"
        raise ConfigurationError(f"no model was added as {name!r} (added: {known})")
    model = models.pop(name)
    _save(models)
    return model


def _save(models: dict[str, AddedModel]) -> None:
    data = {
        "version": REGISTRY_VERSION,
        "models": {
            m.name: {
                "path": str(m.path),
                "gguf_name": m.gguf_name,
                "architecture": m.architecture,
                "licence": m.licence,
            }
            for m in models.values()
        },
    }
    paths.ensure_private_dir(registry_file().parent)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    paths.write_private(registry_file(), text.encode("utf-8"), overwrite=True)
