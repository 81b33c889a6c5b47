"""The session's deliverable: one document and the files, built from the syntheses alone."""

from __future__ import annotations

from collections.abc import Sequence

from facilitair_tui.core import events as ev
from facilitair_tui.core.deliverable import Deliverable, build_deliverable
from facilitair_tui.core.deliverable_layout import nested
from facilitair_tui.core.session_output import output_document
from facilitair_tui.core.session_result import SessionResult, Stage, result_from_events, stages_of
from facilitair_tui.core.workflow import load_workflow

TASK = "Build a URL shortener"
DEFAULT_STAGES = stages_of(load_workflow())
TITLES = {"architect": "Architect", "coder": "Coder", "reviewer": "Reviewer"}

APP_V1 = (
    "from fastapi import FastAPI\n\napp = FastAPI()\n\n\ndef shorten(url: str) -> str:\n    return url[:7]\n"
)
APP_V2 = APP_V1.replace("url[:7]", "url[:8]")
TESTS = "from app import shorten\n\n\ndef test_shorten():\n    assert len(shorten('abcdefghij')) == 8\n"

IMPLEMENTATION = f"""One module and its tests.

**app.py**
```python
{APP_V1}```

Install it:

```bash
pip install fastapi uvicorn
```

```python
{TESTS}```"""

REVIEW = f"""The code cut one character short; fixed:

```python app.py
{APP_V2}```

A run prints:

```
1 passed
```"""


def synthesis(
    chunk: int,
    text: str,
    *,
    agreed: Sequence[str] = (),
    debated: Sequence[ev.DebatedPoint] = (),
    confidence: float | None = None,
    parsed: bool = True,
) -> ev.Synthesis:
    return ev.Synthesis(
        session_id="s1",
        chunk=chunk,
        agreed=list(agreed),
        debated=list(debated),
        confidence=confidence,
        text=text,
        parsed=parsed,
    )


CACHING = ev.DebatedPoint(point="caching", positions={"architect": "add Redis", "coder": "no cache yet"})
FULL = [
    synthesis(1, "- shorten a URL to a 7-character code", agreed=["codes are unique"], confidence=0.8),
    synthesis(2, "One FastAPI app, links in SQLite.", debated=[CACHING], confidence=0.7),
    synthesis(3, IMPLEMENTATION),
    synthesis(4, REVIEW, agreed=["codes were one short"], debated=[CACHING], confidence=0.9),
]


def build(
    syntheses: Sequence[ev.Synthesis] = FULL,
    *,
    stages: Sequence[Stage] = DEFAULT_STAGES,
    status: str = "done",
) -> Deliverable:
    result = SessionResult(
        task=TASK,
        context={"language": "python"},
        stages=stages,
        syntheses=syntheses,
        status=status,
        session_id="0123456789abcdef",
        workflow="default",
        models={"architect": "local:qwen", "coder": "local:qwen", "reviewer": "local:qwen"},
        role_titles=TITLES,
    )
    return build_deliverable(result)


def test_the_files_are_the_named_code_the_tests_and_a_readme() -> None:
    deliverable = build()
    assert list(deliverable.files) == ["app.py", "tests/test_app.py", "README.md"]
    assert deliverable.files["app.py"] == APP_V2  # the review's version replaced the implementation's
    assert deliverable.files["tests/test_app.py"] == TESTS  # unnamed tests, named after what they import
    app = deliverable.code_files[0]
    assert (app.stage, app.earlier, app.test) == ("Review", ("Implementation",), False)
    assert deliverable.complete


def test_the_document_reads_top_to_bottom() -> None:
    document = build().document
    headings = [line for line in document.splitlines() if line.startswith("#")]
    assert headings == [
        f"# {TASK}",
        "## Context",
        "## Requirements",
        "## Architecture",
        "## Implementation",
        "## Code",
        "### `app.py`",
        "## Tests",
        "### `tests/test_app.py`",
        "## Review",
        "## Open points",
    ]
    assert "_Confidence: 80%_" in document and "_Confidence: 90%_" in document
    assert "**Agreed**\n\n- codes are unique" in document
    # Each file once, in full, in the Code and Tests sections; the stages point at it.
    assert document.count("return url[:8]") == 1 and "return url[:7]" not in document
    assert "→ `app.py` (an earlier version; the file has the one from Review)" in document
    assert "→ `tests/test_app.py`" in document
    assert "**app.py**" not in document  # the label went with its block
    # What is not a file stays where it was written.
    assert "```bash\npip install fastapi uvicorn\n```" in document
    assert "```\n1 passed\n```" in document
    assert "Run them with:\n\n```sh\npython -m pip install pytest\npython -m pytest\n```" in document


