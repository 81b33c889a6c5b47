"""The synthesizer's answer: the JSON it is asked for, and a lenient reading of whatever came.

The synthesizer is asked for one JSON object fixed by ``synthesis_schema``: the agreed points,
the debated points with every role's position, and the merged result of the stage in Markdown.
Backends that can enforce a schema do (see ``OutputSchema``); others get the same request in
the prompt. Its confidence is not asked for: ``core.confidence`` computes it from what can be
measured.

An answer is read by its structure, never its content, as the JSON object when it is the whole
answer (or the one fence of an answer that says little else); a JSON object cut short (at
``max_tokens``) keeps what it has. The line format of older workflows (``AGREED:``,
``DEBATED:``, ``MERGED:`` sections) is read too:

- a section heading counts only where a line starts with it (``AGREED:``, ``**Agreed:**``,
  ``## Merged``…; a bullet is an item, not a heading), never inside a fenced code block, and
  once: the sections before MERGED may come in any order (models swap them), MERGED is the last
  and everything after its heading is the merged text, kept whole;
- JSON with the same keys is understood only when it is the whole answer, and only with the
  synthesis keys and a text for the merged result. A JSON sample inside an answer is content.

Anything else is kept verbatim as the merged text with ``parsed=False``; a malformed synthesis
never fails a session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .events import DebatedPoint
from .markdown_fences import Fence, fenced_lines
from .markdown_fences import fences as find_fences
from .provider import OutputSchema


@dataclass(slots=True)
class ParsedSynthesis:
    agreed: list[str] = field(default_factory=list)
    debated: list[DebatedPoint] = field(default_factory=list)
    text: str = ""
    parsed: bool = False


_KEYWORD = r"(agreed|debated|disputed|confidence|merged(?:\s+(?:result|text))?)"
# "AGREED: ..." / "**Agreed:** ..." / "> agreed: ..." (a colon is required), or a heading line
# "## Agreed". No bullet marker before the word: "- Confidence: high" is an item of a list.
_SECTION = re.compile(rf"^[ \t>*_]*{_KEYWORD}[ \t*_]*:[ \t*_]*(.*)$", re.IGNORECASE)
_HEADING = re.compile(rf"^[ \t]*(?:#+|\*\*|__)[ \t]*{_KEYWORD}[ \t*_:]*()$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
# The keys a JSON synthesis may have; any other key means the object is something else.
_JSON_KEYS = frozenset({"agreed", "debated", "confidence", "merged", "text"})
# What an answer that is one fence may say around it ("Here is the synthesis:", "Done."): more
# than this and the fence is a sample inside a free-text answer, not the answer.
MAX_FENCE_WRAPPER_CHARS = 200
# The info strings of a fence that may hold the whole answer, in either shape.
_JSON_FENCES = frozenset({"", "json"})
_LINE_FENCES = frozenset({"", "markdown", "md", "text"})


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
    text = str(data.get("merged") or data.get("text") or "").strip()
    if not text:  # cut before its merged text: the points are what the stage has
        text = "\n".join([*(f"- {a}" for a in agreed), *(f"- (debated) {d.point}" for d in debated)])
    return ParsedSynthesis(agreed, debated, text, parsed=True)


def _section_name(word: str) -> str:
    name = word.lower().split()[0]
    return "debated" if name == "disputed" else name


def _line_sections(lines: Sequence[str], fences: Sequence[Fence]) -> dict[str, list[str]]:
    """The line format's sections by name, each a list of lines; the rules are the module's."""
    inside_fence = fenced_lines(lines, fences)
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for index, line in enumerate(lines):
        match = None if inside_fence[index] else (_SECTION.match(line) or _HEADING.match(line))
        name = _section_name(match.group(1)) if match else ""
        if match is None or name in sections:
            if current is not None:
                current.append(line)
            continue
        current = sections[name] = []
        if rest := match.group(2).strip():
            current.append(rest)
        if name == "merged":
            # The stage's result: whatever it shows, the format's own words included, is its text.
            current.extend(lines[index + 1 :])
            break
    return sections


def _from_lines(
    lines: Sequence[str], fences: Sequence[Fence], agents: Sequence[str]
) -> ParsedSynthesis | None:
    sections = _line_sections(lines, fences)
    if not ({"agreed", "merged"} & sections.keys()):
        return None
    return ParsedSynthesis(
        agreed=_bullets(sections.get("agreed", [])),
        debated=_debated(sections.get("debated", []), agents),
        text="\n".join(sections.get("merged", [])).strip(),
        parsed=True,
    )


_OPENERS = {"{": "}", "[": "]"}
_PARTIAL_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?$")
# How many cut points of a truncated object are tried, from its end back.
MAX_CUT_TRIES = 12


def _load_json(candidate: str) -> Any:
    """``candidate`` as JSON, or, when it is an object cut short (an answer stopped at
    ``max_tokens``), what it says up to its last complete part; None when neither reads."""
    try:
        return json.loads(candidate, strict=False)
    except RecursionError:
        return None
    except ValueError:
        pass
    # Scan once, outside strings, noting where the text could end: before a comma, or right
    # after an opening bracket, with the brackets still open there.
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []
    in_string = escaped = False
    for index, char in enumerate(candidate):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _OPENERS:
            stack.append(_OPENERS[char])
            cuts.append((index + 1, "".join(reversed(stack))))
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None  # not a cut object: broken JSON
            if not stack:
                return None  # the object closed, and still did not read
        elif char == ",":
            cuts.append((index, "".join(reversed(stack))))
    closers = "".join(reversed(stack))
    tail = _PARTIAL_ESCAPE.sub("", candidate) + '"' if in_string else candidate
    for end, closing in [(len(tail), closers), *reversed(cuts)][:MAX_CUT_TRIES]:
        text = tail if end == len(tail) else candidate[:end]
        try:
            return json.loads(text + closing, strict=False)
        except (ValueError, RecursionError):
            continue
    return None


def _json_synthesis(candidate: str, agents: Sequence[str]) -> ParsedSynthesis | None:
    """``candidate`` read as a JSON synthesis, or None when it is not one: not a JSON object,
    a key a synthesis does not have, none of its main keys, or a merged text that is not text."""
    if not candidate.startswith("{"):
        return None
    data = _load_json(candidate)
    if not isinstance(data, dict) or not data.keys() <= _JSON_KEYS:
        return None
    if not {"agreed", "merged", "text"} & data.keys():
        return None
    if any(data.get(key) is not None and not isinstance(data[key], str) for key in ("merged", "text")):
        return None
    return _from_mapping(data, agents)


def _lone_fence(lines: Sequence[str], fences: Sequence[Fence]) -> Fence | None:
    """The answer's one fence when the answer is that fence and a few words around it."""
    if len(fences) != 1:
        return None
    fence = fences[0]
    around = [*lines[: fence.opening], *lines[fence.closing + 1 :]]
    if sum(len(line.strip()) for line in around) > MAX_FENCE_WRAPPER_CHARS:
        return None
    return fence


