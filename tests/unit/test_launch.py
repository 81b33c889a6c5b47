"""The task entry's options from the command line, and the first-run check."""

from __future__ import annotations

from pathlib import Path

import pytest

from facilitair_tui.core.provider import ModelRef, UsageError
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL, SMOLLM2
from facilitair_tui.tui.entry_options import EntryOptions, missing_model


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path))


def test_the_default_strategy_and_the_context_come_from_the_command_line() -> None:
    entry = EntryOptions.load(context=["Team Size=3"])
    assert entry.default_strategy == "local"
    assert entry.context == {"team_size": "3"}
    assert ModelRef("local", DEFAULT_CHAT_MODEL.name) in entry.models_of("local")


def test_bad_options_fail_before_any_screen() -> None:
    with pytest.raises(UsageError, match="unknown strategy 'nope'"):
        EntryOptions.load(strategy="nope")
    with pytest.raises(UsageError, match="PROVIDER:MODEL"):
        EntryOptions.load(model="nonsense")


def test_missing_model_names_only_an_uninstalled_embedded_model() -> None:
    entry = EntryOptions.load()
    assert missing_model(entry.models_of("local")) == DEFAULT_CHAT_MODEL
    assert missing_model(entry.models_of("quality")) is None
    assert missing_model([ModelRef("local", "no-such-model")]) is None
    assert EntryOptions.load(model="openai:gpt-4o-mini").models_of("local") == (
        ModelRef("openai", "gpt-4o-mini"),
    )


def test_an_installed_model_is_not_missing() -> None:
    SMOLLM2.path.parent.mkdir(parents=True)
    with SMOLLM2.path.open("wb") as handle:
        handle.truncate(SMOLLM2.size)
    assert missing_model([ModelRef("local", SMOLLM2.name)]) is None