def test_debated_points_stay_in_their_stage_and_the_reviews_are_the_open_points() -> None:
    document = build().document
    architecture = document[document.index("## Architecture") : document.index("## Implementation")]
    assert "**Debated**\n\n- **caching**\n  - Architect: add Redis\n  - Coder: no cache yet" in architecture
    review = document[document.index("## Review") : document.index("## Open points")]
    assert "**Debated**" not in review and "- codes were one short" in review
    open_points = document[document.index("## Open points") :]
    assert "What Review left debated:\n\n- **caching**\n  - Architect: add Redis" in open_points


def test_the_readme_says_what_was_built_and_where_it_came_from() -> None:
    readme = build().files["README.md"]
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Context",
        "## Requirements",
        "## Architecture",
        "## Files",
        "## Running the tests",
        "## Open points",
        "## Where this came from",
    ]
    assert readme.startswith(f"# {TASK}\n")
    assert "- `app.py`: Python, 7 lines, written in Implementation, revised in Review" in readme
    assert "- `tests/test_app.py`: Python tests, 5 lines, written in Implementation" in readme
    assert "- `README.md`: this file" in readme
    assert "What Review agreed:\n\n- codes were one short" in readme
    assert "Session `0123456789abcdef`: `facilitair sessions show 0123456789ab`" in readme
    assert "Every role on `local:qwen`" in readme
    assert (
        "Confidence by stage: Requirements 80%, Architecture 70%, Implementation not stated, Review 90%"
        in readme
    )
    assert "Incomplete" not in readme
    assert "def shorten" not in readme  # the code is in its files, not in the README


def test_a_generated_name_never_replaces_a_file() -> None:
    code = "def a():\n    return 1\n"
    syntheses = [synthesis(3, f"```python\n{code}```\n\n```python\n{code.replace('a', 'b')}```")]
    syntheses.append(synthesis(4, f"```python\n{code.replace('a', 'c')}```"))
    files = build(syntheses).files
    assert [p for p in files if p != "README.md"] == ["main.py", "module_2.py", "module_3.py"]
    assert "def c" in files["module_3.py"]


def test_a_named_file_in_a_later_stage_replaces_the_earlier_and_tests_move_under_tests() -> None:
    first = "```python test_app.py\nimport pytest\n```"
    later = "```python test_app.py\ndef test_it():\n    assert True\n```"
    deliverable = build([synthesis(3, first), synthesis(4, later)])
    assert [p for p in deliverable.files if p != "README.md"] == ["tests/test_app.py"]
    assert "def test_it" in deliverable.files["tests/test_app.py"]


def test_unsafe_names_get_generated_ones_inside_the_directory() -> None:
    text = "```python ../../evil.py\nimport os\n```\n\n```python /etc/cron.py\nimport sys\n```"
    text += "\n\n```python .git/hooks/x.py\nimport re\n```"
    files = build([synthesis(3, text)]).files
    assert list(files) == ["main.py", "module_2.py", "module_3.py", "README.md"]


def test_a_file_named_like_a_directory_of_another_gets_another_name() -> None:
    text = "```python src/app.py\nimport os\n```\n\n```python src/app.py/util.py\nimport sys\n```"
    text += "\n\nDockerfile\n```dockerfile\nFROM python\n```"
    files = build([synthesis(3, text)]).files
    assert list(files) == ["src/app.py", "main.py", "Dockerfile", "README.md"]


def test_a_custom_workflow_keeps_its_stages_and_still_finds_code_and_open_points() -> None:
    stages = [Stage(1, "Plan", "plan"), Stage(2, "Write", "write"), Stage(3, "Check", "check")]
    syntheses = [
        synthesis(1, "Two endpoints."),
        synthesis(2, f"```python app.py\n{APP_V1}```"),
        synthesis(3, "Looks right.", debated=[CACHING]),
    ]
    deliverable = build(syntheses, stages=stages)
    assert list(deliverable.files) == ["app.py", "README.md"]
    headings = [line for line in deliverable.document.splitlines() if line.startswith("## ")]
    assert headings == ["## Context", "## Plan", "## Write", "## Check", "## Code", "## Open points"]
    # Without a review, the last stage's debated points are the open points (and not repeated).
    assert deliverable.document.count("add Redis") == 1
    assert "What Check left debated:" in deliverable.files["README.md"]
    assert "## Plan" in deliverable.files["README.md"] and "## Check" in deliverable.files["README.md"]


