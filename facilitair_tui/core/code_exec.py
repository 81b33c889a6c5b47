"""Running an agent's code from inside a session: ask the user when they want to be asked, run
it, and report the run as a ``code_run`` event, whatever happened (a refusal, code that does
not parse, a timeout).

Used by the code workflow's loop (``core.code_loop``) and by a chunk whose workflow runs its
code (``Chunk.run_code``, ``core.chunk_run``).
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import events as ev
from .code_run import ApproveRun, CodeRunner, RunLimits, RunReport, RunRequest, TestCase, TestOutcome
from .event_stream import EventStream
from .python_code import code_blocks

MAX_FAILURES_NOTED = 5


def _not_run(reason: str, tests: Sequence[TestCase], status: str) -> tuple[RunReport, str]:
    outcomes = tuple(TestOutcome(t.name, False, reason, t.origin) for t in tests)
    return RunReport(status="error", outcomes=outcomes, output=reason), status


@dataclass
class CodeExecutor:
    """Runs code for one session and reports each run on its event stream."""

    stream: EventStream
    runner: CodeRunner | None
    approve: ApproveRun | None = None
    limits: RunLimits | None = None

    async def run(
        self,
        agent: str,
        chunk: int,
        program: str | None,
        tests: Sequence[TestCase],
        *,
        candidate: int = 1,
    ) -> tuple[RunReport, str]:
        """The report and the run's status as shown: the runner's ("ran", "error", "timeout",
        "memory"), "error" when there is no code that parses, "skipped" when nothing may run."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if program is None:
            report, status = _not_run("the answer has no Python code that parses", tests, "error")
        elif self.runner is None:
            report, status = _not_run("code is not run in this session", tests, "skipped")
        else:
            await self.stream.wait_unpaused()
            request = RunRequest(agent=agent, chunk=chunk, code=program, tests=tuple(tests))
            if self.approve is not None and not await self.approve(request):
                report, status = _not_run("the user did not allow the run", tests, "skipped")
            else:
                report = await self.runner.run(program, tests, limits=self.limits)
                status = report.status
        self.stream.emit(
            ev.CodeRun(
                session_id=self.stream.session_id,
                agent=agent,
                chunk=chunk,
                passed=report.passed,
                failed=report.failed,
                duration_ms=report.duration_ms or round((loop.time() - started) * 1000, 3),
                output=report.output,
                status=status,
                tests=[
                    ev.CodeTest(
                        name=_shown(o.name, tests), passed=o.passed, message=o.message, origin=o.origin
                    )
                    for o in report.outcomes
                ],
                candidate=candidate,
            )
        )
        return report, status


def _shown(name: str, tests: Sequence[TestCase]) -> str:
    """A test's name as shown: its source when that is one line."""
    for test in tests:
        if test.name == name and "\n" not in test.source:
            return test.source
    return name


def _tree(block: str) -> ast.Module | None:
    try:
        return ast.parse(block)
    except (SyntaxError, ValueError):
        return None


def written_checks(outputs: Mapping[str, str]) -> list[TestCase]:
    """The tests the agents wrote in a chunk: each ``test_*`` function that takes no arguments
    (called), and each top-level assert."""
    tests: list[TestCase] = []
    seen: set[str] = set()
    for text in outputs.values():
        for block in code_blocks(text):
            tree = _tree(block)
            if tree is None:
                continue
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and not node.args.args:
                    name, source = node.name, f"{ast.unparse(node)}\n{node.name}()"
                elif isinstance(node, ast.Assert):
                    source = ast.unparse(node)
                    name = source
                else:
                    continue
                if source not in seen:
                    seen.add(source)
                    tests.append(TestCase(name=name, source=source, origin="tester"))
    return tests


def run_note(agent_title: str, report: RunReport, status: str) -> str:
    """What a run showed, in words for the synthesizer and the chunks after it."""
    head = f"The {agent_title}'s Python was run in the sandbox"
    if status == "skipped":
        return f"{head.replace('was run', 'was not run')}: {report.output}."
    if status != "ran":
        return f"{head}; it did not load or finish ({status}):\n{report.output.strip()[-600:]}"
    if not report.outcomes:
        return f"{head}: it loads without errors; the agents wrote no tests to run."
    lines = [f"{head}: {report.passed} of {len(report.outcomes)} tests passed."]
    failing = [o for o in report.outcomes if not o.passed]
    lines += [f"- {o.name} failed: {o.message.strip()[-200:]}" for o in failing[:MAX_FAILURES_NOTED]]
    return "\n".join(lines)
