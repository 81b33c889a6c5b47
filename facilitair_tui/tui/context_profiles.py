"""Context profiles: named sets of context fields, kept in ``profiles.toml`` in the config dir.

The file is the user's: it is written with mode 0600 in a 0700 directory, and a file that cannot
be read is reported (``ProfileError`` names it) and never overwritten.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from facilitair_tui import paths

FILENAME = "profiles.toml"


class ProfileError(Exception):
    """The profiles file exists but cannot be used; the message names it and says what to do."""


def profiles_file() -> Path:
    return paths.config_dir() / FILENAME


def load_profiles(path: Path | None = None) -> dict[str, dict[str, str]]:
    path = path or profiles_file()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read the profiles file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(
            f"the profiles file {path} is not valid TOML ({exc}); fix or remove it to use profiles"
        ) from None
    table = data.get("profiles", {})
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ProfileError(
            f"the profiles file {path} should hold [profiles.NAME] tables; fix or remove it to use profiles"
        )
    return {
        name: {str(k): str(v) for k, v in fields.items() if isinstance(v, str | int | float)}
        for name, fields in table.items()
    }


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, except DEL, which TOML wants escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def dump_profiles(profiles: Mapping[str, Mapping[str, str]]) -> str:
    lines = ["# Facilitair context profiles (saved from the task entry screen)."]
    for name in sorted(profiles):
        lines.append("")
        lines.append(f"[profiles.{_toml_string(name)}]")
        lines.extend(f"{key} = {_toml_string(value)}" for key, value in profiles[name].items())
    return "\n".join(lines) + "\n"


def save_profile(name: str, fields: Mapping[str, str], path: Path | None = None) -> Path:
    """Add or replace one profile. Raises ProfileError (the file is left alone) if the existing
    file cannot be read."""
    path = path or profiles_file()
    profiles = load_profiles(path)
    profiles[name] = {key: value for key, value in fields.items() if value}
    paths.ensure_private_dir(path.parent)
    partial = path.with_name(path.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(dump_profiles(profiles))
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path
