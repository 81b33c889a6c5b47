"""The synthesizer's answer: asked for in a strict format, parsed leniently, never fatal."""

from __future__ import annotations

import json

import pytest

from facilitair_tui.core.events import DebatedPoint
from facilitair_tui.core.synthesis import (
    ParsedSynthesis,
    fallback_synthesis,
    parse_synthesis,
    synthesis_schema,
)

AGENTS = ("architect", "coder", "reviewer")

LINE_FORMAT = """AGREED:
- Use a single pure function
- Handle the empty string
DEBATED:
- Unicode handling | architect: reverse grapheme clusters | coder: slicing is enough
CONFIDENCE: 0.8
MERGED:
def reverse(s: str) -> str:
    return s[::-1]
"""


def parse(raw: str) -> ParsedSynthesis:
    return parse_synthesis(raw, AGENTS)


# ----------------------------------------------------------------------------- the line format


def test_line_format_is_parsed_section_by_section() -> None:
    result = parse(LINE_FORMAT)
    assert result.parsed is True
    assert result.agreed == ["Use a single pure function", "Handle the empty string"]
    assert result.debated == [
        DebatedPoint(
            point="Unicode handling",
            positions={"architect": "reverse grapheme clusters", "coder": "slicing is enough"},
        )
    ]
    assert result.text == "def reverse(s: str) -> str:\n    return s[::-1]"


def test_text_on_the_section_line_itself_is_kept() -> None:
    result = parse("AGREED: one thing\nCONFIDENCE: 0.5\nMERGED: the answer")
    assert result.agreed == ["one thing"]
    assert result.text == "the answer"


def test_numbered_bullets_and_none_placeholders() -> None:
    result = parse("AGREED:\n1. first\n2) second\nDEBATED:\n- none\nMERGED:\nok")
    assert result.agreed == ["first", "second"]
    assert result.debated == []


def test_bold_and_heading_variants() -> None:
    raw = "**Agreed:**\n- a point\n**Debated:** none\n**Confidence:** 0.6\n## Merged\nthe body\n"
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a point"]
    assert result.debated == []
    assert result.text == "the body"


@pytest.mark.parametrize(
    "raw",
    [
        "## Agreed\n- a point\n## Merged\nthe body",
        "### AGREED:\n- a point\n### MERGED RESULT:\nthe body",
        "__Agreed__\n- a point\n__Merged text__\nthe body",
        "> agreed: a point\n> merged: the body",
    ],
)
def test_more_heading_spellings(raw: str) -> None:
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a point"]
    assert result.text == "the body"


def test_disputed_is_read_as_debated() -> None:
    result = parse("AGREED: x\nDISPUTED:\n- naming | coder: short names\nMERGED: y")
    assert result.debated == [DebatedPoint(point="naming", positions={"coder": "short names"})]


# ----------------------------------------------------------------------------- confidence


def test_a_confidence_the_model_writes_is_read_past_not_used() -> None:
    """Confidence is computed (core.confidence); a stated one neither leaks into a section
    nor becomes the synthesis's."""
    result = parse("AGREED:\n- x\nCONFIDENCE: 8/10\nMERGED: y")
    assert result.agreed == ["x"]
    assert result.text == "y"
    assert not hasattr(result, "confidence")


# ----------------------------------------------------------------------------- JSON


def test_json_object_form() -> None:
    raw = json.dumps(
        {
            "agreed": ["a", "  ", "b"],
            "debated": [
                {"point": "p", "positions": {"coder": "yes", "stranger": "no"}},
                "a bare point",
            ],
            "confidence": 0.7,
            "merged": "the merged text",
        }
    )
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a", "b"]
    assert result.debated == [
        DebatedPoint(point="p", positions={"coder": "yes"}),
        DebatedPoint(point="a bare point"),
    ]
    assert result.text == "the merged text"


def test_json_inside_a_json_fence() -> None:
    raw = 'Here is the synthesis:\n```json\n{"agreed": ["a"], "confidence": "85%", "merged": "m"}\n```\nDone.'
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a"]
    assert result.text == "m"


def test_json_with_text_key_and_percent_number() -> None:
    result = parse('{"text": "t", "confidence": 90}')
    assert result.parsed is True
    assert result.text == "t"


def test_json_without_merged_text_has_its_points_as_text() -> None:
    result = parse('  {"agreed": ["a"], "debated": [{"point": "b", "positions": {}}]}  ')
    assert result.parsed is True
    assert result.agreed == ["a"]
    assert result.text == "- a\n- (debated) b"


