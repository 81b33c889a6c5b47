"""``Sandbox``: the ``CodeRunner`` that runs the agents' Python in a separate, limited process.

What is isolated: the process (its own session, killed as a group at the time limit and once it
ends), memory, CPU time, file sizes and open files (rlimits), the environment (built from
nothing: no key of the user's can reach the code), the working directory (a fresh temporary one,
removed after), and the network (a namespace of its own where the kernel allows unprivileged
ones, else an audit hook that refuses sockets from Python). What is not: the file system outside
the directory is readable and writable as the user (no chroot or container), and code that calls
the C library directly or starts another program gets past the audit hook (not past the
namespace). ``isolation()`` measures what this machine gives.

The child writes its results to a file one line at a time, so the tests that finished before a
kill are still reported; of its own stdout and stderr only the first and last few kilobytes are
read, whatever the code writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

from facilitair_tui.core.code_run import RunLimits, RunReport, RunStatus, TestCase, TestOutcome

HARNESS = "harness.py"
# After its group is killed, how long the child may take to be reaped.
REAP_S = 2.0


def _environment(home: str) -> dict[str, str]:
    """Built from nothing, never from ``os.environ``: no key of the user's reaches the code."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


def _command() -> list[str]:
    return [sys.executable, "-I", "-B", HARNESS]


@contextlib.contextmanager
def _run_folder(prefix: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # mode 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def _harness() -> str:
    return (resources.files("facilitair_tui.sandbox") / HARNESS).read_text(encoding="utf-8")


def _prepare(folder: Path, code: str, tests: Sequence[TestCase], limits: RunLimits) -> str:
    """The harness and its job in ``folder``; the name of the results file it will write."""
    results = f"results-{secrets.token_hex(8)}.jsonl"
    (folder / HARNESS).write_text(_harness(), encoding="utf-8")
    job = {
        "code": code,
        "tests": [{"name": t.name, "source": t.source, "origin": t.origin} for t in tests],
        "test_timeout_s": limits.test_timeout_s,
        "memory_mb": limits.memory_mb,
        "cpu_s": math.ceil(limits.timeout_s) + 1,
        "output_chars": limits.output_chars,
        "results": results,
    }
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    return results


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


@dataclass(frozen=True, slots=True)
class _Clipped:
    """What the child wrote to its own stdout or stderr: the first and last bytes, decoded, and
    how many fell between."""

    text: str = ""
    dropped: int = 0

    @classmethod
    def read(cls, file: IO[bytes], keep: int) -> _Clipped:
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        head = file.read(keep)
        file.seek(max(len(head), size - keep))
        tail = file.read(keep)
        return cls((head + tail).decode("utf-8", "replace"), size - len(head) - len(tail))


@dataclass(frozen=True, slots=True)
class _Ended:
    """How the child ended, seen from outside."""

    timed_out: bool
    returncode: int | None
    stdout: _Clipped = _Clipped()
    stderr: _Clipped = _Clipped()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _execute(folder: Path, limits: RunLimits) -> _Ended:
    """Run the harness to its end or its time limit; nothing left in its group outlives this call.

    Its stdout and stderr go to unnamed files, not pipes: in Python 3.11 ``Process.wait()``
    returns only once every pipe is closed, so a process the code started and left running held
    the run to its time limit; and a file is bounded by the child's own file size limit.
    """
    keep = 4 * limits.output_chars  # at most four bytes a character: output_chars each side
    with tempfile.TemporaryFile(dir=folder) as out, tempfile.TemporaryFile(dir=folder) as err:
        process = await asyncio.create_subprocess_exec(
            *_command(),
            cwd=folder,
            env=_environment(str(folder)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), limits.timeout_s)
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(process.pid)
            if process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), REAP_S)
        return _Ended(timed_out, process.returncode, _Clipped.read(out, keep), _Clipped.read(err, keep))


class Sandbox:
    """Runs code and its tests in a child process; see the module's docstring for what it isolates."""

    async def run(
        self, code: str, tests: Sequence[TestCase], *, limits: RunLimits | None = None
    ) -> RunReport:
        limits = limits or RunLimits()
        started = time.perf_counter()
        with _run_folder("facilitair-run-") as folder:
            results = _prepare(folder, code, tests, limits)
            ended = await _execute(folder, limits)
            records = _records(folder / results)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return _Verdict(records, ended, limits).report(tests, duration_ms)


