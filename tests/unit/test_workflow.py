"""Workflows from TOML: the packaged default, and every broken file reported with file, place and field."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from facilitair_tui.core.provider import ConfigurationError, ModelRef
from facilitair_tui.core.workflow import WorkflowError, load_workflow


@pytest.fixture(scope="module")
def default_text() -> str:
    ref = resources.files("facilitair_tui") / "data" / "workflows" / "default.toml"
    return ref.read_text(encoding="utf-8")


def _edited(text: str, old: str, new: str, *, count: int = 1) -> str:
    """``text`` with ``old`` replaced by ``new``; ``old`` must occur exactly ``count`` times."""
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in the default workflow"
    return text.replace(old, new)


def _without_system_prompt(text: str, *, after: str, replacement: str = "") -> str:
    """``text`` with the first ``system_prompt = \"\"\"...\"\"\"`` block after ``after`` replaced."""
    anchor = text.index(after)
    start = text.index('system_prompt = """', anchor)
    end = text.index('"""', start + len('system_prompt = """')) + len('"""\n')
    return text[:start] + replacement + text[end:]


def _write(tmp_path: Path, text: str, name: str = "workflow.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    return str(info.value)


# ----------------------------------------------------------------------------- the default


def test_packaged_default_loads_with_three_roles_reading_upstream() -> None:
    wf = load_workflow()
    assert wf.name == "default"
    assert [r.name for r in wf.roles] == ["architect", "coder", "reviewer"]
    assert wf.role("architect").reads == ()
    assert wf.role("coder").reads == ("architect",)
    assert set(wf.role("reviewer").reads) == {"architect", "coder"}
    assert wf.synthesizer.name == "synthesizer"
    assert all(r.system_prompt.strip() for r in (*wf.roles, wf.synthesizer))


def test_packaged_default_has_four_chunks_in_order() -> None:
    wf = load_workflow()
    assert [c.id for c in wf.chunks] == ["requirements", "architecture", "implementation", "review"]
    assert all(c.title and c.goal for c in wf.chunks)


def test_packaged_default_strategies_and_local_default() -> None:
    wf = load_workflow()
    assert {"local", "balanced", "quality", "cheap"} <= set(wf.strategies)
    assert wf.default_strategy == "local"
    local = wf.models_for("local")
    assert set(local) == {"architect", "coder", "reviewer", "synthesizer"}
    assert set(local.values()) == {ModelRef("local", "qwen2.5-coder-0.5b")}
    # Every strategy resolves for every role and the synthesizer.
    for strategy in wf.strategies:
        assert set(wf.models_for(strategy)) == set(local)


def test_a_copy_of_the_default_loads_from_a_file(tmp_path: Path, default_text: str) -> None:
    wf = load_workflow(_write(tmp_path, default_text))
    assert wf == load_workflow()


def test_unknown_strategy_is_a_usage_error_listing_the_offered_ones() -> None:
    from facilitair_tui.core.provider import UsageError

    with pytest.raises(UsageError) as info:
        load_workflow().models_for("nosuch")
    message = str(info.value)
    assert "nosuch" in message
    for strategy in ("local", "balanced", "quality", "cheap"):
        assert strategy in message


# ----------------------------------------------------------------------------- broken files


def test_workflow_error_is_a_configuration_error() -> None:
    assert issubclass(WorkflowError, ConfigurationError)


def test_toml_syntax_error_names_the_file_and_the_line(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, 'name = "coder"', 'name = "coder'))
    message = _load_error(path)
    assert str(path) in message
    assert "line" in message
    assert "TOML" in message


def test_unknown_field_names_the_file_the_role_and_the_field(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, 'name = "coder"\n', 'name = "coder"\ncolour = "red"\n'))
    message = _load_error(path)
    assert str(path) in message
    assert "roles[1].colour" in message


def test_missing_system_prompt_names_the_role_and_the_field(tmp_path: Path, default_text: str) -> None:
    text = _without_system_prompt(default_text, after='name = "reviewer"\n')
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert str(path) in message
    assert "roles[2].system_prompt" in message
    assert "required" in message.lower()


def test_empty_system_prompt_is_refused(tmp_path: Path, default_text: str) -> None:
    text = _without_system_prompt(default_text, after="[synthesizer]\n", replacement='system_prompt = ""\n')
    message = _load_error(_write(tmp_path, text))
    assert "synthesizer.system_prompt" in message


