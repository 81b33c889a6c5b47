"""A scripted team that writes working code: what the ``--out`` tests and the README sample run.

The synthesizer's answers are written the way models write them (a named block, an unnamed test
block, a shell command, a fix in the review that replaces the implementation's file); the agents
say a line each. The code is real: the tests it writes pass on the review's version of the module
and fail on the implementation's (which took "http://" for a URL).
"""

from __future__ import annotations

import re
from typing import Any

from facilitair_tui.core.provider import ChatRequest
from facilitair_tui.providers.scripted import Reply

TASK = "Build a URL shortener library"
CONTEXT = {"language": "python"}
FILES = ["shortener.py", "tests/test_shortener.py", "README.md"]

_MODULE = '''"""Short codes for long URLs, kept in memory."""

from __future__ import annotations

import hashlib
import string
from urllib.parse import urlsplit

ALPHABET = string.digits + string.ascii_letters
CODE_LENGTH = 7


def _base62(number: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits)) or "0"


class Shortener:
    def __init__(self) -> None:
        self._by_code: dict[str, str] = {}
        self._by_url: dict[str, str] = {}

    def shorten(self, url: str) -> str:
CHECK
        if url in self._by_url:
            return self._by_url[url]
        salt = 0
        while True:
            digest = hashlib.sha256(f"{url}#{salt}".encode()).digest()
            code = _base62(int.from_bytes(digest[:8], "big")).rjust(CODE_LENGTH, "0")[:CODE_LENGTH]
            if code not in self._by_code:
                break
            salt += 1  # another URL has this code: hash again
        self._by_code[code] = url
        self._by_url[url] = code
        return code

    def resolve(self, code: str) -> str:
        return self._by_code[code]
'''
_LOOSE_CHECK = """        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")"""
_STRICT_CHECK = """        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")"""
MODULE_FIRST = _MODULE.replace("CHECK", _LOOSE_CHECK)
MODULE_FIXED = _MODULE.replace("CHECK", _STRICT_CHECK)

_TESTS = """import pytest

from shortener import CODE_LENGTH, Shortener


def test_a_url_gets_a_short_code_and_back() -> None:
    shortener = Shortener()
    code = shortener.shorten("https://example.com/a/long/path")
    assert len(code) == CODE_LENGTH
    assert shortener.resolve(code) == "https://example.com/a/long/path"


def test_the_same_url_gets_the_same_code() -> None:
    shortener = Shortener()
    assert shortener.shorten("https://example.com") == shortener.shorten("https://example.com")


@pytest.mark.parametrize("url", URLS)
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError):
        Shortener().shorten(url)


def test_an_unknown_code_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        Shortener().resolve("0000000")
"""
TESTS_FIRST = _TESTS.replace("URLS", '["ftp://example.com", "example.com"]')
TESTS_FIXED = _TESTS.replace("URLS", '["ftp://example.com", "example.com", "http://"]')

SYNTHESES = {
    "Requirements": """AGREED:
- Codes are 7 characters of 0-9, A-Z and a-z
- The same URL always gets the same code
DEBATED:
- Storage | architect: SQLite from the start | coder: in memory first, behind one class
CONFIDENCE: 0.85
MERGED:
A library that turns a long URL into a short code and back.

- `shorten(url)` returns a code; the same URL gets the same code.
- `resolve(code)` returns the URL, and raises `KeyError` for a code it never gave.
- Only `http` and `https` URLs are accepted; anything else is a `ValueError`.""",
    "Architecture": """AGREED:
- One module, `shortener.py`, with a `Shortener` class
- A code is the SHA-256 of the URL in base 62, cut to 7 characters
CONFIDENCE: 0.8
MERGED:
One class keeps both directions in memory: `shorten` validates, hashes and stores; `resolve`
looks the code up. Two URLs that hash to one code are told apart by hashing again with a
counter, so a code never changes owner.""",
    "Implementation": f"""AGREED:
- The module and its pytest tests
CONFIDENCE: 0.75
MERGED:
The module:

**shortener.py**
```python
{MODULE_FIRST}```

Its tests:

```python
{TESTS_FIRST}```

Run them with:

```bash
python -m pytest
```""",
    "Review": f"""AGREED:
- "http://" alone was accepted as a URL: the check must look at the host too
DEBATED:
- Storage | architect: add SQLite before anyone relies on it | reviewer: memory until there are users
CONFIDENCE: 0.9
MERGED:
The final fixes: the URL is parsed, and a URL without a host is refused.

```python shortener.py
{MODULE_FIXED}```

`test_shortener.py`, with the case that was missed:

```python
{TESTS_FIXED}```""",
}

_STAGE = re.compile(r"Stage to merge: (\w+)\.")


def reply_text(prompt: str) -> str:
    """What the team answers to a prompt: the stage's synthesis, or an agent's line."""
    stage = _STAGE.search(prompt)
    if stage is not None:
        return SYNTHESES[stage.group(1)]
    return "Notes on this stage: keep it small and tested."


def deltas(text: str, size: int = 40) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def scripted_reply(request: ChatRequest) -> Reply:
    """For ``ScriptedProvider``: each call streams the team's answer."""
    return Reply(deltas(reply_text(request.messages[-1].content)))


def last_prompt(body: Any) -> str:
    """The last message of an OpenAI-style request body."""
    return str(body["messages"][-1]["content"])


def stage_prompt(body: Any) -> str:
    """The message of an OpenAI-style request body that names its stage: an agent's system
    message ("Current stage: …"), the synthesizer's request ("Stage to merge: …"; its worked
    example, about another stage, comes before it)."""
    for message in reversed(body["messages"]):
        content = str(message.get("content", ""))
        if "Current stage: " in content or "Stage to merge: " in content:
            return content
    return ""
