"""End to end: the real local models. The default one writes a correct function; a GGUF file of
the user's own runs by path and by the name ``facilitair models add`` gave it.

Each request goes straight to ``LocalModelProvider`` (2 threads, one context), outputs are short,
and nothing here asserts on time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from facilitair_tui import embedded_models
from facilitair_tui.core.provider import ChatMessage, ChatRequest, Usage
from facilitair_tui.embedded_models import DEFAULT_CHAT_MODEL, SMOLLM2
from tests.conftest import make_home, run_cli
from tests.support.local_stream import complete

pytestmark = pytest.mark.e2e

TASK = (
    "Write a Python function is_palindrome(text: str) -> bool that ignores case, spaces and "
    "punctuation, with doctests in its docstring. Reply with one Python code block only."
)
# Cases the doctests may or may not cover: the function must get them all right.
CASES = {
    "A man, a plan, a canal: Panama": True,
    "Was it a car or a cat I saw?": True,
    "No 'x' in Nixon": True,
    "": True,
    "ab": False,
    "Hello, World!": False,
    "racecar!": True,
    "palindrome": False,
}


async def _complete(model: str, system: str, user: str, max_tokens: int) -> tuple[str, Usage]:
    messages = (ChatMessage("system", system), ChatMessage("user", user))
    return await complete(ChatRequest(model, messages, max_tokens, 0.0))


def _python_block(answer: str) -> str:
    blocks = re.findall(r"```(?:python|py)?\n(.*?)```", answer, flags=re.DOTALL)
    assert blocks, f"no code block in the answer:\n{answer}"
    return str(blocks[0])


async def test_the_default_model_writes_a_correct_function_with_passing_doctests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    make_home(tmp_path / "home", monkeypatch)
    answer, usage = await _complete(
        DEFAULT_CHAT_MODEL.name, "You are a careful Python programmer.", TASK, max_tokens=400
    )
    # llama.cpp's warnings on loading it (a "control-looking token") stay out of the terminal.
    assert capfd.readouterr().err == ""
    assert usage.stop_reason == "end", f"the answer was cut at {usage.output_tokens} tokens:\n{answer}"
    code = _python_block(answer)
    assert "def is_palindrome(" in code
    assert ">>> is_palindrome(" in code, f"no doctest:\n{code}"
    work = tmp_path / "work"
    work.mkdir()
    (work / "solution.py").write_text(code, encoding="utf-8")
    # Its own doctests pass (and loading it runs whatever checks it wrote below the function)...
    doctests = _python(work, "-m", "doctest", "solution.py")
    assert doctests.returncode == 0, f"{doctests.stdout}{doctests.stderr}\n{code}"
    # ...and so do cases it did not choose.
    check = (
        "import runpy\n"
        "is_palindrome = runpy.run_path('solution.py')['is_palindrome']\n"
        f"for text, want in {CASES!r}.items():\n"
        "    assert is_palindrome(text) is want, text\n"
    )
    cases = _python(work, "-c", check)
    assert cases.returncode == 0, f"{cases.stderr}\n{code}"


def _python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The generated code runs in its own isolated interpreter, never in the test's."""
    return subprocess.run(
        [sys.executable, "-I", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


async def test_a_gguf_file_of_ones_own_runs_by_path_and_by_its_added_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path / "home", monkeypatch)
    file = SMOLLM2.path.resolve()  # any GGUF chat model will do: the tiny one is quick
    answer, usage = await _complete(str(file), "You are terse.", "Say hello.", max_tokens=8)
    assert answer.strip() and usage.output_tokens >= 1
    added = run_cli("models", "add", "my-tiny", str(file), home=home)
    assert added.returncode == 0, added.stderr
    assert embedded_models.require("my-tiny") == file
    answer, usage = await _complete("my-tiny", "You are terse.", "Say hello.", max_tokens=8)
    assert answer.strip() and usage.output_tokens >= 1
