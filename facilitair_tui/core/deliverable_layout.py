"""How a session's deliverable reads: the output document and the README written beside the files.

The document, top to bottom: the task, the context, each stage under its title (confidence,
agreed points, merged text with each file's block replaced by a pointer to it, what stayed
debated), the code as named files, the tests, the review and its open points. The README says
what the task was, the requirements and design, a line per file, how to run the tests, the
review's open points and where it all came from.

The open points are the review's debated points; a workflow without a review stage gets those of
its last stage, the session's final word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from facilitair_tui import __version__

from . import events as ev
from .markdown_fences import fenced_lines, fences
from .session_result import SessionResult
from .stage_files import CodeFile, Collected, StageText

_HEADING = re.compile(r"^ {0,3}(#{1,6})(\s.*|)$")
CODE_HEADING = "Code"
TESTS_HEADING = "Tests"
OPEN_POINTS_HEADING = "Open points"

_ENDED = {
    "stopped": "was stopped",
    "failed": "failed",
    "interrupted": "was interrupted (its process ended)",
    "running": "is still running",
}
_LANGUAGE_NAMES = {
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "csharp": "C#",
    "cpp": "C++",
    "php": "PHP",
    "html": "HTML",
    "css": "CSS",
    "scss": "SCSS",
    "sql": "SQL",
    "json": "JSON",
    "yaml": "YAML",
    "toml": "TOML",
    "xml": "XML",
    "csv": "CSV",
    "ini": "INI",
}


def title_of(task: str) -> str:
    """The task's first line, as a heading can hold it."""
    first = next((line.strip() for line in task.splitlines() if line.strip()), "")
    return first.lstrip("#").strip() or "Session"


def _join(blocks: Sequence[str]) -> str:
    return "\n\n".join(block.strip("\n") for block in blocks if block.strip()) + "\n"


def _incomplete(result: SessionResult, collected: Collected) -> str:
    if result.complete:
        return ""
    done = [text.stage.title for text in collected.stages]
    total = max(len(result.stages), len(done))
    ended = _ENDED.get(result.status, f"ended {result.status}")
    which = f" ({', '.join(done)})" if done else ""
    return (
        f"> **Incomplete:** the session {ended} after {len(done)} of {total} stages{which}; "
        "what it had is here, and nothing of the stages it never finished."
    )


def _task_and_context(result: SessionResult) -> list[str]:
    blocks = []
    if len([line for line in result.task.splitlines() if line.strip()]) > 1:
        blocks.append(f"## Task\n\n{result.task.strip()}")
    if result.context:
        items = "\n".join(f"- {key}: {value}" for key, value in result.context.items())
        blocks.append(f"## Context\n\n{items}")
    return blocks


def _positions(point: ev.DebatedPoint, result: SessionResult) -> str:
    titles = result.role_titles
    lines = [
        f"  - {titles.get(role, role.capitalize())}: {position}" for role, position in point.positions.items()
    ]
    if not lines:
        return f"- {point.point}"
    return "\n".join([f"- **{point.point}**", *lines])


def _debated(points: Sequence[ev.DebatedPoint], result: SessionResult) -> str:
    return "\n".join(_positions(point, result) for point in points)


def _percent(confidence: float | None) -> str:
    return "not stated" if confidence is None else f"{confidence:.0%}"


def _confidence(synthesis: ev.Synthesis) -> str:
    return "" if synthesis.confidence is None else f"_Confidence: {_percent(synthesis.confidence)}_"


def nested(markdown: str, level: int = 3) -> str:
    """``markdown`` with its headings moved down so the highest is at ``level``: a stage's own
    "## Endpoints" sits under the stage's "## Architecture", not beside it."""
    lines = markdown.splitlines()
    inside = fenced_lines(lines, list(fences(lines)))
    found = [(i, m) for i, line in enumerate(lines) if not inside[i] and (m := _HEADING.match(line))]
    if not found:
        return markdown
    shift = level - min(len(m.group(1)) for _i, m in found)
    if shift <= 0:
        return markdown
    for index, match in found:
        hashes = "#" * min(6, len(match.group(1)) + shift)
        lines[index] = f"{hashes}{match.group(2)}"
    return "\n".join(lines)


def _stage(text: StageText, result: SessionResult, *, with_debated: bool) -> str:
    synthesis = text.synthesis
    blocks = [f"## {text.stage.title}", _confidence(synthesis)]
    if not synthesis.parsed:
        blocks.append("_The synthesizer's answer did not follow the format; it is shown as it came._")
    # The merged text first: a list of its right after the agreed list would read as one list.
    blocks.append(nested(text.text))
    if synthesis.agreed:
        blocks.append("**Agreed**\n\n" + "\n".join(f"- {point}" for point in synthesis.agreed))
    if with_debated and synthesis.debated:
        blocks.append("**Debated**\n\n" + _debated(synthesis.debated, result))
    if not synthesis.agreed and not text.text:
        blocks.append("_Nothing was written for this stage._")
    return _join(blocks)


def _closing(result: SessionResult, collected: Collected) -> list[StageText]:
    """The stages whose debated points are the open points: the review (or the last stage)."""
    reviews = [text for text in collected.stages if text.stage.part == "review"]
    if reviews or any(stage.part == "review" for stage in result.stages):
        return reviews
    last = result.stages[-1].number if result.stages else None
    return [text for text in collected.stages if text.stage.number == last]