def _from_fence(fence: Fence, lines: Sequence[str], agents: Sequence[str]) -> ParsedSynthesis | None:
    """An answer a model wrapped in one fence, read as either shape (as its label allows)."""
    inner = lines[fence.opening + 1 : fence.closing]
    result = None
    if fence.language in _JSON_FENCES:
        result = _json_synthesis("\n".join(inner).strip(), agents)
    if result is None and fence.language in _LINE_FENCES:
        result = _from_lines(inner, list(find_fences(inner)), agents)
    return result


# Bounds that keep a small model from listing forever; the merged text is the stage's result.
MAX_AGREED = 8
MAX_DEBATED = 5


def synthesis_schema(agents: Sequence[str]) -> OutputSchema:
    """The JSON a synthesis is: the keys in the order a model should think in (what is agreed,
    what is debated and who holds what, then the merged result), every role's position named."""
    text = {"type": "string"}
    positions = {
        "type": "object",
        "properties": {agent: text for agent in agents},
        "required": list(agents),
        "additionalProperties": False,
    }
    debated = {
        "type": "object",
        "properties": {"point": text, "positions": positions},
        "required": ["point", "positions"],
        "additionalProperties": False,
    }
    return OutputSchema(
        name="stage_synthesis",
        description="The synthesis of one stage: agreed points, debated points, the merged result.",
        schema={
            "type": "object",
            "properties": {
                "agreed": {"type": "array", "items": text, "maxItems": MAX_AGREED},
                "debated": {"type": "array", "items": debated, "maxItems": MAX_DEBATED},
                "merged": text,
            },
            "required": ["agreed", "debated", "merged"],
            "additionalProperties": False,
        },
    )


def parse_synthesis(raw: str, agents: Sequence[str]) -> ParsedSynthesis:
    """Parse a synthesizer answer; never raises."""
    whole = raw.strip()
    result = _json_synthesis(whole, agents)
    if result is None:
        lines = raw.splitlines()
        fences = list(find_fences(lines))
        result = _from_lines(lines, fences, agents)
        if result is None and (fence := _lone_fence(lines, fences)) is not None:
            result = _from_fence(fence, lines, agents)
    if result is None:
        return ParsedSynthesis(text=whole, parsed=False)
    # A synthesis without a merged text still has one: the answer as it came.
    result.text = result.text or whole
    return result


def fallback_synthesis(outputs: Mapping[str, str], titles: Mapping[str, str]) -> ParsedSynthesis:
    """When the synthesizer produced nothing usable: the agents' own words, side by side."""
    text = "\n\n".join(
        f"### {titles.get(name, name)}\n{out.strip()}" for name, out in outputs.items() if out.strip()
    )
    return ParsedSynthesis(text=text, parsed=False)
