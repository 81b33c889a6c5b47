"""Naming a stage's fenced blocks as files: the lenient rules, the unsafe names, what is never a file."""

from __future__ import annotations

import pytest

from facilitair_tui.core.code_blocks import (
    CodeBlock,
    code_blocks,
    is_python_test,
    safe_path,
    where_tests_go,
)
from facilitair_tui.core.markdown_fences import fences

BODY = "def shorten(url: str) -> str:\n    return url[:7]"


def only_block(text: str) -> CodeBlock:
    _lines, blocks = code_blocks(text)
    assert len(blocks) == 1, blocks
    return blocks[0]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (f"```python app.py\n{BODY}\n```", "app.py"),
        (f'```python title="src/app.py"\n{BODY}\n```', "src/app.py"),
        (f"```app.py\n{BODY}\n```", "app.py"),
        (f"```python:app.py\n{BODY}\n```", "app.py"),
        (f"```{{.python file=app.py}}\n{BODY}\n```", "app.py"),
        (f"app.py\n```python\n{BODY}\n```", "app.py"),
        (f"**app.py**\n\n```python\n{BODY}\n```", "app.py"),
        (f"### `src/app.py`\n```python\n{BODY}\n```", "src/app.py"),
        (f"File: src/app.py\n```python\n{BODY}\n```", "src/app.py"),
        (f"**File:** `app.py`\n```python\n{BODY}\n```", "app.py"),
        (f"`app.py`:\n```python\n{BODY}\n```", "app.py"),
        (f"# app.py\n```python\n{BODY}\n```", "app.py"),
        (f"- `pkg/__init__.py` (the package)\n```python\n{BODY}\n```", "pkg/__init__.py"),
        (f"```python\n# app.py\n{BODY}\n```", "app.py"),
        (f"```python\n# file: app.py\n{BODY}\n```", "app.py"),
        ("```rust\n// src/main.rs\nfn main() {}\n```", "src/main.rs"),
        ("```html\n<!-- index.html -->\n<p>hi</p>\n```", "index.html"),
        ("```text requirements.txt\nfastapi\nuvicorn\n```", "requirements.txt"),
    ],
)
def test_a_block_is_named_by_its_info_string_the_line_before_or_a_comment(text: str, path: str) -> None:
    block = only_block(text)
    assert block.is_file and block.path == path


def test_the_info_string_wins_over_the_line_before_and_the_line_before_over_the_comment() -> None:
    assert only_block(f"**other.py**\n```python app.py\n# third.py\n{BODY}\n```").path == "app.py"
    block = only_block(f"**other.py**\n```python\n# third.py\n{BODY}\n```")
    assert block.path == "other.py" and block.label_line == 0  # the label is the block's first line
    assert only_block(f"Some prose.\n```python\n# third.py\n{BODY}\n```").path == "third.py"


def test_a_name_must_fit_the_blocks_language() -> None:
    # "Install from requirements.txt:" before a shell block names nothing.
    block = only_block("**requirements.txt**\n```bash\npip install -r requirements.txt\n```")
    assert not block.is_file and block.path is None
    assert only_block(f"**notes.md**\n```python\n{BODY}\n```").path is None  # then a generated name
    assert only_block(f"**notes.md**\n```python\n{BODY}\n```").is_file


def test_the_line_before_counts_only_when_it_is_just_a_name() -> None:
    assert only_block(f"We keep the logic in app.py, as agreed:\n```python\n{BODY}\n```").path is None
    assert only_block(f"Uses `requests.get`:\n```python\n{BODY}\n```").path is None


def test_a_line_opening_with_the_name_counts_for_a_block_that_names_its_language() -> None:
    assert only_block(f"`app.py`, with the fix:\n```python\n{BODY}\n```").path == "app.py"
    # Without a language to check the name against, the same line names nothing: it may
    # introduce what the file prints.
    assert only_block("`app.py`, when run, prints:\n```\n3 passed\n```").path is None
    assert only_block("`app.py` is started with:\n```bash\npython app.py\n```").path is None


@pytest.mark.parametrize(
    "raw",
    [
        "/etc/passwd",
        "~/app.py",
        "../app.py",
        "src/../../app.py",
        "src\\app.py",
        "C:/app.py",
        ".git/hooks/pre-commit",
        "src/.ssh/config.py",
        "app\x00.py",
        "app\n.py",
        "a//b.py",
        "README.md",
        "readme.MD",
        "x/" * 9 + "a.py",
        "a" * 101 + ".py",
    ],
)
def test_unsafe_names_are_refused(raw: str) -> None:
    assert safe_path(raw) is None