FULL = (
    '{"agreed": ["a", "b"], "debated": [{"point": "db", "positions": '
    '{"architect": "pg", "coder": "sqlite"}}], "merged": "## Result\\nline \\u00e9 end"}'
)


def test_the_schema_shape_reads_whole() -> None:
    result = parse(FULL)
    assert result.parsed is True
    assert result.agreed == ["a", "b"]
    assert result.debated == [DebatedPoint(point="db", positions={"architect": "pg", "coder": "sqlite"})]
    assert result.text == "## Result\nline é end"


@pytest.mark.parametrize(
    ("cut_at", "agreed", "debated", "text_start"),
    [
        ('"merged": "## Result\\nline \\u00', ["a", "b"], 1, "## Result\nline"),  # mid-escape
        ('"merged": "## Res', ["a", "b"], 1, "## Res"),  # mid-string
        ('"merged"', ["a", "b"], 1, "- a"),  # a key without its value
        ('{"point": "db", "posi', ["a", "b"], 1, "- a"),
        ('"b"]', ["a", "b"], 0, "- a"),
        ('"b', ["a", "b"], 0, "- a"),  # the last item as far as it came
    ],
)
def test_a_json_synthesis_cut_short_keeps_what_it_has(
    cut_at: str, agreed: list[str], debated: int, text_start: str
) -> None:
    """An answer stopped at max_tokens: its complete parts are read, nothing is invented."""
    raw = FULL[: FULL.index(cut_at) + len(cut_at)]
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == agreed
    assert len(result.debated) == debated
    assert result.text.startswith(text_start)


@pytest.mark.parametrize("raw", ['{"agreed": ["a"]]', '{"agreed": ["a"]} trailing', '{"merged": "x"}}'])
def test_broken_json_that_is_not_a_cut_is_free_text(raw: str) -> None:
    assert parse(raw).parsed is False


def test_the_schema_names_every_role_and_bounds_the_lists() -> None:
    schema = synthesis_schema(["architect", "coder"]).schema
    assert schema["required"] == ["agreed", "debated", "merged"]
    assert schema["additionalProperties"] is False
    positions = schema["properties"]["debated"]["items"]["properties"]["positions"]
    assert positions["required"] == ["architect", "coder"]
    assert schema["properties"]["agreed"]["maxItems"] > 0


def test_json_of_another_shape_falls_back_to_free_text() -> None:
    raw = '{"answer": 42}'
    result = parse(raw)
    assert result.parsed is False
    assert result.text == raw


@pytest.mark.parametrize(
    "raw",
    [
        '{"agreed": 5, "merged": "m"}',
        '{"agreed": true, "merged": "m"}',
        '{"agreed": "one point", "merged": "m"}',
        '{"merged": "m", "debated": 7}',
        '{"merged": "m", "debated": "one dispute"}',
        '{"merged": "m", "debated": [null, 3, {"point": "p", "positions": [1, 2]}]}',
        '{"merged": "m", "confidence": {"x": 1}}',
        '{"merged": "m", "confidence": NaN}',
        '{"merged": "m", "confidence": 1e400}',
    ],
)
def test_json_with_values_of_the_wrong_type_never_raises(raw: str) -> None:
    result = parse(raw)
    assert result.parsed is True
    assert result.text == "m"
    assert all(isinstance(a, str) for a in result.agreed)


def test_a_lone_string_for_a_list_is_one_item() -> None:
    result = parse('{"agreed": "one point", "debated": "one dispute", "merged": "m"}')
    assert result.agreed == ["one point"]
    assert result.debated == [DebatedPoint(point="one dispute")]


# ----------------------------------------------------------------------------- what MERGED holds

# A merged result is Markdown: it may show JSON, the format's own words and code fences. Only the
# answer's structure is parsed; what MERGED holds is the result, kept whole.

JSON_SAMPLE_IN_MERGED = """AGREED:
- Store each to-do as one JSON object
DEBATED:
- none
CONFIDENCE: 0.8
MERGED:
Each to-do is saved as one JSON object:

```json
{"text": "buy milk", "done": false}
```

The list is written after every change."""


def test_a_json_sample_inside_merged_is_part_of_the_merged_text() -> None:
    result = parse(JSON_SAMPLE_IN_MERGED)
    assert result.parsed is True
    assert result.agreed == ["Store each to-do as one JSON object"]
    assert result.text == JSON_SAMPLE_IN_MERGED.split("MERGED:\n", 1)[1]
    assert '{"text": "buy milk", "done": false}' in result.text


