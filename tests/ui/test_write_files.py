"""The main screen's ``w``: the session's files written to a directory, from what the screen was
shown (no model is called), refused until the session has ended, careful with a busy directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Static

from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.screens.write_files import WriteFilesScreen, default_directory
from tests.support.team_session import CONTEXT, FILES, MODULE_FIXED, TASK, scripted_reply

from .support import WORKFLOW, FakeClock, GatedProvider, hold_from_chunk, wait_until

SIZE = (160, 45)


def team(provider: ScriptedProvider | GatedProvider) -> Collaboration:
    spec = SessionSpec(
        task=TASK, context=CONTEXT, workflow=WORKFLOW, strategy="test", session_id="write-test"
    )
    return Collaboration(spec, SingleProviderResolver(provider), clock=FakeClock(), retry=NO_RETRY)


def main_of(app: FacilitairApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


def toasts(app: FacilitairApp) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def entries(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def dialog_text(dialog: WriteFilesScreen) -> str:
    return "\n".join(str(widget.render()) for widget in dialog.query(Static))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_w_writes_the_finished_sessions_files_without_calling_a_model(tmp_path: Path) -> None:
    provider = ScriptedProvider(scripted_reply)
    app = FacilitairApp(team(provider), live_clock=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        calls = len(provider.calls)

        await pilot.press("w")
        dialog = app.screen
        assert isinstance(dialog, WriteFilesScreen)
        target = tmp_path / "build-a-url-shortener-library"
        assert dialog.query_one("#write-dir", Input).value == str(target)
        listed = dialog_text(dialog)
        assert "shortener.py" in listed and "tests/test_shortener.py" in listed and "README.md" in listed
        assert not dialog.query_one("#write-force", Checkbox).has_class("-visible")  # nothing to overwrite

        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog closed")
        files = tree(target)
        assert sorted(files) == sorted(FILES) and files["shortener.py"] == MODULE_FIXED
        assert "Incomplete" not in files["README.md"]
        await wait_until(pilot, lambda: "Wrote 3 files to" in toasts(app), "the notification")
        assert len(provider.calls) == calls  # the files came from the screen's events


async def test_a_directory_with_files_needs_the_box_ticked_and_keeps_what_is_not_ours(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    (busy / "shortener.py").write_text("old")
    app = FacilitairApp(team(ScriptedProvider(scripted_reply)), live_clock=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        await pilot.press("w")
        dialog = app.screen
        assert isinstance(dialog, WriteFilesScreen)
        dialog.query_one("#write-dir", Input).value = str(busy)
        await pilot.pause()
        force = dialog.query_one("#write-force", Checkbox)
        assert force.has_class("-visible") and not force.value

        await pilot.press("enter")
        error = dialog.query_one("#write-error", Static)
        assert error.has_class("-visible") and "tick the box" in str(error.render())
        assert app.screen is dialog and tree(busy) == {"notes.txt": "mine", "shortener.py": "old"}

        force.value = True
        dialog.query_one("#write-run").focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog closed")
        files = tree(busy)
        assert files["notes.txt"] == "mine" and files["shortener.py"] == MODULE_FIXED


async def test_w_waits_for_the_end_then_writes_what_a_stopped_session_has(tmp_path: Path) -> None:
    provider = GatedProvider(scripted_reply, hold_from_chunk(3))  # type: ignore[arg-type]
    app = FacilitairApp(team(provider), live_clock=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: provider.held > 0, "chunk 3 waits at the gate")
        await pilot.press("w")
        assert app.screen is screen  # no dialog while the session runs
        await wait_until(pilot, lambda: "once the session has ended" in toasts(app), "the notification")

        screen.collaboration.stop()
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session stopped")
        await pilot.press("w")
        assert isinstance(app.screen, WriteFilesScreen)
        assert "did not finish" in dialog_text(app.screen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog closed")
        files = tree(tmp_path / "build-a-url-shortener-library")
        assert list(files) == ["README.md"]
        assert "**Incomplete:** the session was stopped after 2 of 4 stages" in files["README.md"]


async def test_escape_closes_the_dialog_and_writes_nothing(tmp_path: Path) -> None:
    app = FacilitairApp(team(ScriptedProvider(scripted_reply)), live_clock=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        await pilot.press("w")
        assert isinstance(app.screen, WriteFilesScreen)
        await pilot.press("escape")
        assert app.screen is screen and entries(tmp_path) == []


def test_the_default_directory_is_named_after_the_task(tmp_path: Path) -> None:
    assert default_directory("Build a URL shortener!", tmp_path) == tmp_path / "build-a-url-shortener"
    assert default_directory("   ", tmp_path) == tmp_path / "facilitair-output"
    long = default_directory("one two three four five six seven eight", tmp_path)
    assert long == tmp_path / "one-two-three-four-five-six"
