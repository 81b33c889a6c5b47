"""The CLI's live view of a collaboration, drawn with rich from the event stream alone.

Agents write at the same time, so tokens are gathered per agent and printed a whole line at a
time, each line stamped with the time it was completed and the agent's icon, the way the seeds'
mockups show a debate. Below the scrolling log, a live footer shows every running agent's
unfinished line and token count; it disappears when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from facilitair_tui.core import events as ev
from facilitair_tui.core.cost import add_costs
from facilitair_tui.core.workflow import Workflow
from facilitair_tui.summaries import (
    CUT_WORDS,
    budget_question,
    cache_summary,
    cached_words,
    clock,
    code_run_note,
    confidence_words,
    money,
)

MAX_FAILED_SHOWN = 5


@dataclass
class _AgentView:
    title: str
    icon: str
    line: str = ""
    tokens: int = 0
    status: str = "waiting"


class LiveRenderer:
    def __init__(self, console: Console, workflow: Workflow) -> None:
        self.console = console
        self.agents: dict[str, _AgentView] = {
            r.name: _AgentView(r.display_name, r.icon) for r in workflow.roles
        }
        syn = workflow.synthesizer
        if syn is not None:
            self.agents[syn.name] = _AgentView(syn.title, syn.icon)
        self._last_speaker: str | None = None
        self._chunk_costs: dict[int, float | None] = {}
        self._syntheses_shown = 0
        self._live = Live(console=console, transient=True, refresh_per_second=12, auto_refresh=True)
        self._live.update(self._footer())

    def __enter__(self) -> LiveRenderer:
        if self.console.is_terminal:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    # ------------------------------------------------------------------ output helpers

    def _print(self, renderable: RenderableType) -> None:
        self.console.print(renderable, soft_wrap=False)

    def _row(self, stamp: str, body: Text) -> None:
        """One log line: the time stamp, then the body, wrapping under itself (a hanging indent)."""
        grid = Table.grid()
        grid.add_column(width=len("[00:00.00] "), no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row(Text(stamp, style="dim"), body)
        self._print(grid)

    def _say(self, t: float, agent: str, text: str, style: str = "") -> None:
        view = self.agents[agent]
        if self._last_speaker == agent:
            self._row("", Text(text, style=style))
        else:
            self._row(
                f"[{clock(t)}]", Text.assemble(f"{view.icon} ", (f"{view.title}: ", "bold"), (text, style))
            )
        self._last_speaker = agent

    def _note(self, t: float, text: str, style: str = "dim") -> None:
        self._row(f"[{clock(t)}]", Text(text, style=style))
        self._last_speaker = None

    def _flush_line(self, t: float, agent: str) -> None:
        view = self.agents[agent]
        if view.line.strip():
            self._say(t, agent, view.line.rstrip())
        view.line = ""

    def _footer(self) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        for view in self.agents.values():
            if view.status in ("generating", "reading"):
                line = view.line[-80:] if view.line else "…"
                table.add_row(f"{view.icon} {view.title}", f"[dim]{view.status}, {view.tokens} tok[/]", line)
        return table

    # ------------------------------------------------------------------ events

    def pause_live(self) -> None:
        """Take the live footer off the screen (while the user answers a question)."""
        if self._live.is_started:
            self._live.stop()

    def resume_live(self) -> None:
        if not self._live.is_started:
            self._live.start()

    def handle(self, event: ev.Event) -> None:
        method = getattr(self, f"_on_{type(event).__name__}", None)
        if method is not None:
            method(event)
        if self._live.is_started:
            self._live.update(self._footer())

    def _on_SessionStarted(self, e: ev.SessionStarted) -> None:
        if len(set(e.models.values())) == 1:
            models = f"every role on {next(iter(e.models.values()))}"
        else:
            models = ", ".join(f"{self.agents[a].title} {m}" for a, m in e.models.items() if a in self.agents)
        body = Text.assemble(
            ("Task: ", "bold"), e.task.strip()[:400], "\n",
            ("Strategy: ", "bold"), f"{e.strategy.upper()} ({models})", "\n",
            ("Workflow: ", "bold"), f"{e.workflow}, {len(e.chunks)} chunks: {' → '.join(e.chunks)}",
        )  # fmt: skip
        if e.context:
            body.append("\nContext: ", style="bold")
            body.append(", ".join(f"{k}={v}" for k, v in e.context.items()))
        self._print(Panel(body, title="Collaborative Session", title_align="left", border_style="cyan"))

    def _on_CacheChecked(self, e: ev.CacheChecked) -> None:
        if e.hit:
            self._note(e.t, f"⚡ {cache_summary(e)} (--no-cache runs the agents instead)", "bold green")
        else:
            self._note(e.t, cache_summary(e))

    def _on_ChunkStarted(self, e: ev.ChunkStarted) -> None:
        for view in self.agents.values():
            view.status, view.tokens, view.line = "waiting", 0, ""
        self.console.rule(f"[bold]Chunk {e.chunk}/{e.total}: {e.title}")
        self._last_speaker = None

    def _on_AgentStarted(self, e: ev.AgentStarted) -> None:
        view = self.agents[e.agent]
        view.status = "generating"
        reading = f", reading {', '.join(self.agents[r].title for r in e.reads)}" if e.reads else ""
        self._note(e.t, f"{view.icon} {view.title} started on {e.model}{reading}")

    def _on_Token(self, e: ev.Token) -> None:
        view = self.agents[e.agent]
        view.tokens += e.deltas
        view.line += e.text
        while "\n" in view.line:
            line, view.line = view.line.split("\n", 1)
            if line.strip():
                self._say(e.t, e.agent, line)

    def _on_AgentFinished(self, e: ev.AgentFinished) -> None:
        self._chunk_costs[e.chunk] = add_costs([self._chunk_costs.get(e.chunk, 0.0), e.cost_usd])
        self._flush_line(e.t, e.agent)
        view = self.agents[e.agent]
        view.status = e.status
        cut = e.status == "done" and e.stop_reason != "end"
        mark = "✂" if cut else {"done": "✓", "failed": "✗", "cancelled": "⏹"}[e.status]
        status = CUT_WORDS[e.stop_reason] if cut else e.status
        estimated = " (estimated)" if e.usage_estimated else ""
        reused = cached_words(e.cached_input_tokens)
        self._note(
            e.t,
            f"{mark} {view.title} {status}: {e.output_tokens} tokens out, "
            f"{e.input_tokens} in{reused}{estimated}, "
            f"{e.latency_ms / 1000:.2f}s, {money(e.cost_usd)}",
            "dim" if e.status == "done" and not cut else "yellow",
        )

    def _on_Synthesis(self, e: ev.Synthesis) -> None:
        self._syntheses_shown += 1
        parts: list[RenderableType] = []
        if e.agreed:
            parts.append(Text("Agreed", style="bold green"))
            parts.extend(Text(f"  • {point}") for point in e.agreed)
        if e.debated:
            parts.append(Text("Debated", style="bold yellow"))
            for d in e.debated:
                parts.append(Text(f"  • {d.point}"))
                parts.extend(
                    Text(f"      {self.agents[a].title if a in self.agents else a}: {pos}", style="dim")
                    for a, pos in d.positions.items()
                )
        if parts:
            parts.append(Text(""))
        parts.append(Markdown(e.text or "_(empty)_"))
        confidence = confidence_words(e)
        confidence += f", chunk cost {money(self._chunk_costs.get(e.chunk, 0.0))}"
        unparsed = ", free-form (the synthesizer did not follow the format)" if not e.parsed else ""
        self._print(
            Panel(
                Group(*parts),
                title=f"✅ Chunk {e.chunk} synthesis",
                subtitle=f"{confidence}{unparsed}",
                title_align="left",
                border_style="green",
            )
        )

    def _on_CodeRun(self, e: ev.CodeRun) -> None:
        title = self.agents[e.agent].title if e.agent in self.agents else e.agent
        good = e.status == "ran" and not e.failed
        headline, *details = code_run_note(e, title, MAX_FAILED_SHOWN).splitlines()
        self._note(e.t, headline, "green" if good else "yellow")
        for line in details:
            self._note(e.t, f"   {line}", "dim")

    def _on_Paused(self, e: ev.Paused) -> None:
        self._note(e.t, "⏸ paused: no new model call starts; output is held until resume", "yellow")

    def _on_Resumed(self, e: ev.Resumed) -> None:
        self._note(e.t, f"▶ resumed ({e.held} held events follow)", "yellow")

    def _on_BudgetExceeded(self, e: ev.BudgetExceeded) -> None:
        self._note(e.t, budget_question(e), "bold yellow")

    def _on_BudgetDecision(self, e: ev.BudgetDecision) -> None:
        said = {
            "continue": "going on past the budget for this chunk",
            "cheaper": f"switching to {(e.strategy or 'cheaper models').upper()}",
            "stop": "stopping the session",
        }[e.choice]
        self._note(e.t, f"💰 budget: {said}", "yellow")

    def _on_Feedback(self, e: ev.Feedback) -> None:
        when = "now (restarting the chunk)" if e.applies_to == "now" else f"from chunk {e.chunk}"
        self._note(e.t, f"💬 feedback, applies {when}: {e.text}", "cyan")

    def _on_Error(self, e: ev.Error) -> None:
        who = f"{self.agents[e.agent].title}: " if e.agent and e.agent in self.agents else ""
        self._note(e.t, f"⚠ {who}{e.message}", "bold red" if not e.recoverable else "red")

    def _on_SessionFinished(self, e: ev.SessionFinished) -> None:
        for name in self.agents:
            self._flush_line(e.t, name)
        icon, word = {"done": ("✅", "complete"), "stopped": ("⏹", "stopped"), "failed": ("❌", "failed")}[
            e.status
        ]
        tokens = e.input_tokens + e.output_tokens
        if e.from_cache and not self._syntheses_shown:  # a cached output with no chunk syntheses
            self._print(Text(""))
            self._print(Panel(Markdown(e.output), title="Cached solution", title_align="left"))
        self._print(Text(""))
        self._print(
            Text(
                f"{icon} Collaboration {word} ({e.duration_s:.1f}s, {tokens:,} tokens "
                f"[{e.input_tokens:,} in{cached_words(e.cached_input_tokens)}, {e.output_tokens:,} out], "
                f"{money(e.cost_usd)})",
                style="bold",
            )
        )