def describe(file: CodeFile) -> str:
    """What a file is and where it comes from, in one line."""
    kind = "Python tests" if file.test else _LANGUAGE_NAMES.get(file.language, file.language.capitalize())
    size = f"{file.lines} line" if file.lines == 1 else f"{file.lines} lines"
    origin = f"written in {file.stage}"
    if file.earlier:
        origin = f"written in {file.earlier[0]}, revised in {', '.join([*file.earlier[1:], file.stage])}"
    cut = "; cut off: its code block was never closed" if file.unfinished else ""
    return f"{kind or 'File'}, {size}, {origin}{cut}"


def _fenced(file: CodeFile) -> str:
    longest = max((len(run) for run in _backtick_runs(file.content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{file.language}\n{file.content.rstrip()}\n{fence}"


def _backtick_runs(text: str) -> list[str]:
    runs, current = [], ""
    for char in text:
        if char == "`":
            current += char
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


def _files_section(heading: str, files: Sequence[CodeFile], after: str = "") -> str:
    if not files:
        return ""
    blocks = [f"## {heading}"]
    for file in files:
        blocks += [f"### `{file.path}`", f"_{describe(file)}_", _fenced(file)]
    blocks.append(after)
    return _join(blocks)


def _test_commands(files: Sequence[CodeFile]) -> str:
    if not any(f.test for f in files):
        return ""
    lines = ["python -m pip install pytest"]
    if any(f.path == "requirements.txt" for f in files):
        lines.insert(0, "python -m pip install -r requirements.txt")
    return "```sh\n" + "\n".join([*lines, "python -m pytest"]) + "\n```"


def _open_points(result: SessionResult, closing: Sequence[StageText], *, with_agreed: bool) -> str:
    if not closing:
        return ""
    debated = [point for text in closing for point in text.synthesis.debated]
    blocks = [f"## {OPEN_POINTS_HEADING}"]
    source = " and ".join(text.stage.title for text in closing)
    if debated:
        blocks += [f"What {source} left debated:", _debated(debated, result)]
    else:
        blocks.append(f"{source} left nothing debated.")
    agreed = [point for text in closing for point in text.synthesis.agreed]
    if with_agreed and agreed:
        blocks += [f"What {source} agreed:", "\n".join(f"- {point}" for point in agreed)]
    return _join(blocks)


def document(result: SessionResult, collected: Collected, notes: Sequence[str] = ()) -> str:
    """The session's output document."""
    closing = _closing(result, collected)
    reviews = [text for text in collected.stages if text.stage.part == "review"]
    tests = [f for f in collected.files if f.test]
    blocks = [
        f"# {title_of(result.task)}",
        *notes,
        _incomplete(result, collected),
        *_task_and_context(result),
    ]
    blocks += [_stage(t, result, with_debated=t not in closing) for t in collected.stages if t not in reviews]
    blocks.append(_files_section(CODE_HEADING, [f for f in collected.files if not f.test]))
    run = _test_commands(collected.files)
    blocks.append(_files_section(TESTS_HEADING, tests, f"Run them with:\n\n{run}" if run else ""))
    blocks += [_stage(text, result, with_debated=text not in closing) for text in reviews]
    blocks.append(_open_points(result, closing, with_agreed=False))
    return _join(blocks)


def _where_from(result: SessionResult, collected: Collected) -> str:
    lines = [f"- Facilitair {__version__}" + (f", workflow `{result.workflow}`" if result.workflow else "")]
    if result.session_id:
        lines.append(f"- Session `{result.session_id}`: `facilitair sessions show {result.session_id[:12]}`")
    models = dict(result.models)
    if models and len(set(models.values())) == 1:
        lines.append(f"- Every role on `{next(iter(models.values()))}`")
    elif models:
        titles = result.role_titles
        lines.append("- Models: " + ", ".join(f"{titles.get(r, r)} `{m}`" for r, m in models.items()))
    confidences = [f"{t.stage.title} {_percent(t.synthesis.confidence)}" for t in collected.stages]
    if confidences:
        lines.append("- Confidence by stage: " + ", ".join(confidences))
    return "## Where this came from\n\n" + "\n".join(lines)


def readme(result: SessionResult, collected: Collected) -> str:
    """The README.md written beside the files."""
    closing = _closing(result, collected)
    files = collected.files
    listed = [f"- `{f.path}`: {describe(f)}" for f in files]
    listed.append("- `README.md`: this file")
    run = _test_commands(files)
    blocks = [
        f"# {title_of(result.task)}",
        "Written by Facilitair: what its agents agreed, the code as files, the tests, and what the "
        "review left open.",
        _incomplete(result, collected),
        *_task_and_context(result),
    ]
    blocks += [
        _stage(text, result, with_debated=text not in closing)
        for text in collected.stages
        if text.stage.part not in ("implementation", "review")
    ]
    blocks.append("## Files\n\n" + "\n".join(listed))
    blocks.append(f"## Running the tests\n\n{run}" if run else "The session wrote no tests.")
    blocks.append(_open_points(result, closing, with_agreed=True))
    blocks.append(_where_from(result, collected))
    return _join(blocks)
