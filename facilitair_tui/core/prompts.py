"""What each model is asked: the agents' prompts and the synthesizer's.

Prompts are plain data built from the workflow, the task, the context and what happened so far;
nothing here calls a model.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .provider import ChatMessage
from .synthesis import ParsedSynthesis
from .workflow import Chunk, Role, Workflow

# Prompts must fit small local contexts; longer material is cut from the front (older text),
# keeping the most recent part, which is what the next step builds on.
MAX_SECTION_CHARS = 6000


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A finished chunk as later prompts see it."""

    title: str
    text: str


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _context_lines(context: Mapping[str, str]) -> str:
    if not context:
        return "(none given)"
    return "\n".join(f"- {key}: {value}" for key, value in context.items())


def _header(task: str, context: Mapping[str, str], history: Sequence[ChunkRecord]) -> list[str]:
    parts = [f"Task: {_clip(task)}", f"Context:\n{_context_lines(context)}"]
    if history:
        done = "\n\n".join(f"{rec.title}:\n{_clip(rec.text, MAX_SECTION_CHARS // 2)}" for rec in history)
        parts.append(f"Agreed in earlier stages:\n{done}")
    return parts


def agent_messages(
    workflow: Workflow,
    role: Role,
    chunk: Chunk,
    *,
    task: str,
    context: Mapping[str, str],
    history: Sequence[ChunkRecord],
    upstream: Mapping[str, str],
    feedback: Sequence[str] = (),
    own_partial: str = "",
) -> tuple[ChatMessage, ...]:
    """The messages for one agent on one chunk.

    ``upstream`` maps each role this agent reads to that role's output so far (possibly
    partial: the upstream may still be writing). ``own_partial`` is this agent's text from an
    interrupted attempt, when user feedback restarted it.

    What every agent of the chunk is told (the team, the task, the context, earlier stages, the
    stage) comes first and is the same text for each, the system message; the role and what only
    this agent sees follow. A backend that keeps prompt prefixes (the embedded engine, OpenAI's
    and Anthropic's prompt caches) then reads the shared part once for the whole chunk.
    """
    team = ", ".join(r.display_name.lower() for r in workflow.roles)
    shared = [
        f"A small team of AI agents ({team}) builds software for a user, stage by stage; "
        "a synthesizer merges their work at the end of each stage.",
        *_header(task, context, history),
        f"Current stage: {chunk.title}. {chunk.goal}",
    ]
    parts = [role.system_prompt.strip()]
    for name, text in upstream.items():
        if text.strip():
            who = workflow.role(name).display_name
            parts.append(f"The {who}'s notes so far (still being written):\n{_clip(text)}")
    if feedback:
        parts.append("The user's feedback (follow it):\n" + "\n".join(f"- {f}" for f in feedback))
    if own_partial.strip():
        parts.append(
            "Your answer so far, interrupted by that feedback:\n"
            f"{_clip(own_partial)}\n\nRevise it to follow the feedback."
        )
    parts.append(
        f"As the {role.display_name.lower()}, give your contribution to the {chunk.title.lower()} stage."
    )
    return (
        ChatMessage("system", "\n\n".join(shared)),
        ChatMessage("user", "\n\n".join(parts)),
    )


def _synthesis_request(
    workflow: Workflow,
    chunk_title: str,
    chunk_goal: str,
    header: list[str],
    outputs: Mapping[str, str],
    feedback: Sequence[str],
    code_run: str = "",
) -> str:
    parts = [*header, f"Stage to merge: {chunk_title}. {chunk_goal}"]
    for name, text in outputs.items():
        parts.append(
            f"The {workflow.role(name).display_name} ({name}) wrote:\n{_clip(text) or '(no output)'}"
        )
    if code_run:
        parts.append(code_run)
    if feedback:
        parts.append("The user's feedback:\n" + "\n".join(f"- {f}" for f in feedback))
    parts.append(synthesis_instruction([r.name for r in workflow.roles]))
    return "\n\n".join(parts)


def synthesis_messages(
    workflow: Workflow,
    chunk: Chunk,
    *,
    task: str,
    context: Mapping[str, str],
    history: Sequence[ChunkRecord],
    outputs: Mapping[str, str],
    feedback: Sequence[str] = (),
    code_run: str = "",
) -> tuple[ChatMessage, ...]:
    """The synthesizer's messages: a worked example as an earlier exchange (an example request
    on another task and its answer), then this stage's request. A small model shown an example
    inside the request copies it; shown as a finished exchange about another task, it follows
    its form and answers the new request. ``code_run``: what running the stage's code showed,
    in words."""
    example_request = _synthesis_request(
        workflow,
        EXAMPLE_STAGE[0],
        EXAMPLE_STAGE[1],
        _header(EXAMPLE_TASK, EXAMPLE_CONTEXT, ()),
        example_outputs([r.name for r in workflow.roles]),
        (),
    )
    request = _synthesis_request(
        workflow, chunk.title, chunk.goal, _header(task, context, history), outputs, feedback, code_run
    )
    return (
        ChatMessage("system", workflow.merger.system_prompt.strip()),
        ChatMessage("user", example_request),
        ChatMessage("assistant", synthesis_example([r.name for r in workflow.roles])),
        ChatMessage("user", request),
    )


