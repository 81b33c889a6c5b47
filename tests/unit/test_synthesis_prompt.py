"""What the synthesizer is asked, and what is done with an answer that copies the example."""

from __future__ import annotations

import json

from facilitair_tui.core import prompts
from facilitair_tui.core.events import DebatedPoint
from facilitair_tui.core.synthesis import ParsedSynthesis, parse_synthesis
from facilitair_tui.core.workflow import load_workflow

WORKFLOW = load_workflow(None)
AGENTS = [r.name for r in WORKFLOW.roles]


def messages() -> tuple[prompts.ChatMessage, ...]:
    return prompts.synthesis_messages(
        WORKFLOW,
        WORKFLOW.chunks[1],
        task="Build a URL shortener with click statistics",
        context={"language": "python", "framework": "fastapi"},
        history=[prompts.ChunkRecord("Requirements", "- short links\n- count clicks")],
        outputs={"architect": "Use SQLite.", "coder": "FastAPI app.", "reviewer": "Validate URLs."},
    )


def test_the_example_is_an_earlier_exchange_about_another_task() -> None:
    system, example_request, example_answer, request = messages()
    assert (system.role, example_request.role, example_answer.role, request.role) == (
        "system",
        "user",
        "assistant",
        "user",
    )
    assert prompts.EXAMPLE_TASK in example_request.content
    assert "URL shortener" not in example_request.content
    assert "URL shortener" in request.content and prompts.EXAMPLE_TASK not in request.content
    # The example answer is the very JSON asked for, with this workflow's roles, and parses.
    answer = json.loads(example_answer.content)
    assert set(answer["debated"][0]["positions"]) == set(AGENTS)
    assert parse_synthesis(example_answer.content, AGENTS).parsed


def test_no_placeholder_a_small_model_could_copy() -> None:
    for message in messages():
        for placeholder in ("their position", "the point in dispute", "the merged result of this stage"):
            assert placeholder not in message.content


def test_a_synthesis_with_nothing_of_the_example_is_kept_as_it_is() -> None:
    parsed = ParsedSynthesis(agreed=["Store links in SQLite"], text="Use SQLite.", parsed=True)
    assert prompts.strip_example(parsed) == (parsed, 0)


def test_what_a_synthesis_copies_of_the_example_is_taken_out() -> None:
    example = parse_synthesis(prompts.synthesis_example(AGENTS), AGENTS)
    parsed = ParsedSynthesis(
        agreed=["Store links in SQLite", example.agreed[0]],
        debated=[*example.debated, DebatedPoint(point="Id length", positions={"coder": "8"})],
        text="Use SQLite.\n" + example.text.splitlines()[0],
        parsed=True,
    )
    stripped, removed = prompts.strip_example(parsed)
    assert stripped.agreed == ["Store links in SQLite"]
    assert stripped.debated == [DebatedPoint(point="Id length", positions={"coder": "8"})]
    assert stripped.text == "Use SQLite."
    assert removed == 3


def test_a_whole_copy_leaves_no_merged_text() -> None:
    example = parse_synthesis(prompts.synthesis_example(AGENTS), AGENTS)
    stripped, removed = prompts.strip_example(example)
    assert (stripped.agreed, stripped.debated, stripped.text) == ([], [], "")
    assert removed > 0


def test_a_reworded_copy_of_an_example_line_is_taken_out_and_a_real_point_is_not() -> None:
    parsed = ParsedSynthesis(
        agreed=[
            "A missing or unreadable file must not stop the other counts",  # seen in a real run
            "Count the clicks of each short link",
            "Store the links in SQLite with their creation time",
        ],
        text="Use SQLite.",
        parsed=True,
    )
    stripped, removed = prompts.strip_example(parsed)
    assert stripped.agreed == parsed.agreed[1:]
    assert removed == 1
