"""A recorded session exported: its document (``sessions export``) and its files (``--out``), for a
session that finished and one stopped mid-chunk, read back from a real session store."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from facilitair_tui.cli.out_dir import stored_result
from facilitair_tui.cli.session_export import markdown
from facilitair_tui.core import events as ev
from facilitair_tui.core.deliverable import build_deliverable
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.store import SessionStore
from tests.support.team_session import CONTEXT, MODULE_FIXED, TASK, scripted_reply

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    opened = SessionStore.open(tmp_path / "sessions" / "sessions.db")
    yield opened  # type: ignore[misc]
    opened.close()


def record(store: SessionStore, *, stop_in_chunk: int | None = None) -> str:
    spec = SessionSpec(task=TASK, workflow=WORKFLOW, strategy="test", context=CONTEXT)
    collaboration = Collaboration(spec, SingleProviderResolver(ScriptedProvider(scripted_reply)))
    recorder = store.recorder(spec, collaboration.session_id)

    async def drive() -> None:
        async for event in collaboration.events():
            recorder.record(event)
            if isinstance(event, ev.Token) and event.chunk == stop_in_chunk and event.agent == "coder":
                collaboration.stop()

    asyncio.run(drive())
    recorder.close()
    return collaboration.session_id


def test_a_finished_sessions_document_has_the_closing_line_under_its_title(store: SessionStore) -> None:
    sid = record(store)
    document = markdown(store, sid)
    assert document.startswith(f"# {TASK}\n\n_Collaboration complete: ")
    assert document.count(f"# {TASK}") == 1
    assert f"Session `{sid}`" in document and "## Code\n\n### `shortener.py`" in document
    assert "(interrupted)" not in document and "Incomplete" not in document
    files = build_deliverable(stored_result(store, store.load(sid))).files
    assert files["shortener.py"] == MODULE_FIXED


def test_a_stopped_session_keeps_its_finished_chunks_and_the_unfinished_text(store: SessionStore) -> None:
    sid = record(store, stop_in_chunk=3)
    stored = store.load(sid)
    assert stored.summary.status == "stopped" and len(stored.syntheses) == 2
    document = markdown(store, sid)
    assert (
        "**Incomplete:** the session was stopped after 2 of 4 stages (Requirements, Architecture)" in document
    )
    assert "## Implementation (interrupted)\n\n### Architect (unfinished)\n\nNotes on this stage" in document
    assert "\n## Code\n" not in document  # the implementation never finished: no file
    readme = build_deliverable(stored_result(store, stored)).files["README.md"]
    assert "**Incomplete:** the session was stopped after 2 of 4 stages" in readme


def test_a_session_whose_workflow_no_longer_loads_still_has_its_stages(store: SessionStore) -> None:
    sid = record(store, stop_in_chunk=3)
    stored = dataclasses.replace(store.load(sid), workflow=None)
    result = stored_result(store, stored)
    assert [(s.number, s.title, s.id) for s in result.stages] == [
        (1, "Requirements", ""),
        (2, "Architecture", ""),
        (3, "Implementation", ""),
        (4, "Chunk 4", ""),  # never started: its title was never recorded
    ]
    assert [s.part for s in result.stages[:3]] == ["requirements", "design", "implementation"]