def test_section_words_inside_merged_do_not_cut_it() -> None:
    merged = (
        "## Logging\n"
        "**Confidence:** scores are logged with every answer.\n"
        "**Agreed:** points are stored as a list.\n"
        "DEBATED: points keep each agent's position.\n"
        "MERGED: results are cached."
    )
    result = parse(f"AGREED:\n- log everything\nCONFIDENCE: 0.9\nMERGED:\n{merged}")
    assert result.parsed is True
    assert result.agreed == ["log everything"]
    assert result.debated == []
    assert result.text == merged


def test_headings_inside_a_fenced_block_in_merged_are_text() -> None:
    merged = (
        "The synthesizer is asked for:\n"
        "```text\n"
        "AGREED:\n"
        "- a point every agent supports\n"
        "CONFIDENCE: a number from 0 to 1\n"
        "MERGED:\n"
        "the merged result\n"
        "```\n"
        "and the parser reads it."
    )
    result = parse(f"AGREED: one format\nCONFIDENCE: 0.7\nMERGED:\n{merged}")
    assert result.parsed is True
    assert result.agreed == ["one format"]
    assert result.text == merged


def test_headings_inside_a_fenced_block_are_never_read_as_the_format() -> None:
    # A fence before MERGED is not scanned either (here one inside AGREED), and an answer whose
    # only headings are inside a fence is free text.
    raw = "AGREED:\n- keep this example:\n~~~\nCONFIDENCE: 0.1\nMERGED: not this\n~~~\nMERGED: this"
    result = parse(raw)
    assert result.text == "this"
    example = (
        "The synthesizer answers in sections, one heading per line, and the parser reads each "
        "section into its own field so the panel can show agreed and debated points apart from the "
        "merged text, and keeps an answer in any other shape whole, marked unparsed. An example:\n"
        "```\nAGREED:\n- x\nMERGED:\ny\n```"
    )
    assert parse(example) == ParsedSynthesis(text=example, parsed=False)


def test_an_answer_wrapped_whole_in_one_fence_is_read_inside_it() -> None:
    # The outer fence is longer than the one MERGED shows, so it holds it.
    raw = "Here is the synthesis:\n````markdown\nAGREED:\n- a\nMERGED:\n```python\nx = 1\n```\n````"
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a"]
    assert result.text == "```python\nx = 1\n```"


def test_a_bullet_that_starts_with_a_section_word_is_an_item() -> None:
    raw = (
        "AGREED:\n- Confidence: every score is shown\n- Merged: results are cached\n"
        "CONFIDENCE: 0.6\nMERGED: m"
    )
    result = parse(raw)
    assert result.agreed == ["Confidence: every score is shown", "Merged: results are cached"]
    assert result.text == "m"


def test_a_section_counts_once_and_merged_is_the_last() -> None:
    # The sections before MERGED may come in another order (models swap them), but each heading
    # counts once: a second AGREED is a line of the section it is in.
    raw = "CONFIDENCE: 0.4\nAGREED:\n- a\nAgreed: by all\nMERGED: m"
    result = parse(raw)
    assert result.agreed == ["a", "Agreed: by all"]
    assert result.text == "m"


# ----------------------------------------------------------------------------- JSON, only as the answer


def test_an_answer_that_is_exactly_the_json_form_parses() -> None:
    data = {
        "agreed": ["a"],
        "debated": [],
        "confidence": 0.9,
        "merged": "## Plan\nAGREED: text, not a heading",
    }
    for raw in (json.dumps(data), json.dumps(data, indent=2), f"```json\n{json.dumps(data, indent=2)}\n```"):
        result = parse(raw)
        assert result.parsed is True
        assert result.agreed == ["a"]
        assert result.text == data["merged"]


def test_a_json_object_of_another_shape_is_not_a_synthesis() -> None:
    # A to-do is not a synthesis, even when it is the whole answer: "done" is no synthesis key.
    for raw in ('{"text": "buy milk", "done": false}', '```json\n{"text": "buy milk", "done": false}\n```'):
        assert parse(raw) == ParsedSynthesis(text=raw, parsed=False)
    # Nor is one whose merged text is not text.
    assert parse('{"merged": ["a", "b"]}').parsed is False


def test_a_json_fence_inside_free_text_is_not_the_synthesis() -> None:
    raw = (
        "The to-do list keeps one object per item, written after every change so nothing is lost "
        "when the program stops, and read back in order at start-up. An item looks like this:\n"
        '```json\n{"text": "buy milk"}\n```\n'
        "The list is sorted by creation time and nothing else."
    )
    assert parse(raw) == ParsedSynthesis(text=raw, parsed=False)


def test_two_json_fences_are_not_one_synthesis() -> None:
    raw = '```json\n{"merged": "one"}\n```\n```json\n{"merged": "two"}\n```'
    assert parse(raw).parsed is False


