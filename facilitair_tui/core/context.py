"""The user's context (language, frameworks, team size, ...): parsed and normalised.

Context decides whether an answer fits (the cache matches on it), so it is normalised once
here: keys lower-case with underscores, values with collapsed whitespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .provider import UsageError

# The fields the seeds and the TUI's task form name; other keys are accepted as given.
KNOWN_FIELDS = ("language", "frameworks", "team_size", "security_level", "compliance", "existing_stack")

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_VALUE_CHARS = 2000


class ContextError(UsageError):
    pass


def normalise_key(key: str) -> str:
    return re.sub(r"[\s-]+", "_", key.strip().lower())


def parse_context(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings; a repeated key keeps the last value."""
    context: dict[str, str] = {}
    for raw in pairs:
        key, sep, value = raw.partition("=")
        key = normalise_key(key)
        if not sep or not key:
            raise ContextError(f"--context {raw!r} is not KEY=VALUE (for example --context language=python)")
        if not _KEY.match(key):
            raise ContextError(
                f"--context key {key!r} must start with a letter and use only letters, digits and _"
            )
        value = " ".join(value.split())
        if not value:
            raise ContextError(f"--context {key}= has no value; give one or leave the key out")
        if len(value) > MAX_VALUE_CHARS:
            raise ContextError(f"--context {key} is longer than {MAX_VALUE_CHARS} characters")
        context[key] = value
    return context
