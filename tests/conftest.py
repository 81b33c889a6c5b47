"""Shared fixtures: a private Facilitair home with the real embedded model, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from facilitair_tui.embedded_models import (
    DEFAULT_CHAT_MODEL,
    INSTALL_COMMAND,
    INSTALLABLE,
    MINILM,
    SMOLLM2,
    EmbeddedModel,
)
from facilitair_tui.native import Embedder

# Running the real model on a small machine can take a while; the tests assert outcomes, never time.
CLI_TIMEOUT_S = 600

# Variables that would let a developer's shell change what a run can reach or what it costs.
_KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
)

CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


def _installed_location(model: EmbeddedModel, monkeypatch: pytest.MonkeyPatch) -> Path | None:
    """Where the model is installed: the user's own FACILITAIR_HOME or the XDG directories."""
    candidates = []
    if os.environ.get("FACILITAIR_HOME", "").strip():
        candidates.append(model.location)
    with monkeypatch.context() as scoped:
        scoped.delenv("FACILITAIR_HOME", raising=False)
        candidates.append(model.location)
    for location in candidates:
        if model.complete_in(location if model.folder else location.parent):
            return location.resolve()
    return None


def link_model(model: EmbeddedModel, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Link the installed ``model`` into ``home``'s models directory; skip the test (saying the
    command to run) when it is not installed anywhere."""
    location = _installed_location(model, monkeypatch)
    if location is None:
        pytest.skip(f"the embedded model {model.name} is not installed; run: {INSTALL_COMMAND}")
    models_dir = home / "data" / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / location.name).symlink_to(location)


def make_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``home`` the FACILITAIR_HOME, with the installed models linked in and no API keys around.

    Skips the test (saying the command to run) when a chat model `facilitair models install` puts
    in place is not installed anywhere: the default (the local strategy runs on it) and SmolLM2
    (the tests of mechanics run on it, it is fast). The others are linked when installed.
    """
    for model in (DEFAULT_CHAT_MODEL, SMOLLM2):
        link_model(model, home, monkeypatch)
    for model in INSTALLABLE.values():
        if model not in (DEFAULT_CHAT_MODEL, SMOLLM2) and _installed_location(model, monkeypatch) is not None:
            link_model(model, home, monkeypatch)
    monkeypatch.setenv("FACILITAIR_HOME", str(home))
    for name in _KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert SMOLLM2.installed(), "the linked model should be found through FACILITAIR_HOME"
    return home


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The real embedder, loaded once (skips, naming the install command, when not installed)."""
    home = tmp_path_factory.mktemp("minilm-home")
    with pytest.MonkeyPatch.context() as patch:
        link_model(MINILM, home, patch)
        patch.setenv("FACILITAIR_HOME", str(home))
        return Embedder.load(threads=2)


@pytest.fixture
def facilitair_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FACILITAIR_HOME whose models directory holds (a link to) the installed model."""
    return make_home(tmp_path / "facilitair-home", monkeypatch)


def run_cli(
    *args: str,
    home: Path,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``facilitair ARGS`` as a real process with FACILITAIR_HOME=home (``env`` goes on top)."""
    full_env = {**os.environ, "FACILITAIR_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "facilitair_tui.cli.main", *args],
        input=input,
        env=full_env,
        cwd=cwd or home,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def cli(facilitair_home: Path) -> CliRunner:
    """``cli("collaborate", "task", input=..., env=...)``: the real CLI in the test's home."""

    def runner(
        *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=facilitair_home, input=input, env=env)

    return runner


def with_env(cli: CliRunner, env: Mapping[str, str]) -> CliRunner:
    """``cli`` with ``env`` on top of every run's environment (a key, a local server's URL)."""

    def runner(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return cli(*args, input=input, env=env)

    return runner
