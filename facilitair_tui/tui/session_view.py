"""What the TUI knows about a running session, folded from the event stream alone.

The Textual widgets only draw this state; every status, time and count here comes from an
event (``agent_started`` t to ``agent_finished`` t, token events, the totals of
``agent_finished``), so the screen can never show something the engine did not report. The
one input that is not an event is the workflow: which roles exist, their titles and icons, and
who reads whom, the same static facts the CLI renderer takes from it.

No Textual here: the model is plain Python and tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from facilitair_tui.core import events as ev
from facilitair_tui.core.cost import add_costs
from facilitair_tui.core.provider import StopReason
from facilitair_tui.core.session_result import SessionResult, Stage, shown_as, stages_of
from facilitair_tui.core.workflow import Workflow
from facilitair_tui.summaries import CUT_WORDS

# Where a code workflow's chunk results (its test runs) show: the synthesizer's panel, by this name.
TESTS_PANEL = ("tests", "Tests", "🧪")

Phase = Literal["idle", "waiting", "generating", "done", "failed", "cancelled"]
# "budget": waiting for the user's answer to the budget guard.
SessionState = Literal["starting", "running", "paused", "budget", "done", "stopped", "failed"]
Verbosity = Literal["all", "filtered", "synthesis"]
VERBOSITIES: tuple[Verbosity, ...] = ("all", "filtered", "synthesis")

FINISHED_PHASES: frozenset[Phase] = frozenset({"done", "failed", "cancelled"})


def next_verbosity(current: Verbosity) -> Verbosity:
    return VERBOSITIES[(VERBOSITIES.index(current) + 1) % len(VERBOSITIES)]


@dataclass
class AgentView:
    """One agent (or the synthesizer) in the current chunk."""

    name: str
    title: str
    icon: str
    reads: tuple[str, ...] = ()
    model: str = ""
    phase: Phase = "idle"
    chunk: int = 0
    started_t: float | None = None
    finished_t: float | None = None
    # Deltas streamed in the current attempt (a "feedback now" restart starts over).
    streamed: int = 0
    # The count the backend reported in agent_finished (None until then).
    output_tokens: int | None = None
    tokens_estimated: bool = False
    # Why its model stopped (agent_finished): "max_tokens" is an answer cut short.
    stop_reason: StopReason = "end"

    def elapsed(self, now: float) -> float | None:
        """Seconds from agent_started to agent_finished, or to ``now`` while generating."""
        if self.started_t is None:
            return None
        end = self.finished_t if self.finished_t is not None else now
        return max(0.0, end - self.started_t)

    @property
    def tokens(self) -> int:
        return self.output_tokens if self.output_tokens is not None else self.streamed


@dataclass
class SessionView:
    """The whole session as the TUI shows it. Feed it every event with ``apply``."""

    agents: dict[str, AgentView]
    synthesizer: str
    total_chunks: int
    state: SessionState = "starting"
    session_id: str = ""
    task: str = ""
    context: dict[str, str] = field(default_factory=dict)
    strategy: str = ""
    workflow_name: str = ""
    models: dict[str, str] = field(default_factory=dict)
    chunk_titles: list[str] = field(default_factory=list)
    chunk: int = 0
    chunk_title: str = ""
    # The latest event time seen: the session's "now" as far as the events tell.
    now: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    # What each chunk's calls cost so far (None once a price is unknown).
    chunk_costs: dict[int, float | None] = field(default_factory=dict)
    final: ev.SessionFinished | None = None
    # The workflow's stages, and each finished chunk's synthesis by chunk: the deliverable's stuff.
    stages: list[Stage] = field(default_factory=list)
    shown_titles: dict[int, str] = field(default_factory=dict)  # chunk -> the title it was shown under
    syntheses: dict[int, ev.Synthesis] = field(default_factory=dict)
    errors: list[ev.Error] = field(default_factory=list)
    feedback: list[ev.Feedback] = field(default_factory=list)
    # The screen holds the events it receives (the user paused). The engine paused at the same
    # moment, but its own "paused" event may still be on its way: the pause shows at once.
    held: bool = False

    @classmethod
    def for_workflow(cls, workflow: Workflow) -> SessionView:
        agents = {
            role.name: AgentView(role.name, role.display_name, role.icon, tuple(role.reads))
            for role in workflow.roles
        }
        syn = workflow.synthesizer
        # The synthesizer reads finished outputs, never partial ones: it only ever "waits". A
        # code workflow has none: its chunks end with the tests, shown in the same panel.
        name, title, icon = TESTS_PANEL if syn is None else (syn.name, syn.title, syn.icon)
        agents[name] = AgentView(name, title, icon)
        return cls(
            agents=agents,
            synthesizer=name,
            total_chunks=len(workflow.chunks),
            chunk_titles=[c.title for c in workflow.chunks],
            stages=stages_of(workflow),
        )

    # ------------------------------------------------------------------ queries

    @property
    def roles(self) -> list[str]:
        """The agents other than the synthesizer, in workflow order."""
        return [name for name in self.agents if name != self.synthesizer]

    @property
    def finished(self) -> bool:
        return self.final is not None

    @property
    def shown_state(self) -> SessionState:
        """The session's state, paused from the moment the screen holds its events."""
        return "paused" if self.held and self.state in ("starting", "running") else self.state

    def status(self, name: str) -> str:
        """The agent's status in words, derived from events only."""
        agent = self.agents[name]
        if agent.phase in FINISHED_PHASES:
            if agent.phase == "done" and agent.stop_reason != "end":
                return CUT_WORDS[agent.stop_reason]
            return agent.phase
        if self.shown_state == "paused" and agent.phase in ("waiting", "generating"):
            return "paused"
        if agent.phase == "waiting":
            busy = [self.agents[u].title for u in agent.reads if self.agents[u].phase == "generating"]
            return f"reading {', '.join(busy)}" if busy else "waiting"
        return agent.phase

    def live_output_tokens(self) -> int:
        """Output tokens reported by finished calls plus those streamed by running ones."""
        running = sum(a.streamed for a in self.agents.values() if a.phase == "generating")
        return self.output_tokens + running

    def title_of(self, chunk: int) -> str:
        if 1 <= chunk <= len(self.chunk_titles):
            return self.chunk_titles[chunk - 1]
        return ""

    def result(self, status: str) -> SessionResult:
        """What the session produced so far, for its deliverable; ``status``: how it ended."""
        return SessionResult(
            task=self.task,
            context=self.context,
            stages=shown_as(self.stages, self.shown_titles),
            syntheses=[self.syntheses[chunk] for chunk in sorted(self.syntheses)],
            status=status,
            session_id=self.session_id,
            workflow=self.workflow_name,
            models=self.models,
            role_titles={name: agent.title for name, agent in self.agents.items()},
        )

    def is_restart(self, event: ev.AgentStarted) -> bool:
        """True when this agent already started in this chunk: feedback "now" restarted it."""
        agent = self.agents.get(event.agent)
        return agent is not None and agent.chunk == event.chunk and agent.started_t is not None

    # ------------------------------------------------------------------ folding events

    def apply(self, event: ev.Event) -> None:
        self.now = max(self.now, event.t)
        if isinstance(event, ev.SessionStarted):
            self.state = "running"
            self.session_id = event.session_id
            self.task = event.task
            self.context = dict(event.context)
            self.strategy = event.strategy
            self.workflow_name = event.workflow
            self.models = dict(event.models)
            if event.chunks:
                self.chunk_titles = list(event.chunks)
                self.total_chunks = len(event.chunks)
            for name, model in event.models.items():
                if name in self.agents:
                    self.agents[name].model = model
        elif isinstance(event, ev.ChunkStarted):
            self.chunk, self.chunk_title, self.total_chunks = event.chunk, event.title, event.total
            self.shown_titles[event.chunk] = event.title
            for agent in self.agents.values():
                agent.phase, agent.chunk = "waiting", event.chunk
                agent.started_t = agent.finished_t = agent.output_tokens = None
                agent.streamed, agent.tokens_estimated = 0, False
        elif isinstance(event, ev.AgentStarted):
            agent = self.agents[event.agent]
            agent.phase, agent.chunk, agent.model = "generating", event.chunk, event.model
            agent.started_t, agent.finished_t, agent.output_tokens = event.t, None, None
            agent.streamed = 0
        elif isinstance(event, ev.Token):
            self.agents[event.agent].streamed += event.deltas
        elif isinstance(event, ev.AgentFinished):
            agent = self.agents[event.agent]
            agent.phase, agent.finished_t = event.status, event.t
            agent.stop_reason = event.stop_reason
            agent.output_tokens, agent.tokens_estimated = event.output_tokens, event.usage_estimated
            self.input_tokens += event.input_tokens
            self.output_tokens += event.output_tokens
            self.cost_usd = add_costs([self.cost_usd, event.cost_usd])
            self.chunk_costs[event.chunk] = add_costs(
                [self.chunk_costs.get(event.chunk, 0.0), event.cost_usd]
            )
        elif isinstance(event, ev.Paused):
            if not self.finished:
                self.state = "paused"
        elif isinstance(event, ev.Resumed):
            if not self.finished:
                self.state = "running"
        elif isinstance(event, ev.BudgetExceeded):
            if not self.finished:
                self.state = "budget"
        elif isinstance(event, ev.BudgetDecision):
            if not self.finished and self.state == "budget":
                self.state = "running"
            if event.choice == "cheaper":
                self.strategy = event.strategy or self.strategy
                self.models.update(event.models)
        elif isinstance(event, ev.Synthesis):
            self.syntheses[event.chunk] = event
        elif isinstance(event, ev.Error):
            self.errors.append(event)
        elif isinstance(event, ev.Feedback):
            self.feedback.append(event)
        elif isinstance(event, ev.SessionFinished):
            self.final = event
            self.state = event.status
            self.input_tokens, self.output_tokens = event.input_tokens, event.output_tokens
            self.cost_usd = event.cost_usd
            for agent in self.agents.values():
                if agent.phase == "waiting":  # it never ran: saying "waiting" now would be a lie
                    agent.phase = "idle"