def _how(returncode: int | None) -> str:
    if returncode is None:
        return "for a reason unknown"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"with exit code {returncode}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _clean(text: str) -> str:
    """Lone surrogates the code printed would break whatever stores the report."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _cut(text: str, limit: int, hidden: int = 0) -> str:
    """The head and tail of ``text``; ``hidden`` characters already fell out of its middle."""
    half = max(1, limit // 2)
    if len(text) <= limit or len(text) <= 2 * half:
        return text
    return f"{text[:half]}\n... ({len(text) - 2 * half + hidden} characters cut) ...\n{text[-half:]}"


class _Verdict:
    """The report from what the child wrote and how it ended."""

    def __init__(self, records: list[dict[str, Any]], ended: _Ended, limits: RunLimits) -> None:
        self.ended = ended
        self.limits = limits
        self.load = next((r for r in records if r.get("kind") == "load"), {})
        self.finished = any(r.get("kind") == "done" for r in records)
        self.isolation = next((r for r in records if r.get("kind") == "isolation"), {})
        self.results = {r["index"]: r for r in records if r.get("kind") == "test" and _is_index(r)}
        starts = [r["index"] for r in records if r.get("kind") == "start" and _is_index(r)]
        self.running = starts[-1] if starts and starts[-1] not in self.results else None
        self.printed: dict[str, Any] = next((r for r in reversed(records) if r.get("kind") == "output"), {})

    def status(self) -> tuple[RunStatus, str]:
        """The run's status and why the tests that have no result did not run."""
        load = self.load.get("status")
        if load in ("error", "memory", "timeout"):
            return load, f"the code did not load: {_last_line(str(self.load.get('error', '')))}"
        if self.finished:
            return "ran", ""
        if self.ended.timed_out:
            return "timeout", f"the run passed its {self.limits.timeout_s:g} s limit"
        code = self.ended.returncode
        if code == -signal.SIGXCPU:
            return "timeout", "the run passed its CPU time limit"
        if code == -signal.SIGKILL:
            return "timeout", "the process was killed (SIGKILL)"
        if code == -signal.SIGXFSZ:
            return "error", "the process wrote more than the file size limit (16 MiB)"
        if "MemoryError" in self.ended.stderr.text:
            return "memory", f"the run passed its {self.limits.memory_mb} MiB memory limit"
        if not self.load:
            return "error", f"the code did not load: the process ended {_how(code)}"
        return "error", f"the process ended {_how(code)}"

    def outcome(self, index: int, test: TestCase, reason: str) -> TestOutcome:
        result = self.results.get(index)
        if result is not None:
            passed = result.get("passed") is True
            return TestOutcome(test.name, passed, _clean(str(result.get("message", ""))), test.origin)
        if index == self.running:
            return TestOutcome(test.name, False, f"did not finish: {reason}", test.origin)
        if reason.startswith("the code did not load"):
            return TestOutcome(test.name, False, reason, test.origin)
        return TestOutcome(test.name, False, f"not run: {reason or 'unknown reason'}", test.origin)

    def output(self) -> str:
        printed = f"{self.printed.get('head', '')}{self.printed.get('tail', '')}"
        dropped = self.printed.get("dropped", 0)
        hidden = (dropped if isinstance(dropped, int) else 0) + self.ended.stdout.dropped
        hidden += self.ended.stderr.dropped
        parts = [printed, self.ended.stdout.text, self.ended.stderr.text]
        if self.load.get("status") != "ok":
            parts.append(str(self.load.get("error", "")))
        text = "\n".join(p.strip() for p in parts if p.strip())
        return _clean(_cut(text, self.limits.output_chars, hidden))

    def report(self, tests: Sequence[TestCase], duration_ms: float) -> RunReport:
        status, reason = self.status()
        outcomes = tuple(self.outcome(i, t, reason) for i, t in enumerate(tests))
        return RunReport(status=status, outcomes=outcomes, duration_ms=duration_ms, output=self.output())


def _is_index(record: dict[str, Any]) -> bool:
    return isinstance(record.get("index"), int)


PROBE_CODE = "import os\nseen = dict(os.environ)\nhere = os.getcwd()\n"
PROBE_TESTS = (
    TestCase("environment", f"assert set(seen) <= {set(_environment(''))!r}"),
    TestCase("directory", "assert seen['HOME'] == seen['TMPDIR'] == here"),
)


@functools.cache
def _probe() -> tuple[tuple[str, bool | str], ...]:
    limits = RunLimits(timeout_s=30.0, memory_mb=256)
    with _run_folder("facilitair-probe-") as folder:
        results = _prepare(folder, PROBE_CODE, PROBE_TESTS, limits)
        try:
            returncode: int | None = subprocess.run(
                _command(),
                cwd=folder,
                env=_environment(str(folder)),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=limits.timeout_s,
                check=False,
                start_new_session=True,
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
        records = _records(folder / results)
    verdict = _Verdict(records, _Ended(returncode is None, returncode), limits)
    environment, directory = (o.passed for o in verdict.report(PROBE_TESTS, 0.0).outcomes)
    found = verdict.isolation
    return (
        ("network", str(found.get("network", "none"))),
        *((name, found.get(name) is True) for name in ("memory", "cpu_time", "file_size", "open_files")),
        ("environment", environment),
        ("directory", directory),
        ("file_system", False),
        ("unprivileged", found.get("as_root") is False),
    )


def isolation() -> dict[str, bool | str]:
    """What this machine's sandbox isolates, measured once by a tiny run: "network" is
    "namespace", "audit hook" or "none"; "memory", "cpu_time", "file_size" and "open_files" say
    whether that rlimit took; "environment" and "directory" whether the code saw only its own;
    "file_system" is always False (the rest of it is reachable as the user); "unprivileged" is
    False when the code runs as root."""
    return dict(_probe())