def test_a_stage_is_recognised_by_its_title_when_its_id_says_nothing() -> None:
    assert Stage(1, "Design review", "step-2").part == "design"
    assert Stage(1, "Review", "").part == "review"
    assert Stage(1, "Final QA", "qa").part == "review"
    assert Stage(1, "Plan", "plan").part is None


def test_empty_and_unformatted_syntheses_are_said_so() -> None:
    syntheses = [synthesis(1, ""), synthesis(2, "### Architect\nUse SQLite.", parsed=False)]
    document = build(syntheses, status="stopped").document
    assert "## Requirements\n\n_Nothing was written for this stage._" in document
    assert "did not follow the format; it is shown as it came" in document


def test_a_session_that_ended_early_says_so_and_keeps_what_it_had() -> None:
    deliverable = build(FULL[:2], status="failed")
    note = "**Incomplete:** the session failed after 2 of 4 stages (Requirements, Architecture)"
    assert note in deliverable.document and note in deliverable.files["README.md"]
    assert list(deliverable.files) == ["README.md"] and not deliverable.complete
    assert "The session wrote no tests." in deliverable.files["README.md"]
    nothing = build([], status="stopped")
    assert "after 0 of 4 stages;" in nothing.document and list(nothing.files) == ["README.md"]


def test_the_result_of_a_sessions_events() -> None:
    workflow = load_workflow()
    started = ev.SessionStarted(
        session_id="s1",
        task=TASK,
        context={"language": "python"},
        strategy="local",
        workflow="default",
        models={"coder": "local:qwen"},
        chunks=[c.title for c in workflow.chunks],
    )
    finished = ev.SessionFinished(
        session_id="s1",
        status="stopped",
        output="",
        input_tokens=0,
        output_tokens=0,
        cost_usd=0.0,
        duration_s=1.0,
    )
    result = result_from_events([started, *FULL[:2], finished], workflow)
    assert result is not None
    assert (result.task, result.status, result.session_id, len(result.syntheses)) == (
        TASK,
        "stopped",
        "s1",
        2,
    )
    assert [s.id for s in result.stages] == ["requirements", "architecture", "implementation", "review"]
    without_workflow = result_from_events([started], None)
    assert without_workflow is not None and without_workflow.status == "running"
    assert [s.title for s in without_workflow.stages] == [c.title for c in workflow.chunks]
    assert result_from_events(FULL, workflow) is None


def test_the_output_document_is_empty_only_when_nothing_was_produced() -> None:
    workflow = load_workflow()
    assert (
        output_document(workflow, TASK, {}, [], status="stopped", unfinished={"coder": "  "}, chunk=1) == ""
    )
    partial = output_document(workflow, TASK, {}, [], status="stopped", unfinished={"coder": "half"}, chunk=1)
    assert (
        partial.startswith(f"# {TASK}\n")
        and "## Requirements (interrupted)\n\n### Coder (unfinished)\n\nhalf" in partial
    )
    done = output_document(workflow, TASK, {}, FULL, status="done")
    assert (
        done
        == build_deliverable(
            SessionResult(TASK, {}, stages_of(workflow), FULL, workflow="default", role_titles=TITLES)
        ).document
    )


def test_a_stages_own_headings_sit_under_its_title() -> None:
    text = "# Plan\n\n## Endpoints\n\n```text\n# a comment, not a heading\n```\n\n#### Notes"
    document = build([synthesis(2, text)], status="stopped").document
    architecture = document[document.index("## Architecture") :]
    assert "\n### Plan\n\n#### Endpoints\n" in architecture and "\n###### Notes" in architecture
    assert "```text\n# a comment, not a heading\n```" in architecture
    assert nested("### Already low\n\n## Higher") == "#### Already low\n\n### Higher"
    assert nested("#hashtag, not a heading") == "#hashtag, not a heading"
