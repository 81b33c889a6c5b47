"""The sandbox runs generated code in a limited child process: each limit, what a failing test
says, and what never reaches the code (the user's keys, the network, the caller's directory)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facilitair_tui.core.code_run import RunLimits, RunReport, TestCase
from facilitair_tui.sandbox import Sandbox, isolation

HARNESS = Path(__file__).parents[2] / "facilitair_tui" / "sandbox" / "harness.py"
# A loop the per-test alarm cannot end: only the run's own limit stops it.
WAIT_S = 30.0
UNSTOPPABLE = (
    "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
)


async def run(code: str, *tests: TestCase, **limits: Any) -> RunReport:
    return await Sandbox().run(code, tests, limits=RunLimits(**limits))


def case(source: str, name: str | None = None) -> TestCase:
    return TestCase(name or source, source)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def ended(pid: int) -> bool:
    """Whether the process is gone within a generous wait (a SIGKILL takes effect, not at once)."""
    deadline = time.monotonic() + WAIT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def written(path: Path) -> str:
    """What the code wrote to ``path``, once it has."""
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.read_text()


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on this machine's loopback that accepts connections, outside the sandbox."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


async def test_a_failing_assert_says_what_the_code_returned() -> None:
    code = "def candidate(x):\n    return x + 3\n"
    report = await run(code, case("assert candidate(1) == 4"), case("assert candidate(2) == 4"))
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [True, False]
    assert report.outcomes[1].message == "candidate(2) returned 5, expected 4"


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("assert shout('a') == 'b'", "shout('a') returned 'A', expected 'b'"),
        ("assert 'b' == shout('a')", "shout('a') returned 'A', expected 'b'"),
        ("said = shout('a')\nassert said in ('x', 'y')", "said was 'A', expected a value in ('x', 'y')"),
        ("assert not shout('a')", "shout('a') returned 'A', expected a false value"),
        ("assert shout('') , 'empty'", "shout('') returned '', expected a true value (empty)"),
    ],
)
async def test_every_kind_of_failing_assert_is_explained(test: str, message: str) -> None:
    report = await run("def shout(text):\n    return text.upper()\n", case(test))
    assert report.outcomes[0].message == message


async def test_an_assert_in_a_check_function_is_explained_with_its_own_names() -> None:
    check = "def check(candidate):\n    assert candidate(3) == 9\n\ncheck(square)\n"
    report = await run("def square(x):\n    return x * 2\n", case(check))
    assert report.outcomes[0].message == "candidate(3) returned 6, expected 9"


async def test_an_exception_is_named_with_the_lines_it_came_from() -> None:
    report = await run("def f(x):\n    return 1 / x\n", case("y = 1\nassert f(0) == 1"))
    message = report.outcomes[0].message
    assert message.startswith("ZeroDivisionError: division by zero")
    assert "the code, line 2: return 1 / x" in message
    assert "the test, line 2: assert f(0) == 1" in message


async def test_a_test_that_never_ends_fails_alone() -> None:
    report = await run(
        "def f():\n    return 1\n",
        case("while True: pass", "endless"),
        case("assert f() == 1"),
        test_timeout_s=0.5,
        timeout_s=20,
    )
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [False, True]
    assert "time limit" in report.outcomes[0].message


@pytest.mark.parametrize("code", ["while True:\n    pass\n", UNSTOPPABLE], ids=["loop", "unstoppable"])
async def test_code_that_never_ends_is_stopped_and_the_call_returns(code: str) -> None:
    report = await run(code, case("assert True"), timeout_s=2)
    assert report.status == "timeout"
    assert report.failed == 1


async def test_the_tests_that_finished_before_the_run_was_killed_are_kept() -> None:
    report = await run(
        "", case("assert True"), case(UNSTOPPABLE, "hangs"), case("assert True", "after"), timeout_s=2
    )
    assert report.status == "timeout"
    assert [o.passed for o in report.outcomes] == [True, False, False]
    assert report.outcomes[1].message == "did not finish: the run passed its 2 s limit"
    assert report.outcomes[2].message == "not run: the run passed its 2 s limit"


async def test_memory_beyond_the_limit_stops_the_run() -> None:
    report = await run("block = bytearray(2 * 1024**3)\n", case("assert True"), memory_mb=256)
    assert report.status == "memory"
    assert report.passed == 0


async def test_a_test_beyond_the_memory_limit_fails_alone() -> None:
    report = await run("", case("block = bytearray(2 * 1024**3)"), case("assert True"), memory_mb=256)
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [False, True]
    assert "MemoryError" in report.outcomes[0].message


async def test_no_key_of_the_user_and_a_home_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-seen")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-never-seen")
    code = "import os\nprint(sorted(os.environ))\n"
    report = await run(
        code,
        case("assert 'OPENAI_API_KEY' not in os.environ", "no openai key"),
        case("assert not any('KEY' in name for name in os.environ)", "no key at all"),
        case("assert os.environ['HOME'] == os.getcwd()", "home"),
    )
    assert [o.passed for o in report.outcomes] == [True, True, True]
    assert "never-seen" not in report.output


async def test_its_directory_is_its_own_and_is_removed_afterwards() -> None:
    report = await run(
        "import os\nopen('made.txt', 'w').write('x')\nprint(os.getcwd())\n", case("assert True")
    )
    folder = Path(report.output.strip().splitlines()[-1])
    assert folder.is_absolute()
    assert folder != Path.cwd()
    assert not await asyncio.to_thread(folder.exists)


async def test_no_network_even_to_a_port_that_listens(listening: int) -> None:
    report = await run(
        "import socket\n",
        case(f"socket.create_connection(('127.0.0.1', {listening}), timeout=2)", "loopback"),
        case("socket.create_connection(('1.1.1.1', 53), timeout=2)", "public"),
    )
    assert report.status == "ran"
    assert [o.passed for o in report.outcomes] == [False, False]
    assert all("Error" in o.message for o in report.outcomes)


def test_where_namespaces_are_refused_the_audit_hook_refuses_sockets(listening: int) -> None:
    script = (
        f"import importlib.util, socket\n"
        f"spec = importlib.util.spec_from_file_location('harness', {str(HARNESS)!r})\n"
        f"harness = importlib.util.module_from_spec(spec)\n"
        f"spec.loader.exec_module(harness)\n"
        f"harness.audit_network()\n"
        f"socket.socket().connect(('127.0.0.1', {listening}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PermissionError: the sandbox allows no network (socket.connect)" in done.stderr


def test_isolation_says_what_this_machine_gives() -> None:
    found = isolation()
    assert found["network"] in ("namespace", "audit hook")
    assert found["environment"] is True
    assert found["directory"] is True
    assert found["file_system"] is False
    assert {"memory", "cpu_time", "file_size", "open_files", "unprivileged"} <= set(found)


async def test_code_that_does_not_load_fails_every_test_with_the_reason() -> None:
    report = await run("def f(:\n", case("assert True", "a"), case("assert True", "b"))
    assert report.status == "error"
    assert report.failed == 2
    assert all(o.message.startswith("the code did not load: SyntaxError") for o in report.outcomes)
    assert 'File "solution.py", line 1' in report.output


@pytest.mark.parametrize("ending", ["raise SystemExit(3)", "import os\nos._exit(0)"])
async def test_code_that_exits_is_reported_not_raised(ending: str) -> None:
    report = await run(ending, case("assert True"))
    assert report.status == "error"
    assert report.failed == 1
    assert report.outcomes[0].message.startswith("the code did not load")


async def test_a_test_that_ends_the_process_keeps_the_results_before_it() -> None:
    report = await run("", case("assert True"), case("import os\nos._exit(3)", "exits"), case("assert True"))
    assert [o.passed for o in report.outcomes] == [True, False, False]
    assert report.outcomes[1].message == "did not finish: the process ended with exit code 3"


async def test_a_test_sees_the_code_but_not_the_other_tests() -> None:
    report = await run(
        "shared = 1\n", case("mine = shared", "first"), case("assert 'mine' not in globals()", "second")
    )
    assert [o.passed for o in report.outcomes] == [True, True]


async def test_tests_with_the_same_name_are_reported_each() -> None:
    report = await run("", case("assert True", "same"), case("assert False", "same"))
    assert [o.passed for o in report.outcomes] == [True, False]


async def test_a_process_the_code_leaves_running_does_not_hold_the_run() -> None:
    code = "import subprocess\nchild = subprocess.Popen(['sleep', '60'])\nprint(child.pid)\n"
    report = await run(code, case("assert True"), timeout_s=30)
    assert report.status == "ran"
    assert await asyncio.to_thread(ended, int(report.output.strip().splitlines()[-1]))


async def test_cancelling_a_run_kills_it_and_removes_its_directory(tmp_path: Path) -> None:
    said = tmp_path / "said.txt"
    code = f"import os\nopen({str(said)!r}, 'w').write(f'{{os.getpid()}} {{os.getcwd()}}')\n{UNSTOPPABLE}"
    task = asyncio.ensure_future(run(code, case("assert True"), timeout_s=60))
    pid, folder = (await asyncio.to_thread(written, said)).split(" ", 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(ended, int(pid))
    assert not await asyncio.to_thread(Path(folder).exists)


async def test_output_is_cut_to_its_limit_and_main_blocks_do_not_run() -> None:
    code = "print('x' * 50_000)\nif __name__ == '__main__':\n    print('MAIN RAN')\nprint(__name__)\n"
    report = await run(code, case("import os\nos.write(2, b'from the process itself')"), output_chars=1_000)
    assert len(report.output) < 1_100
    assert "characters cut" in report.output
    assert "MAIN RAN" not in report.output
    assert report.output.endswith("solution\nfrom the process itself")
