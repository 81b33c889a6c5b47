"""End to end: a synthesis on the real embedded model, constrained by the schema's grammar.

The synthesizer's messages for one stage go to ``LocalModelProvider`` with the synthesis schema;
what comes back is complete JSON of exactly that shape (every role's position named, nothing
else), it parses as the format, and it is this stage's synthesis, not the prompt's example.
Nothing here asserts on time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facilitair_tui.core.prompts import ChunkRecord, strip_example, synthesis_messages
from facilitair_tui.core.provider import ChatRequest
from facilitair_tui.core.synthesis import parse_synthesis, synthesis_schema
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL
from tests.conftest import make_home
from tests.support.local_stream import complete

pytestmark = pytest.mark.e2e

WORKFLOW = load_workflow(None)
AGENTS = [r.name for r in WORKFLOW.roles]
OUTPUTS = {
    "architect": "- Store each link as (code, url, created_at) in SQLite\n- Count clicks in a separate table",
    "coder": "```python\n@app.get('/{code}')\ndef follow(code: str):\n    ...\n```\nCodes: 7 characters.",
    "reviewer": "- Validate the URL scheme (http/https only)\n- Codes of 6 characters collide too soon",
}


async def test_the_embedded_models_synthesis_is_complete_json_of_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_home(tmp_path / "home", monkeypatch)
    messages = synthesis_messages(
        WORKFLOW,
        WORKFLOW.chunks[1],
        task="Build a URL shortener with click statistics",
        context={"language": "python", "framework": "fastapi"},
        history=[ChunkRecord("Requirements", "- Short links that redirect\n- Count the clicks of each link")],
        outputs=OUTPUTS,
    )
    schema = synthesis_schema(AGENTS)
    request = ChatRequest(DEFAULT_CHAT_MODEL.name, messages, 600, 0.0, output_schema=schema)
    answer, usage = await complete(request)
    assert usage.stop_reason == "end", f"cut at {usage}:\n{answer}"

    data = json.loads(answer, strict=False)  # the grammar made it JSON, nothing around it
    assert list(data) == ["agreed", "debated", "merged"]
    assert all(isinstance(point, str) for point in data["agreed"])
    for debate in data["debated"]:
        assert set(debate) == {"point", "positions"}
        assert set(debate["positions"]) == set(AGENTS)
    assert isinstance(data["merged"], str) and data["merged"].strip()

    parsed = parse_synthesis(answer, AGENTS)
    assert parsed.parsed
    stripped, _ = strip_example(parsed)
    assert stripped.text.strip(), f"only the prompt's example:\n{answer}"
