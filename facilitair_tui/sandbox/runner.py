"""``Sandbox``: the ``CodeRunner`` that runs the agents' Python in a separate, limited process.

What is isolated: the process (its own session, killed as a group at the time limit), memory,
CPU time, file sizes and open files (rlimits), the environment (built from nothing: no key of
the user's can reach the code), the working directory (a fresh temporary one, removed after),
and the network (a namespace of its own where the kernel allows unprivileged ones, else an
audit hook that refuses sockets from Python). What is not: the file system outside the
directory is readable and writable as the user (no chroot or container), and code that calls
the C library directly can get past the audit hook. ``isolation()`` says which network guard
this machine gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from facilitair_tui.core.code_run import RunLimits, RunReport, RunStatus, TestCase, TestOutcome

RESULTS = "results.jsonl"


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


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = max(1, limit // 2)
    return f"{text[:half]}\n... ({len(text) - 2 * half} characters cut) ...\n{text[-half:]}"


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


class Sandbox:
    """Runs code and its tests in a child process; see the module's docstring for what it isolates."""

    async def run(
        self, code: str, tests: Sequence[TestCase], *, limits: RunLimits | None = None
    ) -> RunReport:
        limits = limits or RunLimits()
        folder = Path(tempfile.mkdtemp(prefix="facilitair-run-"))
        started = time.perf_counter()
        try:
            os.chmod(folder, 0o700)
            harness = resources.files("facilitair_tui.sandbox") / "harness.py"
            (folder / "harness.py").write_text(harness.read_text(encoding="utf-8"), encoding="utf-8")
            job = {
                "code": code,
                "tests": [{"name": t.name, "source": t.source} for t in tests],
                "test_timeout_s": limits.test_timeout_s,
                "memory_mb": limits.memory_mb,
                "cpu_s": math.ceil(limits.timeout_s) + 1,
                "results": RESULTS,
            }
            (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
            status, stderr = await self._execute(folder, limits)
            records = _records(folder / RESULTS)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._report(records, tests, status, stderr, limits, (time.perf_counter() - started) * 1000)

    @staticmethod
    async def _execute(folder: Path, limits: RunLimits) -> tuple[RunStatus | None, str]:
        """Run the harness; the status when the run was stopped from outside (None otherwise)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-B",
            "harness.py",
            cwd=folder,
            env=_environment(str(folder)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), limits.timeout_s)
        except TimeoutError:
            _kill(process.pid)
            await process.wait()
            return "timeout", ""
        except BaseException:  # cancelled: nothing of the run may outlive it
            _kill(process.pid)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
            raise
        text = output.decode("utf-8", "replace")
        if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return "timeout", text
        if "MemoryError" in text:
            return "memory", text
        return None, text

    @staticmethod
    def _report(
        records: list[dict[str, Any]],
        tests: Sequence[TestCase],
        stopped: RunStatus | None,
        stderr: str,
        limits: RunLimits,
        duration_ms: float,
    ) -> RunReport:
        origins = {t.name: t.origin for t in tests}
        done = {str(r["name"]): r for r in records if r.get("kind") == "test"}
        load = next((r for r in records if r.get("kind") == "load"), None)
        printed = "".join(str(r.get("text", "")) for r in records if r.get("kind") == "output")
        finished = any(r.get("kind") == "done" for r in records)
        status: RunStatus = "ran"
        reason = ""
        if load is not None:
            status = "memory" if load.get("status") == "memory" else "error"
            reason = f"the code did not load: {_last_line(str(load.get('error', '')))}"
        elif stopped is not None:
            status = stopped
            reason = {
                "timeout": f"not run: the run passed its {limits.timeout_s:g} s limit",
                "memory": f"not run: the run passed its {limits.memory_mb} MiB memory limit",
            }.get(stopped, "not run")
        elif not finished:
            status = "error"
            reason = "not run: the process ended before the tests did (the code exited)"
        outcomes = tuple(
            TestOutcome(
                t.name,
                bool(done[t.name]["passed"]),
                str(done[t.name]["message"]),
                origins[t.name],
            )
            if t.name in done
            else TestOutcome(t.name, False, reason or "not run", origins[t.name])
            for t in tests
        )
        parts = [printed.strip(), stderr.strip()]
        if load is not None:
            parts.append(str(load.get("error", "")).strip())
        output = _cut("\n".join(p for p in parts if p), limits.output_chars)
        return RunReport(status=status, outcomes=outcomes, duration_ms=round(duration_ms, 3), output=output)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@functools.cache
def isolation() -> dict[str, str]:
    """What this machine's sandbox isolates, measured by one tiny run: the network guard
    ("namespace" or "audit hook")."""
    folder = Path(tempfile.mkdtemp(prefix="facilitair-probe-"))
    try:
        harness = resources.files("facilitair_tui.sandbox") / "harness.py"
        (folder / "harness.py").write_text(harness.read_text(encoding="utf-8"), encoding="utf-8")
        job = {"code": "", "tests": [], "test_timeout_s": 2, "memory_mb": 256, "cpu_s": 5, "results": RESULTS}
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        import subprocess

        subprocess.run(
            [sys.executable, "-I", "-B", "harness.py"],
            cwd=folder,
            env=_environment(str(folder)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        found = next((r for r in _records(folder / RESULTS) if r.get("kind") == "isolation"), {})
        return {"network": str(found.get("network", "unknown"))}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