# The worked example, on a task no user is likely to bring, so that what a model copies from it
# shows (``strip_example`` takes it out; the synthesis bench counts it). Real content, never
# placeholders: a small model copies "the point in dispute | architect: their position" word for
# word.
EXAMPLE_TASK = "A command-line tool that counts the words in text files"
EXAMPLE_CONTEXT = {"language": "go"}
EXAMPLE_STAGE = ("Requirements", "List what the software must do and the constraints that matter.")
EXAMPLE_NOTES = (
    "- Input: file paths as arguments\n- Output: a count per file and a total\n"
    "- A word: a run of letters or digits",
    "- Words are what `strings.Fields` splits on, like `wc -w`\n- Print `path: count`, then `total: N`",
    "- Say in --help what a word is\n- A missing file must not stop the other counts",
)
EXAMPLE_AGREED = (
    "Count the words of every file named on the command line",
    "Print one line per file, then the total",
    "A missing file is reported and the other files are still counted",
)
EXAMPLE_POINT = "What counts as a word"
EXAMPLE_POSITIONS = (
    "a run of letters or digits",
    "anything between whitespace, like wc",
    "whitespace-separated, and say so in --help",
)
EXAMPLE_FILE = "wordcount.go"
EXAMPLE_MERGED = (
    "- Count the words of each file named on the command line; print `path: count` per file, "
    "then `total: N`.\n"
    "- A word is a run of non-whitespace characters (as `wc -w` counts), stated in `--help`.\n"
    "- A missing or unreadable file is reported on stderr; the other files are still counted.\n"
    "\n"
    f"**{EXAMPLE_FILE}**\n"
    "```go\n"
    "func countWords(text string) int { return len(strings.Fields(text)) }\n"
    "```"
)


def example_outputs(agents: Sequence[str]) -> dict[str, str]:
    return {name: EXAMPLE_NOTES[i % len(EXAMPLE_NOTES)] for i, name in enumerate(agents)}


def synthesis_example(agents: Sequence[str]) -> str:
    """The worked example's answer, as JSON, with the workflow's own role names."""
    positions = {name: EXAMPLE_POSITIONS[i % len(EXAMPLE_POSITIONS)] for i, name in enumerate(agents)}
    example = {
        "agreed": list(EXAMPLE_AGREED),
        "debated": [{"point": EXAMPLE_POINT, "positions": positions}],
        "merged": EXAMPLE_MERGED,
    }
    return json.dumps(example, ensure_ascii=False)


# A line shares at least this share of its words with a line of the example: a copy reworded
# ("A missing or unreadable file must not stop the other counts").
COPY_WORD_OVERLAP = 0.6
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


@functools.cache
def _example_lines() -> tuple[frozenset[str], ...]:
    texts = (EXAMPLE_MERGED, *EXAMPLE_NOTES, *EXAMPLE_AGREED)
    lines = (line.strip(" -*") for text in texts for line in text.splitlines())
    return tuple(_words(line) for line in lines if len(line) > 20)


def _from_example(text: str) -> bool:
    words = _words(text)
    if len(words) < 4:  # too short to tell a copy from a coincidence
        return False
    return any(len(words & line) / len(words | line) >= COPY_WORD_OVERLAP for line in _example_lines())


def strip_example(parsed: ParsedSynthesis) -> tuple[ParsedSynthesis, int]:
    """``parsed`` without what it repeats of the worked example (a small model copies an
    example point when its own stage gives it none), and how many items and lines that was.
    What is left is the synthesizer's own work on this stage."""
    agreed = [point for point in parsed.agreed if not _from_example(point)]
    debated = [
        d
        for d in parsed.debated
        if d.point != EXAMPLE_POINT
        and not (d.positions and set(d.positions.values()) <= set(EXAMPLE_POSITIONS))
    ]
    lines = parsed.text.splitlines()
    kept = [line for line in lines if not _from_example(line)]
    removed = len(parsed.agreed) - len(agreed) + len(parsed.debated) - len(debated) + len(lines) - len(kept)
    if not removed:
        return parsed, 0
    text = "\n".join(kept).strip()
    if not any(_is_content(line) for line in kept):
        text = ""  # what is left is the example's frame: its file name, an empty fence
    return replace(parsed, agreed=agreed, debated=debated, text=text), removed


def _is_content(line: str) -> bool:
    bare = line.strip().strip("`~*#").strip()
    return bool(bare) and bare not in {"go", EXAMPLE_FILE}


def synthesis_instruction(agents: Sequence[str]) -> str:
    """What the synthesizer is asked to write: one JSON object (see ``core.synthesis``)."""
    return (
        "Merge these into one result for this stage. Answer with one JSON object and nothing "
        "else, with these keys:\n"
        '- "agreed": the points every agent supports, each a short sentence about this task;\n'
        '- "debated": the points they disagree on, each with every agent\'s position '
        f"({', '.join(agents)}); an empty list when they agree;\n"
        '- "merged": the complete result of this stage in Markdown, which later stages read '
        "instead of the agents' notes: decisions, not a summary of who said what. Put each code "
        "file in its own fenced block, with its file name in bold on the line before it."
    )
