"""``--context KEY=VALUE``: normalised once, and every mistake a usage error that says what to do."""

from __future__ import annotations

import pytest

from facilitair_tui.core.context import MAX_VALUE_CHARS, ContextError, normalise_key, parse_context
from facilitair_tui.core.provider import UsageError


def test_nothing_given_is_an_empty_context() -> None:
    assert parse_context([]) == {}


def test_simple_pairs() -> None:
    assert parse_context(["language=python", "frameworks=fastapi"]) == {
        "language": "python",
        "frameworks": "fastapi",
    }


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Language=python", "language"),
        ("LANGUAGE=python", "language"),
        ("team size=4", "team_size"),
        ("team-size=4", "team_size"),
        ("  Team - Size  =4", "team_size"),
        ("existing\tstack=django", "existing_stack"),
        ("security--level=high", "security_level"),
        ("k8s_version=1.30", "k8s_version"),
    ],
)
def test_keys_are_lower_case_with_underscores(raw: str, key: str) -> None:
    assert list(parse_context([raw])) == [key]


def test_value_whitespace_is_collapsed_and_case_kept() -> None:
    assert parse_context(["frameworks=  FastAPI \t and\n  SQLAlchemy  "]) == {
        "frameworks": "FastAPI and SQLAlchemy"
    }


def test_only_the_first_equals_sign_splits() -> None:
    assert parse_context(["compliance=a=b"]) == {"compliance": "a=b"}


def test_a_repeated_key_keeps_the_last_value() -> None:
    result = parse_context(["language=python", "Team-Size=3", "LANGUAGE=rust", "team size=5"])
    assert result == {"language": "rust", "team_size": "5"}


def test_normalise_key() -> None:
    assert normalise_key("  Security Level ") == "security_level"
    assert normalise_key("a - b") == "a_b"


def test_context_error_is_a_usage_error() -> None:
    assert issubclass(ContextError, UsageError)


def _error(*pairs: str) -> str:
    with pytest.raises(UsageError) as info:
        parse_context(pairs)
    return str(info.value)


@pytest.mark.parametrize("raw", ["nope", "language", "  "])
def test_no_equals_sign_says_to_use_key_value(raw: str) -> None:
    message = _error(raw)
    assert "KEY=VALUE" in message
    assert "--context language=python" in message


@pytest.mark.parametrize("raw", ["=python", "  =python"])
def test_an_empty_key_says_to_use_key_value(raw: str) -> None:
    message = _error(raw)
    assert "KEY=VALUE" in message
    assert "for example" in message


@pytest.mark.parametrize("raw", ["language=", "language=   ", "language=\n\t"])
def test_an_empty_value_says_give_one_or_leave_the_key_out(raw: str) -> None:
    message = _error(raw)
    assert "language" in message
    assert "no value" in message
    assert "leave the key out" in message


@pytest.mark.parametrize("raw", ["1st=x", "lang.uage=x", "lang/uage=x", "_x=1", "naïve=x", "k" * 65 + "=x"])
def test_bad_key_characters_say_what_a_key_may_contain(raw: str) -> None:
    message = _error(raw)
    assert "must start with a letter" in message
    assert "letters, digits and _" in message


def test_a_value_at_the_limit_is_accepted() -> None:
    assert parse_context(["existing_stack=" + "x" * MAX_VALUE_CHARS]) == {
        "existing_stack": "x" * MAX_VALUE_CHARS
    }


def test_a_value_over_the_limit_names_the_key_and_the_limit() -> None:
    message = _error("existing_stack=" + "x" * (MAX_VALUE_CHARS + 1))
    assert "existing_stack" in message
    assert f"{MAX_VALUE_CHARS}" in message
    assert "longer than" in message


def test_the_limit_is_counted_after_collapsing_whitespace() -> None:
    value = "x " * MAX_VALUE_CHARS  # 4000 raw characters, 3999 after collapsing
    message = _error("frameworks=" + value)
    assert "frameworks" in message
    short = "x  " * (MAX_VALUE_CHARS // 2)  # collapses to 1999 characters
    assert len(parse_context(["frameworks=" + short])["frameworks"]) == MAX_VALUE_CHARS - 1


def test_the_first_bad_pair_is_reported_even_after_good_ones() -> None:
    message = _error("language=python", "oops")
    assert "'oops'" in message
