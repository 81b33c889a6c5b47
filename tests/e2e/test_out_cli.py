"""End to end: ``facilitair collaborate --out DIR`` and ``facilitair sessions export ID --out DIR``.

The real CLI and the real ``openai`` SDK against a local server that answers as a small team
writing a URL shortener (``tests/support/team_session.py``). The files written are run: their
tests pass. A directory that would be refused is refused before any model is called.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facilitair_tui.core import events as ev
from tests.conftest import CliRunner, with_env
from tests.support.openai_sse_server import OpenAISSEServer, Script
from tests.support.team_session import (
    FILES,
    MODULE_FIRST,
    MODULE_FIXED,
    TASK,
    deltas,
    last_prompt,
    reply_text,
    stage_prompt,
)

pytestmark = pytest.mark.e2e

KEY = "sk-test-out-0123456789abcdef"


def answer(body: Any) -> Script:
    return Script(deltas=deltas(reply_text(last_prompt(body))))


def fail_from_implementation(body: Any) -> Script:
    prompt = stage_prompt(body)
    if "Implementation." in prompt or "Review." in prompt:
        return Script(status=401)
    return answer(body)


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        srv.script_for = answer
        yield srv


@pytest.fixture
def run(cli: CliRunner, server: OpenAISSEServer) -> CliRunner:
    return with_env(cli, {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url})


def collaborate(run: CliRunner, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        "collaborate", "--model", "openai:gpt-4o-mini", "--no-cache", "-c", "language=python", *extra, TASK
    )


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


def session_ids(run: CliRunner) -> list[str]:
    listed = run("sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [item["id"] for item in json.loads(listed.stdout)]


def test_collaborate_writes_the_code_its_tests_and_a_readme_and_the_tests_pass(
    run: CliRunner, facilitair_home: Path
) -> None:
    done = collaborate(run, "--out", "shortener")
    assert done.returncode == 0, done.stderr
    out = facilitair_home / "shortener"
    assert "wrote 3 files to shortener: shortener.py, tests/test_shortener.py, README.md" in done.stderr
    files = tree(out)
    assert list(files) == sorted(FILES)
    assert files["shortener.py"] == MODULE_FIXED  # the review's fix, not the implementation's first try
    [sid] = session_ids(run)
    readme = files["README.md"]
    assert readme.startswith(f"# {TASK}\n") and f"Session `{sid}`" in readme and "Incomplete" not in readme
    tests = run_pytest(out)
    assert tests.returncode == 0 and "6 passed" in tests.stdout, tests.stdout + tests.stderr
    # The review's fix is what makes them pass: on the implementation's first try one fails.
    (out / "shortener.py").write_text(MODULE_FIRST)
    first_try = run_pytest(out)
    assert first_try.returncode == 1 and "1 failed, 5 passed" in first_try.stdout, first_try.stdout
    (out / "shortener.py").write_text(MODULE_FIXED)

    # The recorded session writes the same files.
    exported = run("sessions", "export", sid[:8], "--out", "again")
    assert exported.returncode == 0, exported.stderr
    assert tree(facilitair_home / "again") == files


def test_a_directory_with_files_is_refused_before_any_model_is_called(
    run: CliRunner, server: OpenAISSEServer, facilitair_home: Path
) -> None:
    out = facilitair_home / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = collaborate(run, "--out", "busy")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: busy already has files; choose an empty directory or add --force"
    as_json = collaborate(run, "--json", "--out", "busy")
    [event] = [ev.from_json(line) for line in as_json.stdout.splitlines()]
    assert as_json.returncode == 2 and isinstance(event, ev.Error) and "add --force" in event.message
    assert server.requests == [] and session_ids(run) == []  # nothing ran, nothing was paid for
    assert tree(out) == {"notes.txt": "mine"}


def test_force_writes_into_a_directory_and_keeps_what_is_not_its_own(
    run: CliRunner, facilitair_home: Path
) -> None:
    out = facilitair_home / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "shortener.py").write_text("old")
    done = collaborate(run, "--out", "busy", "--force")
    assert done.returncode == 0, done.stderr
    files = tree(out)
    assert files["notes.txt"] == "mine" and files["shortener.py"] == MODULE_FIXED
    assert sorted(files) == sorted([*FILES, "notes.txt"])


def test_a_session_that_failed_writes_what_it_had_and_says_it_is_incomplete(
    run: CliRunner, server: OpenAISSEServer, facilitair_home: Path
) -> None:
    server.script_for = fail_from_implementation
    failed = collaborate(run, "--out", "partial")
    assert failed.returncode == 3
    files = tree(facilitair_home / "partial")
    assert list(files) == ["README.md"]
    incomplete = "**Incomplete:** the session failed after 2 of 4 stages (Requirements, Architecture)"
    assert incomplete in files["README.md"] and "## Requirements" in files["README.md"]
    assert "wrote 1 file to partial (the session failed: its README says what is missing)" in failed.stderr
    [sid] = session_ids(run)
    exported = run("sessions", "export", sid, "--out", "exported")
    assert exported.returncode == 0, exported.stderr
    assert tree(facilitair_home / "exported") == files


def test_out_options_that_contradict_each_other_fail_in_one_line(run: CliRunner) -> None:
    forced = collaborate(run, "--force")
    assert forced.returncode == 2 and "--force goes with --out DIR" in forced.stderr
    for args, says in (
        (
            ("-o", "one.md", "--out", "dir"),
            "-o writes one file and --out a directory of files; give one of them",
        ),
        (("--format", "json", "--out", "dir"), "--format is for the one-document export"),
    ):
        bad = run("sessions", "export", "abc", *args)
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr
