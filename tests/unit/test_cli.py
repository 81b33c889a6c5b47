"""The real ``facilitair`` CLI, run as a process: bad input fails with one clear line and the right code.

Without ``--json`` the message is one line on stderr; with ``--json`` it is one ``error`` event on
stdout. No case may print a traceback. None of these reach a model, so they are quick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from facilitair_tui.core import events as ev
from facilitair_tui.embedded_models import INSTALL_COMMAND
from tests.conftest import CliRunner, run_cli

EXIT_USAGE = 2
EXIT_CONFIG = 3
SECRET = "sk-test-SECRET-xyz"


@dataclass(frozen=True)
class BadInput:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    stdin: str | None = None
    # Files to write into the test's directory first: name -> text. "{dir}" in args is that directory.
    files: dict[str, str] = field(default_factory=dict)
    # Run with a FACILITAIR_HOME that has no model in it.
    no_model: bool = False


BAD_INPUTS = [
    BadInput("empty-task", ("collaborate", ""), EXIT_USAGE, ("task is empty", "describe")),
    BadInput("blank-task", ("collaborate", "   "), EXIT_USAGE, ("task is empty",)),
    BadInput(
        "huge-task-on-stdin",
        ("collaborate", "-"),
        EXIT_USAGE,
        ("200,001 characters", "200,000", "Shorten it"),
        stdin="x" * 200_001,
    ),
    BadInput("blank-task-on-stdin", ("collaborate", "-"), EXIT_USAGE, ("task is empty",), stdin="  \n\n"),
    BadInput(
        "context-without-equals",
        ("collaborate", "--context", "nope", "t"),
        EXIT_USAGE,
        ("'nope'", "KEY=VALUE", "--context language=python"),
    ),
    BadInput(
        "unknown-strategy",
        ("collaborate", "--strategy", "nosuch", "t"),
        EXIT_USAGE,
        ("'nosuch'", "local, balanced, quality, cheap"),
    ),
    BadInput(
        "model-without-provider",
        ("collaborate", "--model", "gpt4", "t"),
        EXIT_USAGE,
        ("'gpt4'", "PROVIDER:MODEL"),
    ),
    BadInput(
        "unknown-provider",
        ("collaborate", "--model", "nosuchprovider:x", "t"),
        EXIT_CONFIG,
        ("'nosuchprovider'", "local, openai, anthropic, openrouter", "[providers.NAME]"),
    ),
    BadInput(
        "openai-without-key",
        ("collaborate", "--model", "openai:gpt-4o-mini", "t"),
        EXIT_CONFIG,
        ("openai:gpt-4o-mini", "set OPENAI_API_KEY", "--strategy local"),
    ),
    BadInput(
        "cheap-strategy-without-keys",
        ("collaborate", "--strategy", "cheap", "t"),
        EXIT_CONFIG,
        ("needs an API key", "OPENAI_API_KEY"),
    ),
    BadInput(
        "missing-workflow-file",
        ("collaborate", "--workflow", "/nonexistent.toml", "t"),
        EXIT_CONFIG,
        ("/nonexistent.toml", "does not exist"),
    ),
    BadInput(
        "workflow-toml-error",
        ("collaborate", "--workflow", "{dir}/broken.toml", "t"),
        EXIT_CONFIG,
        ("{dir}/broken.toml", "not valid TOML", "line"),
        files={"broken.toml": 'name = "broken\n[[roles]]\n'},
    ),
    BadInput(
        "max-tokens-zero",
        ("collaborate", "--max-tokens", "0", "t"),
        EXIT_USAGE,
        ("--max-tokens", "0", "--help"),
    ),
    BadInput(
        "max-tokens-not-a-number",
        ("collaborate", "--max-tokens", "many", "t"),
        EXIT_USAGE,
        ("--max-tokens", "'many'"),
    ),
    BadInput("no-task", ("collaborate",), EXIT_USAGE, ("TASK",)),
    BadInput("unknown-option", ("collaborate", "--colour", "t"), EXIT_USAGE, ("--colour",)),
    BadInput(
        "model-not-installed",
        ("collaborate", "Write a function that reverses a string"),
        EXIT_CONFIG,
        ("qwen2.5-coder-0.5b", "not installed", INSTALL_COMMAND),
        no_model=True,
    ),
]


def _run_bad(
    case: BadInput, *, as_json: bool, home: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name, text in case.files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    args = [a.replace("{dir}", str(workdir)) for a in case.args]
    if as_json:
        args.insert(1, "--json")
    if case.no_model:
        home = tmp_path / "empty-home"
        home.mkdir()
    return run_cli(*args, home=home, input=case.stdin, cwd=workdir)


def _expected(case: BadInput, tmp_path: Path) -> list[str]:
    return [s.replace("{dir}", str(tmp_path / "work")) for s in case.says]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input_fails_with_one_line_on_stderr(
    case: BadInput, facilitair_home: Path, tmp_path: Path
) -> None:
    proc = _run_bad(case, as_json=False, home=facilitair_home, tmp_path=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == case.code, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    (line,) = lines
    assert line.startswith("error: ")
    for fragment in _expected(case, tmp_path):
        assert fragment in line


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input_with_json_is_one_error_event_on_stdout(
    case: BadInput, facilitair_home: Path, tmp_path: Path
) -> None:
    proc = _run_bad(case, as_json=True, home=facilitair_home, tmp_path=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == case.code, proc.stdout + proc.stderr
    assert proc.stdout.endswith("\n")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    event = ev.from_json(lines[0])
    assert isinstance(event, ev.Error)
    assert event.recoverable is False
    assert "\n" not in event.message
    for fragment in _expected(case, tmp_path):
        assert fragment in event.message


def test_a_workflow_with_invalid_fields_lists_each_problem(cli: CliRunner, tmp_path: Path) -> None:
    from importlib import resources

    default = (resources.files("facilitair_tui") / "data" / "workflows" / "default.toml").read_text("utf-8")
    path = tmp_path / "colour.toml"
    path.write_text(default.replace('name = "coder"\n', 'name = "coder"\ncolour = "red"\n'), encoding="utf-8")
    proc = cli("collaborate", "--workflow", str(path), "t")
    assert proc.returncode == EXIT_CONFIG
    assert "Traceback" not in proc.stderr
    assert f"{path}: roles[1].colour" in proc.stderr


def test_a_broken_config_file_is_named(cli: CliRunner, facilitair_home: Path) -> None:
    config = facilitair_home / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text("[local\nthreads = 1\n", encoding="utf-8")
    proc = cli("collaborate", "--json", "t")
    assert proc.returncode == EXIT_CONFIG
    event = ev.from_json(proc.stdout.strip())
    assert isinstance(event, ev.Error)
    assert str(config) in event.message
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- help and version


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("--help",), ("collaborate", "models")),
        (("-h",), ("collaborate",)),
        (
            ("collaborate", "--help"),
            ("TASK", "--context", "--strategy", "--model", "--json", "--max-tokens", "--out", "--force"),
        ),
        (("sessions", "export", "--help"), ("--format", "--output", "--out", "--force")),
        (("models", "--help"), ("install", "list")),
        (("models", "list", "--help"), ("--json",)),
    ],
)
def test_help_exits_0(cli: CliRunner, args: tuple[str, ...], mentions: tuple[str, ...]) -> None:
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    for word in mentions:
        assert word in proc.stdout


def test_version(cli: CliRunner) -> None:
    from facilitair_tui import __version__

    proc = cli("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout


# ----------------------------------------------------------------------------- models list


def _models_list(cli: CliRunner, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    proc = cli("models", "list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert isinstance(entries, list)
    return {e["name"]: e for e in entries}


def test_models_list_shows_the_local_model_usable_and_openai_needing_a_key(cli: CliRunner) -> None:
    entries = _models_list(cli)
    local = entries["local:smollm2-135m"]
    assert local["usable"] is True
    openai = entries["openai"]
    assert openai["usable"] is False
    assert "OPENAI_API_KEY" in str(openai["detail"])
    assert entries["openrouter"]["usable"] is False
    assert "OPENROUTER_API_KEY" in str(entries["openrouter"]["detail"])
    assert entries["anthropic"]["usable"] is False
    assert "ANTHROPIC_API_KEY" in str(entries["anthropic"]["detail"])


def test_models_list_without_the_model_says_how_to_install_it(tmp_path: Path, facilitair_home: Path) -> None:
    empty = tmp_path / "empty-home"
    empty.mkdir()
    proc = run_cli("models", "list", "--json", home=empty)
    assert proc.returncode == 0, proc.stderr
    entries = {e["name"]: e for e in json.loads(proc.stdout)}
    for name in ("local:smollm2-135m", "embedder:all-minilm-l6-v2"):
        assert entries[name]["usable"] is False
        assert INSTALL_COMMAND in entries[name]["detail"]


def test_models_list_never_shows_a_key(cli: CliRunner) -> None:
    env = {"OPENAI_API_KEY": SECRET, "OPENROUTER_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET}
    entries = _models_list(cli, env)
    assert entries["anthropic"]["usable"] is True
    assert "Anthropic Messages API" in str(entries["anthropic"]["detail"])
    assert entries["openai"]["usable"] is True
    assert entries["openrouter"]["usable"] is True
    for args in (("models", "list", "--json"), ("models", "list")):
        proc = cli(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "SECRET" not in proc.stdout + proc.stderr
        assert SECRET not in proc.stdout + proc.stderr


def test_models_list_table(cli: CliRunner) -> None:
    proc = cli("models", "list")
    assert proc.returncode == 0, proc.stderr
    assert "local:smollm2-135m" in proc.stdout
    assert "openai" in proc.stdout


def test_the_sessions_commands_do_not_load_the_cache(tmp_path: Path) -> None:
    """Opening the session store must not pull in the cache (numpy, diskcache, the embedder)."""
    code = (
        "import sys\n"
        "from facilitair_tui.cli.main import main\n"
        "main(['sessions', 'list', '--json'], standalone_mode=False)\n"
        "print(sorted(m for m in ('facilitair_tui.cache', 'numpy', 'diskcache') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "FACILITAIR_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "[]"]  # the empty session list, then no cache module
