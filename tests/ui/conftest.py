"""Every UI test runs in its own FACILITAIR_HOME: the app records live sessions (for the history)
and must never write into the developer's own data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "facilitair-home"
    monkeypatch.setenv("FACILITAIR_HOME", str(home))
    return home
