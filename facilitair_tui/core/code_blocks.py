"""Which fenced blocks of a stage's Markdown are files, and what they are called.

Models name files in many ways, so a block is named leniently, by the first of:

1. its fence's info string: "```python app.py", "```python title="app.py"", "```app.py",
   "```python:app.py";
2. the nearest non-empty line before it, when that line is only a file name, however dressed:
   "app.py", "**app.py**", "### `src/app.py`", "File: src/app.py", "`app.py`:"; or, for a block
   whose fence names its language, a line that opens with the name in backticks and ends with a
   colon ("`app.py`, with the fix:");
3. a comment on its first line: "# app.py", "# file: app.py", "// main.rs", "<!-- index.html -->".

A name is kept only when it is safe to write under the output directory (no absolute path, no
"..", no backslash, no control character, no hidden directory such as .git, not our README.md)
and fits the block's language (a bash block is never "requirements.txt"). A block without a
usable name still becomes a file when it is code in a programming language; the deliverable
gives it a name then. Terminal sessions, sample output, plain text and blocks that are only
commands ("pip install ...") are never files: they stay in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .markdown_fences import Fence, fences


@dataclass(frozen=True, slots=True)
class Language:
    name: str
    extensions: tuple[str, ...]  # the first names a generated file
    # Code: an unnamed block is still a file (a generated name). Data, docs and scripts need a name.
    code: bool = True
    stem: str = "main"  # of a generated name: main.py, index.js, style.css


_LANGUAGES = {
    lang.name: lang
    for lang in (
        Language("python", ("py", "pyi")),
        Language("javascript", ("js", "mjs", "cjs", "jsx"), stem="index"),
        Language("typescript", ("ts", "tsx", "mts"), stem="index"),
        Language("rust", ("rs",)),
        Language("go", ("go",)),
        Language("java", ("java",), stem="Main"),
        Language("kotlin", ("kt", "kts")),
        Language("c", ("c", "h")),
        Language("cpp", ("cpp", "cc", "cxx", "hpp", "hh", "h")),
        Language("csharp", ("cs",), stem="Program"),
        Language("ruby", ("rb",)),
        Language("php", ("php",), stem="index"),
        Language("swift", ("swift",)),
        Language("scala", ("scala",)),
        Language("sql", ("sql",), stem="schema"),
        Language("html", ("html", "htm"), stem="index"),
        Language("css", ("css",), stem="style"),
        Language("scss", ("scss",), stem="style"),
        Language("dockerfile", (), stem="Dockerfile"),
        Language("makefile", (), stem="Makefile"),
        Language("shell", ("sh", "bash", "zsh"), code=False),
        Language("powershell", ("ps1",), code=False),
        Language("json", ("json",), code=False),
        Language("yaml", ("yaml", "yml"), code=False),
        Language("toml", ("toml",), code=False),
        Language("xml", ("xml",), code=False),
        Language("ini", ("ini", "cfg", "conf"), code=False),
        Language("markdown", ("md",), code=False),
        Language("csv", ("csv",), code=False),
        Language("text", (), code=False),
    )
}
_ALIASES = {
    "py": "python",
    "python3": "python",
    "py3": "python",
    "js": "javascript",
    "node": "javascript",
    "jsx": "javascript",
    "ts": "typescript",
    "tsx": "typescript",
    "rs": "rust",
    "golang": "go",
    "kt": "kotlin",
    "c++": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "rb": "ruby",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
    "ps1": "powershell",
    "pwsh": "powershell",
    "yml": "yaml",
    "md": "markdown",
    "docker": "dockerfile",
    "make": "makefile",
    "htm": "html",
    "txt": "text",
    "plaintext": "text",
    "plain": "text",
}
# What a terminal shows, never a file, even named.
_NEVER_FILES = frozenset(
    {"console", "output", "log", "terminal", "shell-session", "sh-session", "diff", "patch"}
)
# File names without an extension that are files all the same.
_BARE_NAMES = {"Dockerfile": "dockerfile", "Makefile": "makefile", "Procfile": "", "Gemfile": "ruby"}
_BY_EXTENSION = {ext: lang.name for lang in reversed(_LANGUAGES.values()) for ext in lang.extensions}
_EXTRA_EXTENSIONS = frozenset({"txt", "env", "lock", "gitignore", "dockerignore", "example", "sample", "tf"})
# The README the deliverable writes itself.
RESERVED_NAMES = frozenset({"readme.md"})

_NAME = re.compile(r"[\w@+.-]+(?:/[\w@+.-]+)*")
_INFO_KEY = re.compile(r"""(?:title|file|filename|name|path)\s*[=:]\s*["']?([^"'\s}]+)""", re.IGNORECASE)
_LINE_LEAD = re.compile(r"^(?:#{1,6}|>|[-*+]|\d+[.)])\s+")
_LINE_LABEL = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)
_LINE_NOTE = re.compile(r"\s+(?:\([^()]*\)|[—–-]\s.*)$")  # "app.py (the API)", "app.py — the API"
_LEADING_NAME = re.compile(r"^\s*(?:[-*+]\s+)?`([^`]+)`[^`]*:\s*$")
_COMMENT = re.compile(
    r"^\s*(?:#|//|--|;|%|/\*|<!--)\s*(?:file(?:name)?\s*:\s*)?(\S+?)\s*(?:\*/|-->)?\s*$", re.IGNORECASE
)
_PROMPT = re.compile(r"^\s*(?:\$|>>>|\.\.\.|%|>|PS>|PS [^>]*>)(?:\s|$)")
_COMMAND = re.compile(
    r"^\s*(?:\$\s*)?(?:sudo\s+)?(?:pip3?|python3?|py|pytest|uvicorn|gunicorn|flask|poetry|uv|npm|npx|"
    r"yarn|pnpm|node|cargo|go|curl|wget|docker|docker-compose|git|make|cd|export|source|mkdir|cp|mv|"
    r"ls|cat|echo|brew|apt|apt-get|java|javac|mvn|gradle|dotnet|ruby|gem|bundle)\b"
)
_COMMENT_ONLY = re.compile(r"^\s*(?:#|//|--|/\*|\*|<!--)")
_PYTHON_CODE = re.compile(
    r"^(?:def |async def |class \w|import \w|from [\w.]+ import |@\w|if __name__)", re.M
)
_TYPE_NAME = re.compile(r"^\s*(?:public\s+)?(?:final\s+)?(?:class|interface|enum|record)\s+([A-Z]\w*)", re.M)


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One fenced block of a stage's text and what it is."""

    fence: Fence
    content: str  # the block's text, ending with a newline
    language: str  # a known language's name, or the info string's first word, or ""
    path: str | None  # a safe name the text gave it, or None
    is_file: bool  # goes to a file (named here, or to be named by the deliverable)
    # The line before the block that named it ("**app.py**"), if that is where its name is from.
    label_line: int | None = None

    @property
    def first_line(self) -> int:
        """Where the block starts in the text: its label line, else its opening fence."""
        return self.fence.opening if self.label_line is None else self.label_line

    @property
    def generated_stem(self) -> str:
        """The stem a generated name starts from: a Java or C# type's own name, else the language's."""
        known = _LANGUAGES.get(self.language)
        if self.language in ("java", "csharp", "kotlin") and (found := _TYPE_NAME.search(self.content)):
            return found.group(1)
        return known.stem if known else "main"

    @property
    def extension(self) -> str:
        known = _LANGUAGES.get(self.language)
        return known.extensions[0] if known and known.extensions else ""


