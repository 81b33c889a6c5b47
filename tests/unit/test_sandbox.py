"""The sandbox runs generated code in a limited child process: each limit, and what never
reaches the code (the user's keys, the network, the caller's directory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from facilitair_tui.core.code_run import RunLimits, RunReport, TestCase
from facilitair_tui.sandbox import Sandbox, isolation


def run(code: str, *tests: TestCase, **limits: float) -> RunReport:
    return asyncio.run(Sandbox().run(code, tests, limits=RunLimits(**limits)))  # type: ignore[arg-type]


def case(source: str, name: str | None = None) -> TestCase:
    return TestCase(name or source, source)


def test_each_test_passes_or_fails_on_its_own_with_what_the_code_returned() -> None:
    report = run("def f(x):\n    return x + 1\n", case("assert f(1) == 2"), case("assert f(2) == 5"))
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [True, False]
    assert report.outcomes[1].message == "f(2) returned 3, expected 5"


def test_a_test_that_never_ends_fails_alone() -> None:
    report = run(
        "def f():\n    return 1\n",
        case("while True: pass", "endless"),
        case("assert f() == 1"),
        test_timeout_s=0.5,
        timeout_s=20,
    )
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [False, True]
    assert "time limit" in report.outcomes[0].message


def test_code_that_never_ends_is_killed_at_the_run_limit() -> None:
    report = run("while True:\n    pass\n", case("assert True"), timeout_s=1.5, test_timeout_s=60)
    assert report.status == "timeout"
    assert report.failed == 1
    assert "limit" in report.outcomes[0].message


def test_memory_beyond_the_limit_stops_the_run() -> None:
    report = run("block = bytearray(2 * 1024**3)\n", case("assert True"), memory_mb=256)
    assert report.status == "memory"
    assert report.passed == 0


def test_no_key_of_the_user_and_a_home_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-seen")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-never-seen")
    code = "import os\nseen = dict(os.environ)\nhere = os.getcwd()\n"
    report = run(
        code,
        case("assert not any('KEY' in name for name in seen)", "no keys"),
        case("assert seen['HOME'] == here", "home"),
    )
    assert [o.passed for o in report.outcomes] == [True, True]
    assert "sk-never-seen" not in report.output


def test_its_directory_is_its_own_and_is_removed_afterwards() -> None:
    report = run("import os\nopen('made.txt', 'w').write('x')\nprint(os.getcwd())\n", case("assert True"))
    folder = Path(report.output.strip().splitlines()[-1])
    assert folder != Path.cwd()
    assert not folder.exists()


def test_no_network() -> None:
    code = "import socket\n"
    connect = "socket.create_connection(('127.0.0.1', 9), timeout=1)"
    report = run(code, case(connect, "loopback"), case(connect.replace("127.0.0.1", "1.1.1.1"), "public"))
    assert [o.passed for o in report.outcomes] == [False, False]
    assert isolation()["network"] in ("namespace", "audit hook")


def test_code_that_does_not_load_fails_every_test_with_the_reason() -> None:
    report = run("def f(:\n", case("assert True", "a"), case("assert True", "b"))
    assert report.status == "error"
    assert report.failed == 2
    assert all("SyntaxError" in o.message for o in report.outcomes)


@pytest.mark.parametrize("ending", ["raise SystemExit(3)", "import os\nos._exit(0)"])
def test_code_that_exits_is_reported_not_raised(ending: str) -> None:
    report = run(ending, case("assert True"))
    assert report.status == "error"
    assert report.failed == 1


def test_output_is_cut_to_its_limit_and_main_blocks_do_not_run() -> None:
    code = "print('x' * 50_000)\nif __name__ == '__main__':\n    print('MAIN RAN')\n"
    report = run(code, case("assert True"), output_chars=1_000)
    assert len(report.output) < 1_200
    assert "characters cut" in report.output
    assert "MAIN RAN" not in report.output
