"""Runs inside the sandbox's child process (stdlib only): limit itself, load the code, run each
test on its own, and write one JSON line per result.

The parent has threads (llama.cpp, the UI), so the child limits itself rather than being
limited in ``preexec_fn``. It reads ``job.json`` from its working directory and deletes it, then:
rlimits (memory, CPU, file size, open files, no core dumps), no network (a user and network
namespace where the kernel allows one, else an audit hook that refuses sockets), the code in a
module namespace named "solution" (so its ``if __name__ == "__main__"`` block does not run),
and each test in a copy of that namespace with its own time limit.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import io
import json
import os
import resource
import signal
import sys
import traceback
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_CAPTURE = 64_000
MAX_REPR = 200


class TestTimeout(Exception):
    pass


def _limit(memory_mb: int, cpu_s: int) -> None:
    memory = memory_mb * 1024 * 1024
    for which, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, 16 * 1024 * 1024),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def _write_map(path: str, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as handle:
        handle.write(text)


def _no_network() -> str:
    """A network namespace of our own (only a loopback that is down), or an audit hook."""
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        _write_map("/proc/self/setgroups", "deny")
        _write_map("/proc/self/uid_map", f"{uid} {uid} 1")
        _write_map("/proc/self/gid_map", f"{gid} {gid} 1")
        return "namespace"

    def refuse(event: str, args: tuple[Any, ...]) -> None:
        if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto"):
            raise PermissionError(f"the sandbox allows no network ({event})")

    sys.addaudithook(refuse)
    return "audit hook"


def _alarm(signum: int, frame: object) -> None:
    raise TestTimeout


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _failing_assert(
    exc: BaseException, source: str, filename: str
) -> tuple[ast.Assert, dict[str, Any]] | None:
    """The assert that failed (in a test function too) and the names it saw there."""
    frame, line = None, None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            frame, line = tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next
    if frame is None:
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.lineno == line:
            return node, {**frame.f_globals, **frame.f_locals}
    return None


def _explain(exc: BaseException, source: str, filename: str) -> str | None:
    """For a failing ``assert LEFT <op> RIGHT``: what LEFT gave and what was expected."""
    found = _failing_assert(exc, source, filename)
    if found is None:
        return None
    node, namespace = found
    if not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return None
    left, right = node.test.left, node.test.comparators[0]
    try:
        got = eval(compile(ast.Expression(left), "<test>", "eval"), dict(namespace))
        want = eval(compile(ast.Expression(right), "<test>", "eval"), dict(namespace))
    except BaseException as exc:
        return f"{ast.unparse(left)} raised {type(exc).__name__}: {exc}"
    return f"{ast.unparse(left)} returned {_short(got)}, expected {_short(want)}"


def _failure(exc: BaseException, source: str, filename: str) -> str:
    if isinstance(exc, TestTimeout):
        return "did not finish within its time limit"
    if isinstance(exc, AssertionError):
        explained = _explain(exc, source, filename)
        detail = str(exc).strip()
        return explained or (f"AssertionError: {detail}" if detail else "the assertion failed")
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last


def main() -> None:
    with open("job.json", encoding="utf-8") as handle:
        job = json.load(handle)
    os.remove("job.json")
    results = open(job["results"], "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open
    _limit(int(job["memory_mb"]), int(job["cpu_s"]))
    network = _no_network()
    results.write(json.dumps({"kind": "isolation", "network": network}) + "\n")
    captured = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": __builtins__}
    signal.signal(signal.SIGALRM, _alarm)
    tests = job["tests"]
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            signal.setitimer(signal.ITIMER_REAL, float(job["test_timeout_s"]))
            try:
                exec(compile(job["code"], "solution.py", "exec"), namespace)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except MemoryError:
        results.write(json.dumps({"kind": "load", "status": "memory", "error": "MemoryError"}) + "\n")
        return
    except BaseException as exc:
        if isinstance(exc, TestTimeout):
            error = "loading the code did not finish within the time limit"
        else:
            error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)).strip()
        results.write(json.dumps({"kind": "load", "status": "error", "error": error}) + "\n")
        results.write(json.dumps({"kind": "output", "text": captured.getvalue()[-MAX_CAPTURE:]}) + "\n")
        return
    for test in tests:
        scope = dict(namespace)
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                signal.setitimer(signal.ITIMER_REAL, float(job["test_timeout_s"]))
                try:
                    exec(compile(test["source"], f"<{test['name']}>", "exec"), scope)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            record = {"kind": "test", "name": test["name"], "passed": True, "message": ""}
        except MemoryError:
            record = {"kind": "test", "name": test["name"], "passed": False, "message": "MemoryError"}
        except BaseException as exc:
            message = _failure(exc, test["source"], f"<{test['name']}>")
            record = {"kind": "test", "name": test["name"], "passed": False, "message": message}
        results.write(json.dumps(record) + "\n")
        if len(captured.getvalue()) > MAX_CAPTURE:
            captured = io.StringIO(captured.getvalue()[-MAX_CAPTURE:])
    results.write(json.dumps({"kind": "output", "text": captured.getvalue()[-MAX_CAPTURE:]}) + "\n")
    results.write(json.dumps({"kind": "done"}) + "\n")


if __name__ == "__main__":
    main()
