"""``facilitair-tui``: bad input fails in one line with the CLI's exit codes; good input runs the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from facilitair_tui.core import events as ev
from facilitair_tui.providers.scripted import ScriptedProvider
from facilitair_tui.session import Prepared
from facilitair_tui.tui import main as tui
from facilitair_tui.tui.app import FacilitairApp

from .support import Script, collaboration

_KEYS = ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def run_tui(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _KEYS}
    env["FACILITAIR_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "facilitair_tui.tui.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--strategy", "nope"), 2, "unknown strategy 'nope'"),
        (("--context", "language"), 2, "is not KEY=VALUE"),
        (("--task", "x", "--model", "nonsense"), 2, "is not of the form PROVIDER:MODEL"),
        (("--task", "x", "--strategy", "nope"), 2, "unknown strategy 'nope'"),
        (("--task", "x", "--max-tokens", "0"), 2, "--max-tokens"),
        (("--task", "x", "--model", "openai:gpt-4o-mini"), 3, "needs an API key"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_the_cli_exit_codes(
    args: tuple[str, ...], code: int, message: str, tmp_path: Path
) -> None:
    result = run_tui(*args, home=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_good_task_builds_the_session_and_runs_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    collab = collaboration(ScriptedProvider(Script()))
    closed: list[bool] = []

    class Registry:
        async def aclose(self) -> None:
            closed.append(True)

    seen: dict[str, object] = {}

    def fake_prepare(task: str, **options: object) -> Prepared:
        seen.update(options, task=task)
        return Prepared(collab, Registry())  # type: ignore[arg-type]

    async def fake_run(self: FacilitairApp) -> ev.SessionFinished:
        seen["app"] = self
        return ev.SessionFinished(
            session_id="s",
            status="done",
            output="",
            input_tokens=1,
            output_tokens=1,
            cost_usd=0.0,
            duration_s=1,
        )

    monkeypatch.setattr("facilitair_tui.session.prepare", fake_prepare)
    monkeypatch.setattr(FacilitairApp, "run_async", fake_run)
    result = CliRunner().invoke(
        tui.main,
        ["--task", "Build it", "--context", "language=python", "--strategy", "test", "--max-tokens", "9"],
    )
    assert result.exit_code == 0, result.output
    assert seen["task"] == "Build it"
    assert seen["context"] == ("language=python",) and seen["strategy"] == "test" and seen["max_tokens"] == 9
    assert isinstance(seen["app"], FacilitairApp)
    assert closed == [True]


def test_exit_codes_follow_the_final_status() -> None:
    def final(status: ev.SessionStatus) -> ev.SessionFinished:
        return ev.SessionFinished(
            session_id="s",
            status=status,
            output="",
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            duration_s=0,
        )

    assert tui.exit_code(final("done")) == 0
    assert tui.exit_code(final("failed")) == 3
    assert tui.exit_code(final("stopped")) == 130
    assert tui.exit_code(None) == 130


def test_no_task_opens_the_task_entry_prefilled_with_the_keymap_from_the_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('[keys]\npause = "x"\n', encoding="utf-8")
    seen: dict[str, FacilitairApp] = {}

    async def fake_run(self: FacilitairApp) -> None:
        seen["app"] = self
        return None

    monkeypatch.setattr(FacilitairApp, "run_async", fake_run)
    result = CliRunner().invoke(tui.main, ["--context", "language=python", "--strategy", "balanced"])
    assert result.exit_code == 130, result.output  # quit before starting
    app = seen["app"]
    assert app.keymap == {"pause": "x"}
    entry = app._entry
    assert entry is not None
    assert entry.context == {"language": "python"} and entry.default_strategy == "balanced"
    assert "local" in entry.strategies