# ----------------------------------------------------------------------------- leniency


def test_debated_positions_of_unknown_agents_stay_in_the_point() -> None:
    raw = "AGREED: x\nDEBATED:\n- storage | bob: sqlite | coder: files\nMERGED: y"
    (point,) = parse(raw).debated
    assert point.positions == {"coder": "files"}
    assert "storage" in point.point
    assert "bob: sqlite" in point.point


def test_debated_agent_names_match_case_insensitively_and_through_bold() -> None:
    raw = "AGREED: x\nDEBATED:\n- naming | **Coder**: short | ARCHITECT: long\nMERGED: y"
    (point,) = parse(raw).debated
    assert point.point == "naming"
    assert point.positions == {"coder": "short", "architect": "long"}


def test_free_text_is_kept_verbatim_and_marked_unparsed() -> None:
    raw = "\n  Sure! Here is a function that reverses a string:\n\n    s[::-1]\n\n"
    result = parse(raw)
    assert result.parsed is False
    assert result.text == raw.strip()
    assert result.agreed == []
    assert result.debated == []


def test_a_debated_or_confidence_section_alone_is_not_the_format() -> None:
    raw = "DEBATED:\n- x | coder: y\nCONFIDENCE: 0.4"
    result = parse(raw)
    assert result.parsed is False
    assert result.text == raw


def test_a_merged_line_without_a_colon_stays_text() -> None:
    raw = "AGREED:\n- a\nMERGED:\nmerged the two proposals into one\nMerged results are below\nthe end"
    result = parse(raw)
    assert result.parsed is True
    assert result.text == "merged the two proposals into one\nMerged results are below\nthe end"


def test_a_format_answer_without_merged_text_keeps_the_raw_answer() -> None:
    raw = "AGREED:\n- a\n- b"
    result = parse(raw)
    assert result.parsed is True
    assert result.agreed == ["a", "b"]
    assert result.text == raw


ADVERSARIAL = [
    "",
    " ",
    "\n\n\n",
    "AGREED:",
    "MERGED:",
    "CONFIDENCE:",
    "AGREED:\nDEBATED:\nCONFIDENCE:\nMERGED:",
    "DEBATED:\n- | | |\n| x\nAGREED:",
    "DEBATED:\n- |coder:|reviewer\nMERGED: m",
    "CONFIDENCE: 1e999\nAGREED: a",
    "CONFIDENCE: 9" + "9" * 400 + "\nAGREED: a",
    "{",
    "{}",
    "[1, 2, 3]",
    '{"agreed": null}',
    "```json\n{\n```",
    "```json\n{not json}\n```\nAGREED: a",
    "```json\n[]\n```",
    "\x00\x01\x02\xff\ufffd\ud7ff" * 50,
    "\r\nAGREED:\r\n- a\r\nMERGED:\r\nm\r\n",
    "**:**\n##\n#\n__\n**AGREED**",
    "AGREED: " + "x|" * 5000,
    "- " * 50_000,
    ("AGREED:\n- point\nDEBATED:\n- p | coder: c\nCONFIDENCE: 50%\nMERGED:\n" + "lorem ipsum " * 200) * 200,
    "word " * 400_000,
]


@pytest.mark.parametrize("raw", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_never_raises_on_weird_input(raw: str) -> None:
    result = parse_synthesis(raw, AGENTS)
    assert isinstance(result, ParsedSynthesis)
    assert isinstance(result.text, str)
    assert all(isinstance(a, str) for a in result.agreed)
    assert all(isinstance(d, DebatedPoint) for d in result.debated)
    if not result.parsed:
        assert result.text == raw.strip()


def test_no_agents_at_all_still_parses() -> None:
    result = parse_synthesis(LINE_FORMAT, [])
    assert result.parsed is True
    (point,) = result.debated
    assert point.positions == {}
    assert "architect: reverse grapheme clusters" in point.point


# ----------------------------------------------------------------------------- fallback


def test_fallback_puts_each_agents_words_under_its_title() -> None:
    result = fallback_synthesis(
        {"architect": "  plan  ", "coder": "", "reviewer": "looks fine"},
        {"architect": "Architect", "reviewer": "Reviewer"},
    )
    assert result.parsed is False
    assert result.text == "### Architect\nplan\n\n### Reviewer\nlooks fine"


def test_a_raw_newline_inside_a_json_string_is_read() -> None:
    """Grammars let a model write a control character inside a string; strict JSON refuses it."""
    result = parse('{"agreed": ["a"], "debated": [], "merged": "line one\nline two\tend"}')
    assert result.parsed is True
    assert result.text == "line one\nline two\tend"
