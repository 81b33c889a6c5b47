"""Reading the synthesizer's answer: ask for a strict format, parse leniently.

Two shapes are understood: the line format the default workflow asks for
(``AGREED:`` / ``DEBATED:`` / ``CONFIDENCE:`` / ``MERGED:`` sections, headings and bold
markers tolerated) and a JSON object with the same keys. Anything else is kept verbatim as the
merged text with ``parsed=False``; a malformed synthesis never fails a session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .events import DebatedPoint


@dataclass(slots=True)
class ParsedSynthesis:
    agreed: list[str] = field(default_factory=list)
    debated: list[DebatedPoint] = field(default_factory=list)
    confidence: float | None = None
    text: str = ""
    parsed: bool = False


_KEYWORD = r"(agreed|debated|disputed|confidence|merged(?:\s+(?:result|text))?)"
# "AGREED: ..." / "**Agreed:** ..." (a colon is required), or a heading line "## Agreed".
_SECTION = re.compile(rf"^[ \t>*_-]*{_KEYWORD}[ \t*_]*:[ \t*_]*(.*)$", re.IGNORECASE)
_HEADING = re.compile(rf"^[ \t]*(?:#+|\*\*|__)[ \t]*{_KEYWORD}[ \t*_:]*()$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)\s*(%)?")
MAX_FENCED_SCAN = 16_000
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def _confidence(raw: str) -> float | None:
    match = _NUMBER.search(raw)
    if not match:
        return None
    value = float(match.group(1))
    if match.group(2) or value > 1.0:
        value /= 100.0
    return min(1.0, max(0.0, value))


def _bullets(lines: Sequence[str]) -> list[str]:
    items = []
    for line in lines:
        text = _BULLET.sub("", line).strip()
        if text and text.lower() not in {"none", "(none)", "n/a", "-"}:
            items.append(text)
    return items


def _debated(lines: Sequence[str], agents: Sequence[str]) -> list[DebatedPoint]:
    known = {a.lower(): a for a in agents}
    points = []
    for item in _bullets(lines):
        fields = [f.strip() for f in item.split("|")]
        point, positions = fields[0], {}
        for part in fields[1:]:
            who, sep, position = part.partition(":")
            name = known.get(who.strip().strip("*").lower())
            if sep and name:
                positions[name] = position.strip()
            elif part:
                point = f"{point} | {part}"
        if point:
            points.append(DebatedPoint(point=point, positions=positions))
    return points


def _from_json(raw: str, agents: Sequence[str]) -> ParsedSynthesis | None:
    # Fenced JSON is looked for only in answers of a synthesizer's size: the lazy pattern is
    # quadratic on long adversarial text, and a real synthesis is a few thousand characters.
    candidates = [m.group(1) for m in _FENCE.finditer(raw)] if len(raw) <= MAX_FENCED_SCAN else []
    stripped = raw.strip()
    if stripped.startswith("{"):
        candidates.append(stripped)
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and ({"agreed", "merged", "text"} & data.keys()):
            return _from_mapping(data, agents)
    return None


def _as_list(value: Any) -> list[Any]:
    """A JSON value as a list of items: models write a lone string (or number) for a list too."""
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list) else [value]


def _from_mapping(data: Mapping[str, Any], agents: Sequence[str]) -> ParsedSynthesis:
    agreed = [str(a).strip() for a in _as_list(data.get("agreed")) if str(a).strip()]
    debated = []
    for item in _as_list(data.get("debated")):
        if isinstance(item, Mapping):
            positions = item.get("positions") or {}
            debated.append(
                DebatedPoint(
                    point=str(item.get("point", "")).strip(),
                    positions={str(k): str(v) for k, v in positions.items() if str(k) in agents}
                    if isinstance(positions, Mapping)
                    else {},
                )
            )
        elif str(item).strip():
            debated.append(DebatedPoint(point=str(item).strip()))
    raw_conf = data.get("confidence")
    confidence = _confidence(str(raw_conf)) if raw_conf is not None else None
    text = str(data.get("merged") or data.get("text") or "").strip()
    return ParsedSynthesis(agreed, debated, confidence, text, parsed=True)


def parse_synthesis(raw: str, agents: Sequence[str]) -> ParsedSynthesis:
    """Parse a synthesizer answer; never raises."""
    from_json = _from_json(raw, agents)
    if from_json is not None:
        if not from_json.text:
            from_json.text = raw.strip()
        return from_json

    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in raw.splitlines():
        match = _SECTION.match(line) or _HEADING.match(line)
        if match:
            current = match.group(1).lower().split()[0]
            current = "debated" if current == "disputed" else current
            sections.setdefault(current, [])
            rest = match.group(2).strip()
            if rest:
                sections[current].append(rest)
        elif current is not None:
            sections[current].append(line)

    if not ({"agreed", "merged"} & sections.keys()):
        return ParsedSynthesis(text=raw.strip(), parsed=False)

    merged = "\n".join(sections.get("merged", [])).strip()
    return ParsedSynthesis(
        agreed=_bullets(sections.get("agreed", [])),
        debated=_debated(sections.get("debated", []), agents),
        confidence=_confidence(" ".join(sections.get("confidence", []))),
        text=merged or raw.strip(),
        parsed=True,
    )


def fallback_synthesis(outputs: Mapping[str, str], titles: Mapping[str, str]) -> ParsedSynthesis:
    """When the synthesizer produced nothing usable: the agents' own words, side by side."""
    text = "\n\n".join(
        f"### {titles.get(name, name)}\n{out.strip()}" for name, out in outputs.items() if out.strip()
    )
    return ParsedSynthesis(text=text, parsed=False)
