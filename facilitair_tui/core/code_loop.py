"""The code workflow's chunks: write a function and its tests, run them, repair what fails.

Chunk 1: the coder writes the function while the tester writes tests from the task alone (it
never sees the code, so its tests cannot copy the code's mistakes); the task's own examples are
found by rule (``core.code_tests``). The sandbox runs the code against all of them. Each later
chunk is a repair round, run only while tests fail: the coder gets the failures and fixes its
best answer so far, and fresh answers to the first prompt are sampled beside the repair. The
candidate that passes most tests is kept: the task's examples count first (the user wrote
them), then the tester's (a small model's tests are often wrong). An earlier candidate wins a
tie, so a round can only keep or improve what the session has.

The loop is settled, and the session ends, once the kept candidate passes every example the task
states and, when the task states none, every test the tester wrote. Each chunk ends with a
synthesis made from the run (not by a model): the tests that pass as agreed points, the ones
that fail as the points where the code and the test disagree, and the kept code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from . import events as ev
from .agent_call import AgentCaller, AgentResult
from .code_exec import CodeExecutor
from .code_prompts import coder_messages, repair_messages, tester_messages
from .code_run import ApproveRun, CodeRunner, RunLimits, RunReport, TestCase
from .code_tests import stated_examples, written_tests
from .confidence import confidence
from .event_stream import EventStream
from .prompts import ChunkRecord
from .provider import ChatMessage
from .python_code import entry_point, extract_code, program
from .session_spec import SessionSpec
from .workflow import Chunk, CodeLoop, Role

MAX_POINTS = 8


@dataclass(frozen=True)
class Candidate:
    chunk: int
    number: int  # within its chunk, 1-based
    text: str  # the coder's answer
    code: str | None  # the definitions taken from it; None when it has no Python that parses
    report: RunReport

    @property
    def score(self) -> tuple[int, int]:
        return self.report.count("task")[0], self.report.count("tester")[0]


class CodeLoopRunner:
    """Runs the chunks of one code-workflow session; ``settled`` says when to stop."""

    def __init__(
        self,
        spec: SessionSpec,
        stream: EventStream,
        caller: AgentCaller,
        history: list[ChunkRecord],
        syntheses: list[ev.Synthesis],
        flaws: list[str],
        runner: CodeRunner | None,
        approve: ApproveRun | None = None,
        seed: int | None = None,
    ) -> None:
        """``runner``: where code runs; without one nothing is tested and the first answer
        stands. ``approve``: asked before each run (False skips it). ``seed``: makes the
        sampled candidates repeatable."""
        workflow = spec.workflow
        assert workflow.code is not None, "a code loop needs a workflow with a [code] table"
        self._loop: CodeLoop = workflow.code
        self._spec = spec
        self._stream = stream
        self._caller = caller
        self._history = history
        self._syntheses = syntheses
        self._flaws = flaws
        self._executor = CodeExecutor(stream, runner, approve, self.limits_of(workflow.code))
        self._seed = seed
        self._coder: Role = workflow.role(self._loop.coder)
        self._tester: Role | None = workflow.role(self._loop.tester) if self._loop.tester else None
        self._name = spec.context.get("function") or entry_point(spec.task)
        self._tests: tuple[TestCase, ...] = ()
        self._best: Candidate | None = None
        self._asked: list[tuple[ChatMessage, ...]] = []  # the repair prompts sent so far
        self.settled = False

    @staticmethod
    def limits_of(loop: CodeLoop) -> RunLimits:
        return RunLimits(
            timeout_s=loop.timeout_s, test_timeout_s=loop.test_timeout_s, memory_mb=loop.memory_mb
        )

    def _max_tokens(self, role: Role) -> int:
        return self._spec.max_tokens or role.max_tokens or self._spec.workflow.defaults.max_tokens

    # ----------------------------------------------------------------- a chunk

    async def run(
        self, index: int, chunk: Chunk, feedback: list[str], own: Mapping[str, str]
    ) -> dict[str, str]:
        """Chunk ``index``: the agents' outputs by name (``own`` is not used: a restarted round
        starts its answers over)."""
        if index == 1 or self._best is None:
            outputs = await self._write(index, feedback)
        else:
            outputs = await self._repair(index, feedback, self._best)
        self._finish_chunk(index, chunk)
        return outputs

    async def _write(self, index: int, feedback: list[str]) -> dict[str, str]:
        spec, coder = self._spec, self._coder
        context = {k: v for k, v in spec.context.items() if k != "function"}
        calls: dict[str, asyncio.Task[AgentResult]] = {}
        async with asyncio.TaskGroup() as group:
            messages = coder_messages(coder, spec.task, context, feedback)
            calls[coder.name] = group.create_task(self._call(index, coder, messages, coder.temperature))
            if self._tester is not None:
                name = self._name or "the function"
                tester_prompt = tester_messages(self._tester, spec.task, name, context, feedback)
                calls[self._tester.name] = group.create_task(
                    self._call(index, self._tester, tester_prompt, self._tester.temperature)
                )
        results = {name: task.result() for name, task in calls.items()}
        coded = results[coder.name]
        if self._name is None:  # the task named no function: test the one the coder wrote
            self._name = entry_point(f"```python\n{extract_code(coded.text) or ''}\n```")
        examples = stated_examples(spec.task, self._name) if self._name else []
        written: list[TestCase] = []
        if self._tester is not None and self._name:
            known = {t.source for t in examples}
            written = written_tests(results[self._tester.name].text, self._name, self._loop.max_tests, known)
        self._tests = (*examples, *written)
        if coded.status == "done":
            await self._try(index, 1, coded.text)
        return {name: result.text for name, result in results.items()}

    async def _repair(self, index: int, feedback: list[str], best: Candidate) -> dict[str, str]:
        spec, coder, loop = self._spec, self._coder, self._loop
        context = {k: v for k, v in spec.context.items() if k != "function"}
        texts: list[str] = []
        for number in range(1, loop.candidates + 1):
            await self._stream.wait_unpaused()
            repair = None
            if number == 1 and best.code is not None:
                sources = {t.name: t.source for t in self._tests}
                repair = repair_messages(coder, spec.task, best.code, best.report, sources, context, feedback)
            if repair is not None and repair not in self._asked:
                # Asked once: the same greedy prompt would give the same answer again.
                self._asked.append(repair)
                messages, temperature = repair, coder.temperature
            else:  # a fresh answer to the first prompt, sampled
                messages = coder_messages(coder, spec.task, context, feedback)
                temperature = loop.sample_temperature
            seed = None if self._seed is None else self._seed * 1_000 + index * 10 + number
            self._stream.router.reset(coder.name)
            result = await self._call(index, coder, messages, temperature, seed)
            texts.append(result.text)
            if result.status == "done":
                await self._try(index, number, result.text)
            if self._done(self._best):
                break
        return {coder.name: texts[-1] if texts else ""}

    async def _call(
        self,
        index: int,
        role: Role,
        messages: tuple[ChatMessage, ...],
        temperature: float | None,
        seed: int | None = None,
    ) -> AgentResult:
        return await self._caller.call(
            index,
            role.name,
            messages,
            self._max_tokens(role),
            [],
            temperature=temperature,
            seed=seed,
            continue_cut=role.continue_cut,
        )

    # ----------------------------------------------------------------- running a candidate

    async def _try(self, index: int, number: int, text: str) -> None:
        code = extract_code(text, self._name)
        report = await self._run(index, number, code)
        candidate = Candidate(index, number, text, code, report)
        best = self._best
        if best is None or candidate.score > best.score:
            self._best = candidate

    async def _run(self, index: int, number: int, code: str | None) -> RunReport:
        runnable = None if code is None else program(self._spec.task, code)
        report, status = await self._executor.run(
            self._coder.name, index, runnable, self._tests, candidate=number
        )
        if status == "skipped":
            self.settled = True  # nothing can be tested, so no round could do better
        return report

    # ----------------------------------------------------------------- settling a chunk

    def _done(self, candidate: Candidate | None) -> bool:
        if candidate is None or candidate.report.status != "ran":
            return False
        task_passed, task_total = candidate.report.count("task")
        tester_passed, tester_total = candidate.report.count("tester")
        if task_total:
            return task_passed == task_total
        return tester_passed == tester_total

    def _finish_chunk(self, index: int, chunk: Chunk) -> None:
        best = self._best
        if self._done(best) or index == len(self._spec.workflow.chunks):
            self.settled = True
        if best is None:
            self._flaws.append(f"no candidate of chunk {index} had code")
            return
        synthesis = self._synthesis(index, best)
        self._history.append(ChunkRecord(chunk.title, synthesis.text))
        self._syntheses.append(synthesis)
        self._stream.emit(synthesis)

    def _synthesis(self, index: int, best: Candidate) -> ev.Synthesis:
        report, tests = best.report, {t.name: t for t in self._tests}
        agreed = [f"`{tests[o.name].source}`" for o in report.outcomes if o.passed and o.name in tests]
        debated = [
            ev.DebatedPoint(
                point=f"`{tests[o.name].source}`",
                positions={
                    self._coder.name: o.message or "fails",
                    (
                        "task" if o.origin == "task" else self._loop.tester or "tester"
                    ): "expects what the test asserts",
                },
            )
            for o in report.outcomes
            if not o.passed and o.name in tests
        ]
        task_passed, task_total = report.count("task")
        tester_passed, tester_total = report.count("tester")
        summary = (
            f"Kept candidate {best.number} of chunk {best.chunk}: it passes {task_passed} of the "
            f"task's {task_total} examples and {tester_passed} of the tester's {tester_total} tests"
        )
        if report.status != "ran":
            summary += f" (the run ended with status {report.status})"
        code = best.code or best.text
        text = f"{summary}.\n\n```python\n{code.strip()}\n```"
        parts = ev.ConfidenceParts(passed=report.passed, failed=report.failed)
        return ev.Synthesis(
            session_id=self._stream.session_id,
            chunk=index,
            agreed=agreed[:MAX_POINTS],
            debated=debated[:MAX_POINTS],
            confidence=confidence(parts),
            text=text,
            parsed=True,
            confidence_parts=parts,
        )
