"""The code workflow in the TUI: the app asks before the code runs, each run shows in the
coder's pane with its failing tests, and "always" stops the asking."""

from __future__ import annotations

from facilitair_tui.core.gateway import NO_RETRY
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ModelRef
from facilitair_tui.providers.scripted import SingleProviderResolver
from facilitair_tui.sandbox import Sandbox
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.main import MainScreen
from facilitair_tui.tui.screens.run_code import RunApproval, RunCodeScreen
from tests.unit.test_code_loop import RIGHT, TASK, TESTS, WORKFLOW, WRONG, team

from .support import wait_until

WIDE = (160, 45)


def app_for(answers: dict[str, list[str]]) -> tuple[FacilitairApp, RunApproval]:
    spec = SessionSpec(
        task=TASK, workflow=WORKFLOW, strategy="local", model_override=ModelRef.parse("scripted:m")
    )
    approval = RunApproval()
    collaboration = Collaboration(
        spec, SingleProviderResolver(team(answers)), retry=NO_RETRY, runner=Sandbox(), approve=approval
    )
    app = FacilitairApp(collaboration, live_clock=False)
    approval.app = app
    return app, approval


def main_of(app: FacilitairApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


def asking(app: FacilitairApp) -> bool:
    return isinstance(app.screen, RunCodeScreen) and bool(app.screen.query("#run-code-no"))


async def test_the_app_asks_then_shows_each_run_in_the_coders_pane() -> None:
    app, _ = app_for({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: asking(app), "the app asks before the first run")
        question = app.screen
        assert isinstance(question, RunCodeScreen)
        assert "n + 2" in question.request.code and question.request.agent == "coder"
        await pilot.press("y")
        await wait_until(pilot, lambda: asking(app), "and again before the repaired code runs")
        await pilot.press("y")
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        coder = screen.pane("coder")
        assert "tests passed" in coder.text
        assert "double(-3) returned -1, expected -6" in coder.text
        assert screen.view.final is not None and "return 2 * n" in screen.view.final.output


async def test_always_runs_the_rest_without_asking_and_skip_runs_nothing() -> None:
    app, approval = app_for({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: asking(app), "the app asks")
        await pilot.press("a")
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        assert approval.auto
    app, _ = app_for({"coder": [WRONG], "tester": [TESTS], "repair": [RIGHT]})
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: asking(app), "the app asks")
        await pilot.press("n")
        screen = main_of(app)
        await wait_until(pilot, lambda: screen.has_class("-finished"), "the session finished")
        assert "was not run" in screen.pane("coder").text