def test_safe_names_are_kept_relative_and_clean() -> None:
    assert safe_path("./src/app.py") == "src/app.py"
    assert safe_path("`app.py`") == "app.py"
    assert safe_path(".gitignore") == ".gitignore"  # a hidden file, not a hidden directory
    assert safe_path("docs/README.md") == "docs/README.md"  # only the top README is ours


@pytest.mark.parametrize("name", ["../../.bashrc", "/tmp/x.py", ".git/config.py", "README.md"])
def test_an_unsafe_name_falls_back_to_no_name_and_the_block_stays_a_file(name: str) -> None:
    block = only_block(f"```python {name}\n{BODY}\n```")
    assert block.path is None and block.is_file  # the deliverable generates a name


@pytest.mark.parametrize(
    "text",
    [
        "```bash\npip install fastapi uvicorn\n```",
        "```sh\n$ uvicorn app:app --reload\n```",
        "```console\n$ pytest\n3 passed\n```",
        "```\n3 passed in 0.01s\n```",
        "```text\nHTTP/1.1 200 OK\n```",
        "```output\n[1, 2, 3]\n```",
        "```python\n>>> shorten('abc')\n'abc'\n```",
        "```python\npip install fastapi\npython app.py\n```",
        "```python\nprint(shorten(url))\n```",
        "```python\n# TODO: later\n```",
        '```json\n{"short": "abc1234"}\n```',
        "```yaml\nservices: {}\n```",
        "```diff app.py\n- a\n+ b\n```",
        "```python\n```",
    ],
)
def test_commands_output_samples_and_unnamed_data_are_not_files(text: str) -> None:
    assert not only_block(text).is_file


def test_unnamed_code_is_a_file_to_name_later() -> None:
    block = only_block(f"```python\n{BODY}\n```")
    assert block.is_file and block.path is None and block.language == "python"
    assert only_block(f"```\nimport os\n{BODY}\n```").language == "python"  # unlabelled Python
    assert only_block("```js\nexport const x = 1;\n```").language == "javascript"
    java = only_block("```java\npublic class Shortener {\n}\n```")
    assert java.generated_stem == "Shortener" and java.extension == "java"


def test_named_data_and_scripts_are_files() -> None:
    assert only_block('```json package.json\n{"name": "x"}\n```').path == "package.json"
    assert only_block("```bash run.sh\nuvicorn app:app\n```").path == "run.sh"
    assert only_block("Dockerfile\n```dockerfile\nFROM python:3.12\n```").path == "Dockerfile"


def test_the_content_is_the_blocks_text_without_its_fence_indentation() -> None:
    block = only_block("  ```python app.py\n  def f():\n      return 1\n  ```")
    assert block.content == "def f():\n    return 1\n"


def test_an_unclosed_fence_is_a_block_to_the_end() -> None:
    lines = f"```python app.py\n{BODY}".splitlines()
    [fence] = fences(lines)
    assert not fence.closed and fence.closing == len(lines)
    assert only_block(f"```python app.py\n{BODY}").content == BODY + "\n"


def test_fences_follow_commonmark_lengths_and_characters() -> None:
    text = "````markdown\n```python\nx = 1\n```\n````\n~~~python app.py\nimport os\n~~~"
    lines = text.splitlines()
    found = list(fences(lines))
    assert [(f.opening, f.closing, f.info) for f in found] == [(0, 4, "markdown"), (5, 7, "python app.py")]


def test_pytest_files_go_under_tests() -> None:
    assert is_python_test("test_app.py", "")
    assert is_python_test("checks.py", "def test_short():\n    assert True\n")
    assert is_python_test("checks.py", "import pytest\n")
    assert not is_python_test("app.py", BODY)
    assert not is_python_test("test_app.js", "")
    assert where_tests_go("test_app.py") == "tests/test_app.py"
    assert where_tests_go("checks.py") == "tests/test_checks.py"
    assert where_tests_go("conftest.py") == "tests/conftest.py"
    assert where_tests_go("src/tests/test_app.py") == "src/tests/test_app.py"