def canonical_language(word: str) -> str:
    word = word.strip().lower().lstrip(".{")
    return _ALIASES.get(word, word)


def language_of_path(path: str) -> str:
    name = PurePosixPath(path).name
    if name in _BARE_NAMES:
        return _BARE_NAMES[name]
    return _BY_EXTENSION.get(PurePosixPath(name).suffix.lower().lstrip("."), "")


def looks_like_file_name(text: str) -> bool:
    """A path whose last part has a known extension (or is a known bare name): "src/app.py"."""
    if not _NAME.fullmatch(text) or ("." not in text and "/" not in text and text not in _BARE_NAMES):
        return False
    name = PurePosixPath(text).name
    if name in _BARE_NAMES:
        return True
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") or name.startswith(".") else ""
    return bool(suffix) and (suffix in _BY_EXTENSION or suffix in _EXTRA_EXTENSIONS)


def safe_path(raw: str) -> str | None:
    """``raw`` as a relative POSIX path that stays inside the output directory, or None."""
    text = raw.strip().strip("\"'`*")
    if not text or "\\" in text or ":" in text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    if text.startswith(("/", "~")):
        return None
    while text.startswith("./"):
        text = text[2:]
    parts = text.split("/")
    if len(parts) > 8 or len(text) > 200 or any(len(part) > 100 for part in parts):
        return None
    if any(part in ("", ".", "..") for part in parts):
        return None
    if any(part.startswith(".") for part in parts[:-1]) or parts[-1].lower() in (".git", ".."):
        return None  # a hidden directory (.git, .ssh) is never written into
    if text.lower() in RESERVED_NAMES:
        return None
    return text


def _fits(language: str, path: str) -> bool:
    """Whether a name fits the block's language: a bash block is never "requirements.txt"."""
    known = _LANGUAGES.get(language)
    if known is None or known.name == "text":
        return True
    named = language_of_path(path)
    if not named:
        return not known.extensions  # a Dockerfile block may have any bare name
    related = {named, known.name} <= {"c", "cpp"}
    return named == known.name or related


