"""The core must stay free of UI and provider SDKs (Harlequin's check, done in a subprocess)."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_ui_and_no_sdk() -> None:
    code = (
        "import sys\n"
        "import facilitair_tui.core.orchestrator, facilitair_tui.core.events, facilitair_tui.core.workflow\n"
        "bad = ('textual', 'rich', 'openai', 'anthropic', 'llama_cpp')\n"
        "print(','.join(sorted(m for m in bad if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_does_not_load_provider_sdks_until_a_run_needs_them() -> None:
    code = (
        "import sys\nimport facilitair_tui.cli.main\n"
        "print(','.join(m for m in ('openai', 'llama_cpp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _loaded(module: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys\nimport {module}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_two_front_ends_load_nothing_of_each_other() -> None:
    assert _loaded("facilitair_tui.cli.main", ("textual", "facilitair_tui.tui")) == []
    assert _loaded("facilitair_tui.tui.main", ("facilitair_tui.cli",)) == []


def test_the_tui_entry_point_loads_the_session_store_only_when_it_runs() -> None:
    assert _loaded("facilitair_tui.tui.main", ("facilitair_tui.store",)) == []


def test_the_eval_loads_no_ui() -> None:
    modules = (
        "facilitair_tui.evaluation.runs",
        "facilitair_tui.evaluation.report",
        "facilitair_tui.recording",
    )
    for module in modules:
        assert _loaded(module, ("textual", "rich", "click", "facilitair_tui.cli", "facilitair_tui.tui")) == []
