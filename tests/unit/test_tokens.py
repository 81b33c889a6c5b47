"""The token counter used when a provider reports no usage: a real BPE vocabulary, offline."""

from __future__ import annotations

from facilitair_tui.providers.token_count import count_tokens


def test_counts_with_the_o200k_vocabulary() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello world") == 2
    assert count_tokens("def reverse(s: str) -> str:\n    return s[::-1]\n") > 5
    # Special-token text is counted as ordinary text, never rejected.
    assert count_tokens("<|endoftext|>") > 1
