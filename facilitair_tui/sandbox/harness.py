"""Runs inside the sandbox's child process (stdlib only): limit itself, load the code, run each
test on its own, and write one JSON line per event so that what finished survives a kill.

The parent has threads (llama.cpp, the UI), so the child limits itself rather than being
limited in ``preexec_fn``. It reads ``job.json`` from its working directory and deletes it, then:
rlimits (memory, CPU, file size, open files, no core dumps), no network (a user and network
namespace where the kernel allows one, else an audit hook that refuses sockets), the code in a
module named "solution" (so its ``if __name__ == "__main__"`` block does not run), and each test
in a copy of that module's namespace with its own time limit.

A failing ``assert LEFT == RIGHT`` is explained by evaluating both sides again ("f(2) returned 5,
expected 4"): the agents repair code from that message, and a bare AssertionError says nothing.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import io
import json
import linecache
import os
import resource
import signal
import sys
import traceback
import types
from collections.abc import Iterator
from typing import Any, NamedTuple, TextIO

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
FILE_SIZE = 16 * 1024 * 1024
OPEN_FILES = 64
MAX_REPR = 200
SOLUTION = "solution.py"
NETWORK_EVENTS = frozenset(
    {
        "socket.bind",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyaddr",
        "socket.gethostbyname",
        "socket.getnameinfo",
        "socket.sendmsg",
        "socket.sendto",
    }
)
OPERATORS: dict[type[ast.cmpop], str] = {
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


class Budget(NamedTuple):
    """What each test (and the load) may use."""

    seconds: float
    memory_mb: int


class TestTimeout(BaseException):
    """A test's (or the load's) own time limit: a BaseException, so the code's ``except
    Exception`` inside a retry loop does not swallow it."""


class Capture(io.TextIOBase):
    """What the code prints: its first and last ``keep`` characters and how many fell between."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = max(1, keep)
        self.head = ""
        self.tail = ""
        self.dropped = 0
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.writes += 1
        room = self.keep - len(self.head)
        if room > 0:
            self.head += text[:room]
        rest = text[max(room, 0) :]
        if rest:
            self.tail += rest
            if len(self.tail) > 2 * self.keep:
                self._trim()
        return len(text)

    def _trim(self) -> None:
        self.dropped += len(self.tail) - self.keep
        self.tail = self.tail[-self.keep :]

    def record(self) -> dict[str, Any]:
        if len(self.tail) > self.keep:
            self._trim()
        return {"kind": "output", "head": self.head, "tail": self.tail, "dropped": self.dropped}


