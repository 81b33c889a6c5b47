"""One chunk of a workflow: every role at once, then the synthesizer merges their outputs.

A role that reads another starts when each upstream has streamed ``read_after_tokens`` deltas
(or finished), with that partial text in its prompt, while the upstream keeps going. The
synthesis joins the history, the context of every later chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from . import events as ev
from .agent_call import AgentCaller, AgentResult
from .code_exec import CodeExecutor, run_note, written_checks
from .code_run import RunReport
from .confidence import Embed, confidence, measure_agreement
from .event_stream import EventStream
from .prompts import ChunkRecord, agent_messages, strip_example, synthesis_messages
from .python_code import extract_code
from .session_output import agent_titles
from .session_spec import SessionSpec
from .synthesis import ParsedSynthesis, fallback_synthesis, parse_synthesis, synthesis_schema
from .workflow import Chunk, Role


class ChunkRunner:
    """Runs the chunks of one session, one at a time. ``history`` and ``syntheses`` are the
    session's own lists: each chunk's synthesis is added to both."""

    def __init__(
        self,
        spec: SessionSpec,
        stream: EventStream,
        caller: AgentCaller,
        history: list[ChunkRecord],
        syntheses: list[ev.Synthesis],
        flaws: list[str],
        embed: Embed | None = None,
        executor: CodeExecutor | None = None,
    ) -> None:
        """``flaws``: what makes this session's answer unfit to serve again from the cache (a
        synthesis cut short or never written), in words; the runner adds to it. ``embed``
        measures how far the agents agree (a part of the computed confidence). ``executor``
        runs the code of a chunk whose workflow says so (``Chunk.run_code``)."""
        self._spec = spec
        self._embed = embed
        self._flaws = flaws
        self._workflow = spec.workflow
        self._stream = stream
        self._caller = caller
        self._history = history
        self._syntheses = syntheses
        self._executor = executor

    async def run(
        self, index: int, chunk: Chunk, feedback: list[str], own: Mapping[str, str]
    ) -> dict[str, str]:
        """Chunk ``index``: the roles' outputs by name. ``own``: each role's partial text from a
        start this one replaces (feedback "now"), which its prompt goes on from."""
        roles = self._workflow.roles
        ready = {r.name: asyncio.Event() for r in roles}
        results: dict[str, AgentResult] = {}
        async with asyncio.TaskGroup() as group:
            for role in roles:
                group.create_task(
                    self._run_agent(index, chunk, role, feedback, own.get(role.name, ""), ready, results),
                    name=f"{role.name}-{index}",
                )
        outputs = {r.name: results[r.name].text for r in roles if r.name in results}
        self._note_flaws(index, results)
        if any(text.strip() for text in outputs.values()):
            ran = await self._run_code(index, chunk, outputs)
            await self._synthesize(index, chunk, outputs, feedback, ran)
        return outputs

    def _note_flaws(self, index: int, results: Mapping[str, AgentResult]) -> None:
        """An agent that failed or was cut leaves the session's answer unfit for the cache."""
        for role in self._workflow.roles:
            result = results.get(role.name)
            if result is None or result.status != "done":
                self._flaws.append(f"{role.display_name} failed in chunk {index}")
            elif result.stop_reason != "end":
                cut = ev.CUT_WORDS[result.stop_reason]
                self._flaws.append(f"{role.display_name}'s output in chunk {index} was {cut}")

    async def _run_code(
        self, index: int, chunk: Chunk, outputs: Mapping[str, str]
    ) -> tuple[RunReport, str] | None:
        """Run the chunk's code with the tests the agents wrote, when the workflow asks for it:
        the report and what it showed, in words."""
        role = chunk.run_code
        if role is None or self._executor is None or not outputs.get(role, "").strip():
            return None
        code = extract_code(outputs[role])
        if code is None:
            return None  # prose only: nothing to run, and nothing to report
        tests = written_checks(outputs)
        report, status = await self._executor.run(role, index, code, tests)
        return report, run_note(self._workflow.role(role).display_name, report, status)

    async def _await_upstream(self, role: Role, ready: Mapping[str, asyncio.Event]) -> list[str]:
        for upstream in role.reads:
            await ready[upstream].wait()
        router = self._stream.router
        return [u for u in role.reads if router.count(u) > 0]

    async def _run_agent(
        self,
        index: int,
        chunk: Chunk,
        role: Role,
        feedback: Sequence[str],
        own_partial: str,
        ready: Mapping[str, asyncio.Event],
        results: dict[str, AgentResult],
    ) -> None:
        try:
            reads = await self._await_upstream(role, ready)
            await self._stream.wait_unpaused()
            upstream = {name: self._stream.router.text(name) for name in reads}
            messages = agent_messages(
                self._workflow,
                role,
                chunk,
                task=self._spec.task,
                context=self._spec.context,
                history=self._history,
                upstream=upstream,
                feedback=feedback,
                own_partial=own_partial,
            )
            max_tokens = self._spec.max_tokens or role.max_tokens or self._workflow.defaults.max_tokens
            results[role.name] = await self._caller.call(
                index,
                role.name,
                messages,
                max_tokens,
                reads,
                ready[role.name],
                temperature=role.temperature,
                continue_cut=role.continue_cut,
            )
        finally:
            ready[role.name].set()

    async def _synthesize(
        self,
        index: int,
        chunk: Chunk,
        outputs: dict[str, str],
        feedback: list[str],
        ran: tuple[RunReport, str] | None = None,
    ) -> None:
        wf = self._workflow
        await self._stream.wait_unpaused()
        messages = synthesis_messages(
            wf,
            chunk,
            task=self._spec.task,
            context=self._spec.context,
            history=self._history,
            outputs=outputs,
            feedback=feedback,
            code_run=ran[1] if ran else "",
        )
        max_tokens = self._spec.max_tokens or wf.merger.max_tokens
        agents = [r.name for r in wf.roles]
        # The agents' agreement needs only their outputs: measured while the synthesizer writes.
        agreement = asyncio.create_task(measure_agreement(self._embed, list(outputs.values())))
        try:
            result = await self._caller.call(
                index,
                wf.merger.name,
                messages,
                max_tokens,
                list(outputs),
                output_schema=synthesis_schema(agents),
                synthesizes=True,
            )
        except BaseException:  # stopped mid-synthesis: the measure is not wanted any more
            agreement.cancel()
            raise
        parsed: ParsedSynthesis
        if result.status == "done":
            parsed, copied = strip_example(parse_synthesis(result.text, agents))
            if copied and not parsed.text:
                # Nothing of its own: the agents' words are this stage's result, not the example.
                parsed = fallback_synthesis(outputs, agent_titles(wf))
                self._flaws.append(f"the synthesis of chunk {index} only repeated the prompt's example")
        else:
            parsed = fallback_synthesis(outputs, agent_titles(wf))
            self._flaws.append(f"the synthesizer failed in chunk {index}")
        if result.status == "done" and result.stop_reason != "end":
            self._flaws.append(f"the synthesis of chunk {index} was {ev.CUT_WORDS[result.stop_reason]}")
        # The run's results reach the chunks after this one with the synthesis they shaped.
        record = parsed.text if ran is None else f"{parsed.text}\n\n{ran[1]}"
        self._history.append(ChunkRecord(chunk.title, record))
        parts = ev.ConfidenceParts(
            agreement=await agreement,
            agreed=len(parsed.agreed) if parsed.parsed else 0,
            debated=len(parsed.debated) if parsed.parsed else 0,
            passed=ran[0].passed if ran else 0,
            failed=ran[0].failed if ran else 0,
        )
        synthesis = ev.Synthesis(
            session_id=self._stream.session_id,
            chunk=index,
            agreed=parsed.agreed,
            debated=parsed.debated,
            confidence=confidence(parts),
            text=parsed.text,
            parsed=parsed.parsed,
            confidence_parts=parts,
        )
        self._syntheses.append(synthesis)
        self._stream.emit(synthesis)