def test_reading_an_unknown_role_names_both_roles(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, 'reads = ["architect"]', 'reads = ["designer"]'))
    message = _load_error(path)
    assert str(path) in message
    assert "'coder'" in message
    assert "'designer'" in message
    assert "unknown role" in message


def test_a_role_reading_itself_is_refused(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, 'reads = ["architect"]', 'reads = ["coder"]'))
    message = _load_error(path)
    assert str(path) in message
    assert "'coder' reads itself" in message


def test_a_cycle_of_reads_is_reported_with_its_path(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, "reads = []", 'reads = ["reviewer"]'))
    message = _load_error(path)
    assert str(path) in message
    assert "cycle" in message
    assert "architect -> reviewer -> architect" in message


def test_a_strategy_missing_for_one_role_names_the_role_and_the_strategy(
    tmp_path: Path, default_text: str
) -> None:
    # The coder's models table is the only one followed directly by the reviewer's [[roles]].
    text = _edited(
        default_text,
        'cheap = ["openai:gpt-4.1-mini", "openrouter:deepseek/deepseek-chat", "anthropic:claude-haiku-4-5"]'
        '\n\n[[roles]]\nname = "reviewer"',
        '\n[[roles]]\nname = "reviewer"',
    )
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert str(path) in message
    assert "'coder'" in message
    assert "cheap" in message


def test_a_malformed_model_spec_names_the_place_and_the_spec(tmp_path: Path, default_text: str) -> None:
    text = _edited(
        default_text,
        'balanced = ["anthropic:claude-sonnet-4-5", "openrouter:anthropic/claude-sonnet-4.5", '
        '"openai:gpt-4.1"]',
        'balanced = ["anthropic:claude-sonnet-4-5", "gpt4"]',
        count=1,
    )
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert str(path) in message
    assert "roles[0].models" in message
    assert "'gpt4'" in message
    assert "PROVIDER:MODEL" in message


def test_a_strategy_lists_fallbacks_after_its_model(tmp_path: Path, default_text: str) -> None:
    wf = load_workflow()
    assert str(wf.models_for("balanced")["architect"]) == "anthropic:claude-sonnet-4-5"
    assert [str(r) for r in wf.fallbacks_for("balanced")["architect"]] == [
        "openrouter:anthropic/claude-sonnet-4.5",
        "openai:gpt-4.1",
    ]
    assert wf.fallbacks_for("local")["coder"] == ()


def test_config_strategy_tables_override_roles_and_a_new_strategy_must_cover_every_role() -> None:
    wf = load_workflow().with_strategies({"cheap": {"coder": ["local:smollm2-135m", "openai:gpt-4.1-nano"]}})
    assert str(wf.models_for("cheap")["coder"]) == "local:smollm2-135m"
    assert [str(r) for r in wf.fallbacks_for("cheap")["coder"]] == ["openai:gpt-4.1-nano"]
    assert str(wf.models_for("cheap")["architect"]) == "openai:gpt-4.1-mini"  # untouched
    with pytest.raises(ValueError, match="no role 'tester'"):
        load_workflow().with_strategies({"cheap": {"tester": "openai:gpt-4.1"}})
    with pytest.raises(ValueError, match="has no model for strategy mine"):
        load_workflow().with_strategies({"mine": {"coder": "openai:gpt-4.1"}})


def test_default_strategy_must_be_offered(tmp_path: Path, default_text: str) -> None:
    path = _write(tmp_path, _edited(default_text, 'default_strategy = "local"', 'default_strategy = "fast"'))
    message = _load_error(path)
    assert str(path) in message
    assert "default_strategy" in message
    assert "'fast'" in message


def test_every_problem_in_a_file_is_listed(tmp_path: Path, default_text: str) -> None:
    text = _edited(default_text, 'name = "coder"\n', 'name = "coder"\ncolour = "red"\n')
    text = _edited(text, 'name = "reviewer"\n', 'name = "reviewer"\nshape = "round"\n')
    message = _load_error(_write(tmp_path, text))
    assert "roles[1].colour" in message
    assert "roles[2].shape" in message


def test_a_nonexistent_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "missing.toml"
    message = _load_error(path)
    assert str(path) in message
    assert "does not exist" in message


def test_a_directory_is_named_and_a_file_asked_for(tmp_path: Path) -> None:
    message = _load_error(tmp_path)
    assert str(tmp_path) in message
    assert "directory" in message
    assert ".toml" in message


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    message = _load_error(path)
    assert str(path) in message