class Results:
    """The results file, one JSON object a line, flushed as each is written."""

    def __init__(self, path: str) -> None:
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def write(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()


def limit(memory_mb: int, cpu_s: int) -> dict[str, bool]:
    """Set each rlimit; which ones this system accepted."""
    memory = memory_mb * 1024 * 1024
    wanted = {
        "memory": (resource.RLIMIT_AS, memory),
        "cpu_time": (resource.RLIMIT_CPU, cpu_s),
        "file_size": (resource.RLIMIT_FSIZE, FILE_SIZE),
        "open_files": (resource.RLIMIT_NOFILE, OPEN_FILES),
        "core_dumps": (resource.RLIMIT_CORE, 0),
    }
    applied = {}
    for name, (which, value) in wanted.items():
        try:
            resource.setrlimit(which, (value, value))
            applied[name] = resource.getrlimit(which) == (value, value)
        except (ValueError, OSError):
            applied[name] = False
    return applied


def _write(path: str, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as handle:
        handle.write(text)


def _refuse_network(event: str, args: tuple[Any, ...]) -> None:
    if event in NETWORK_EVENTS:
        raise PermissionError(f"the sandbox allows no network ({event})")


def audit_network() -> str:
    sys.addaudithook(_refuse_network)
    return "audit hook"


def no_network() -> str:
    """A network namespace of our own (only a loopback that is down), else an audit hook."""
    uid, gid = os.getuid(), os.getgid()
    try:
        entered = ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        entered = False
    if not entered:
        return audit_network()
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    return "namespace"


def _alarm(signum: int, frame: object) -> None:
    raise TestTimeout


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _short(value: object) -> str:
    try:
        return _clip(repr(value))
    except BaseException as exc:
        return f"<repr failed: {type(exc).__name__}>"


def _remember(filename: str, source: str) -> None:
    """Let tracebacks show the lines of code that never was a file."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


def _innermost(exc: BaseException) -> tuple[types.FrameType, int] | None:
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame, tb.tb_lineno


def _assert_at(source: str, line: int) -> ast.Assert | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return node
    return None


def _evaluate(node: ast.expr, namespace: dict[str, Any]) -> Any:
    return eval(compile(ast.Expression(node), "<assert>", "eval"), dict(namespace))


def _said(node: ast.expr, value: object) -> str:
    verb = "returned" if any(isinstance(n, ast.Call) for n in ast.walk(node)) else "was"
    return f"{_clip(ast.unparse(node))} {verb} {_short(value)}"


def _describe(test: ast.expr, namespace: dict[str, Any]) -> str | None:
    """What the sides of a failing comparison were, or what a failing expression gave."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return f"{_said(test.operand, _evaluate(test.operand, namespace))}, expected a false value"
    if not isinstance(test, ast.Compare):
        return f"{_said(test, _evaluate(test, namespace))}, expected a true value"
    if len(test.ops) != 1:
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if (
        isinstance(op, ast.Eq | ast.NotEq)
        and isinstance(left, ast.Constant)
        and not isinstance(right, ast.Constant)
    ):
        left, right = right, left
    got, want = _evaluate(left, namespace), _evaluate(right, namespace)
    if isinstance(op, ast.Eq | ast.Is):
        return f"{_said(left, got)}, expected {_short(want)}"
    return f"{_said(left, got)}, expected a value {OPERATORS[type(op)]} {_short(want)}"


def explain(exc: AssertionError, source: str, filename: str, seconds: float) -> str | None:
    """For an assert of the test itself (in a helper function of the test too): what it saw."""
    found = _innermost(exc)
    if found is None or found[0].f_code.co_filename != filename:
        return None
    frame, line = found
    node = _assert_at(source, line)
    if node is None:
        return None
    try:
        with time_limit(seconds):
            described = _describe(node.test, {**frame.f_globals, **frame.f_locals})
    except TestTimeout:
        return None
    except BaseException as error:
        return f"{_clip(ast.unparse(node.test))} raised {type(error).__name__}: {_clip(str(error))}"
    detail = str(exc).strip()
    return f"{described} ({_clip(detail)})" if described and detail else described


def _where(exc: BaseException, filename: str) -> str:
    """The line of the test that failed and, when the code raised, the line of the code."""
    places: list[str] = []
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename in (SOLUTION, filename) and frame.lineno is not None:
            label = "the code" if frame.filename == SOLUTION else "the test"
            if not any(p.startswith(label) for p in places):
                places.append(f"{label}, line {frame.lineno}: {(frame.line or '').strip()}")
    return "; ".join(places)


def failure(exc: BaseException, source: str, filename: str, budget: Budget) -> str:
    if isinstance(exc, TestTimeout):
        return f"did not finish within its time limit of {budget.seconds:g} s"
    if isinstance(exc, MemoryError):
        return f"MemoryError: the test passed the {budget.memory_mb} MiB memory limit"
    if isinstance(exc, AssertionError):
        explained = explain(exc, source, filename, budget.seconds)
        if explained:
            return explained
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    where = _where(exc, filename)
    return f"{last} ({where})" if where else last


def _load_error(exc: BaseException) -> str:
    """The traceback of the code's own frames (the harness's frame that ran it left out)."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(exc), exc, tb, limit=-3)).strip()


def load(code: str, budget: Budget) -> tuple[types.ModuleType, dict[str, Any]]:
    """The code as module "solution", and the record of how loading it went."""
    module = types.ModuleType("solution")
    module.__file__ = SOLUTION
    sys.modules["solution"] = module
    _remember(SOLUTION, code)
    try:
        with time_limit(budget.seconds):
            exec(compile(code, SOLUTION, "exec"), module.__dict__)
    except TestTimeout:
        error = f"loading it took more than {budget.seconds:g} s (the time limit of a test)"
        return module, {"status": "timeout", "error": error}
    except MemoryError:
        error = f"MemoryError: loading it passed the {budget.memory_mb} MiB memory limit"
        return module, {"status": "memory", "error": error}
    except BaseException as exc:
        return module, {"status": "error", "error": _load_error(exc)}
    return module, {"status": "ok"}


def run_test(index: int, test: dict[str, str], namespace: dict[str, Any], budget: Budget) -> dict[str, Any]:
    filename = f"<test {index + 1}: {test['name']}>"
    _remember(filename, test["source"])
    scope = dict(namespace)
    try:
        with time_limit(budget.seconds):
            exec(compile(test["source"], filename, "exec"), scope)
    except BaseException as exc:
        return {"passed": False, "message": failure(exc, test["source"], filename, budget)}
    return {"passed": True, "message": ""}


def main() -> None:
    with open("job.json", encoding="utf-8") as handle:
        job = json.load(handle)
    os.remove("job.json")
    results = Results(job["results"])
    limits = limit(int(job["memory_mb"]), int(job["cpu_s"]))
    network = no_network()
    results.write(kind="isolation", network=network, as_root=os.geteuid() == 0, **limits)
    budget = Budget(float(job["test_timeout_s"]), int(job["memory_mb"]))
    capture = Capture(int(job["output_chars"]))
    signal.signal(signal.SIGALRM, _alarm)
    with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
        module, loaded = load(job["code"], budget)
    results.write(kind="load", **loaded)
    results.write(**capture.record())
    if loaded["status"] != "ok":
        return
    for index, test in enumerate(job["tests"]):
        results.write(kind="start", index=index)
        printed = capture.writes
        with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture):
            outcome = run_test(index, test, module.__dict__, budget)
        results.write(kind="test", index=index, **outcome)
        if capture.writes != printed:
            results.write(**capture.record())
    results.write(kind="done")


if __name__ == "__main__":
    main()
    # Threads the code left running and its atexit handlers must not hold the run open.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
