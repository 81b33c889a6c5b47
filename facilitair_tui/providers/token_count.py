"""Counting tokens when a provider does not say how many it used.

OpenAI's o200k_base byte-pair encoding (the ``bpe-openai`` package, whose vocabulary ships in
its wheel: nothing is fetched), loaded on first use. Exact for recent OpenAI models, close for
others; the counts it gives are always marked estimated.
"""

from __future__ import annotations

import functools
import warnings
from typing import Protocol

ENCODING = "o200k_base"
# Chat formats add a few tokens per message around its content.
PER_MESSAGE_TOKENS = 4


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@functools.cache
def _encoding() -> _Encoding:
    with warnings.catch_warnings():  # it loads its vocabulary with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai  # type: ignore[import-untyped]

        encoding: _Encoding = bpe_openai.get_encoding(ENCODING)
    return encoding


def count_tokens(text: str) -> int:
    return len(_encoding().encode_ordinary(text)) if text else 0