def _name_in_info(info: str) -> tuple[str, str | None]:
    """(the language word, a name) of an info string: "python app.py", "app.py", "python:app.py"."""
    words = info.replace("{", " ").replace("}", " ").split()
    if not words:
        return "", None
    keyed = _INFO_KEY.search(info)
    first = words[0]
    if ":" in first and not keyed:
        first, _, rest = first.partition(":")
        words = [first, rest, *words[1:]]
    if looks_like_file_name(first):
        return "", first
    if keyed:
        return first, keyed.group(1)
    named = next((word for word in words[1:] if looks_like_file_name(word)), None)
    return first, named


def _name_in_line(line: str) -> str | None:
    """A line that is only a file name, dressed as a heading, bold, code or "File: ..."."""
    text = _LINE_LEAD.sub("", line.strip()).replace("**", "")
    text = _LINE_NOTE.sub("", text)
    for _ in range(4):  # "**File: `app.py`**:" takes a few rounds
        before = text
        text = text.strip().rstrip(":").strip()
        for mark in ("__", "`", "*", "_"):
            if len(text) > 2 * len(mark) and text.startswith(mark) and text.endswith(mark):
                text = text[len(mark) : -len(mark)]
        text = _LINE_LABEL.sub("", text)
        if text == before:
            break
    return text if looks_like_file_name(text) else None


def _name_leading_line(line: str) -> str | None:
    """A line that opens with a name in backticks and ends with a colon: "`app.py`, fixed:"."""
    found = _LEADING_NAME.match(line)
    return found.group(1) if found and looks_like_file_name(found.group(1)) else None


def _name_in_comment(body: list[str]) -> str | None:
    lines = [line for line in body if line.strip()]
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    if not lines:
        return None
    found = _COMMENT.match(lines[0])
    return found.group(1) if found and looks_like_file_name(found.group(1)) else None


def _previous_line(lines: list[str], fence: Fence, fenced_before: int) -> int | None:
    """The nearest non-empty line before ``fence`` that is not part of an earlier fence."""
    for index in range(fence.opening - 1, fenced_before - 1, -1):
        if lines[index].strip():
            return index
    return None


def _has_code(body: list[str], language: str, named: bool) -> bool:
    """False for an empty block, a terminal session, or (unnamed) only commands or comments."""
    lines = [line for line in body if line.strip()]
    if not lines or all(_PROMPT.match(line) for line in lines):
        return False
    if named:
        return True
    if all(_COMMAND.match(line) or _COMMENT_ONLY.match(line) for line in lines):
        return False
    # Unnamed Python must define or import something: "print(x)" is an example, not a module.
    return language != "python" or bool(_PYTHON_CODE.search("\n".join(lines)))


def code_blocks(text: str) -> tuple[list[str], list[CodeBlock]]:
    """The lines of ``text`` and each of its fenced blocks, named where the text names it."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    after_previous = 0
    for fence in fences(lines):
        body = fence.body(lines)
        word, raw_name = _name_in_info(fence.info)
        language = canonical_language(word)
        label = None
        if raw_name is None:
            label = _previous_line(lines, fence, after_previous)
            raw_name = None if label is None else _name_in_line(lines[label])
            if raw_name is None and label is not None and language in _LANGUAGES:
                # Only a block that names its language: its name is checked against it below.
                raw_name = _name_leading_line(lines[label])
            if raw_name is None:
                label, raw_name = None, _name_in_comment(body)
        path = safe_path(raw_name) if raw_name else None
        if path is not None and language and not _fits(language, path):
            path = None
        if not language and path is not None:
            language = language_of_path(path)
        if not language and _PYTHON_CODE.search("\n".join(body)):
            language = "python"  # an unlabelled block of Python is still Python
        known = _LANGUAGES.get(language)
        if language in _NEVER_FILES:
            is_file = False
        elif path is not None:
            is_file = _has_code(body, language, named=True)
        else:
            is_file = known is not None and known.code and _has_code(body, language, named=False)
        content = "\n".join(body).rstrip() + "\n" if body else ""
        named = is_file and path is not None
        blocks.append(
            CodeBlock(fence, content, language, path if named else None, is_file, label if named else None)
        )
        after_previous = fence.closing + 1
    return lines, blocks


def is_python_test(path: str, content: str) -> bool:
    """A pytest file: by its name (test_*.py, *_test.py, conftest.py) or by its tests."""
    name = PurePosixPath(path).name
    if not name.endswith(".py"):
        return False
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return True
    return bool(
        re.search(r"^\s*(?:async\s+)?def test_\w*\(|^\s*(?:import pytest|from pytest\b)", content, re.M)
    )


def where_tests_go(path: str) -> str:
    """Where a pytest file goes: under tests/ unless it is under a tests directory already, with a
    name pytest collects (test_*.py)."""
    parts = PurePosixPath(path).parts
    if any(part in ("tests", "test") for part in parts[:-1]):
        return path
    name = parts[-1]
    if not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"):
        name = f"test_{name}"
    return f"tests/{name}"
