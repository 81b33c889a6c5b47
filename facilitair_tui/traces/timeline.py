"""A session as bars on a time axis, made from its events: what the trace waterfall draws and what
the OpenTelemetry exporter turns into spans.

One builder serves a live session (fed event by event as it happens) and a recorded one (fed the
store's events), so the two can never disagree. Nothing is measured here: every time comes from
an event (``t``, ``started_t``, the durations events carry). Tokens are skipped at the first test:
a bar per token would be noise, and the live path must stay cheap.

Bars nest: the session holds the cache lookup, its chunks and the user's pauses and budget
decisions; a chunk holds its agents, the synthesis and the code runs; an agent holds its model
attempts and the waits between them. A wait is a bar of its own (``kind == "wait"``, ``wait``
says what for): reading upstream, a provider's queue or rate limit, a retry's backoff (at least
the server's Retry-After), a budget decision, a pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from facilitair_tui.core import events as ev

BarKind = Literal["session", "cache", "chunk", "agent", "synthesis", "attempt", "code_run", "wait"]
WaitKind = Literal["upstream", "queue", "retry", "budget", "paused"]
_TOKEN = ev.Token
# Gaps shorter than this (seconds) are not drawn as waits: scheduling noise, not waiting.
MIN_WAIT_S = 0.005


@dataclass
class Bar:
    id: str
    parent: str | None
    kind: BarKind
    label: str
    start: float  # session seconds
    end: float | None = None  # None while it runs
    status: str = "running"
    wait: WaitKind | None = None
    # What a selection shows and a span carries: model, tokens, cost, finish reason, error...
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.end is None

    def duration(self, now: float) -> float:
        return max(0.0, (self.end if self.end is not None else now) - self.start)


Change = tuple[Literal["open", "close"], Bar]


class Timeline:
    """Bars of one session, built event by event (``add``), in the order they opened."""

    def __init__(self) -> None:
        self.bars: dict[str, Bar] = {}
        self.session_id = ""
        self.now = 0.0  # the latest event's time
        self._chunk: Bar | None = None
        self._agents: dict[tuple[int, str], Bar] = {}
        self._waiting: dict[str, Bar] = {}  # open session-level waits: "paused", "budget"
        self._changes: list[Change] = []
        self._synthesizers: set[str] = set()

    @classmethod
    def of(cls, events: list[ev.Event]) -> Timeline:
        timeline = cls()
        for event in events:
            timeline.add(event)
        return timeline

    def add(self, event: ev.Event) -> list[Change]:
        """Take one event; the bars it opened and closed, in order (for a live exporter)."""
        if event.t > self.now:
            self.now = event.t  # tokens too: a running bar grows while its agent streams
        if event.__class__ is _TOKEN:
            return []
        self._changes = []
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        return self._changes

    # ----------------------------------------------------------------- queries

    def rows(self) -> list[tuple[int, Bar]]:
        """Every bar with its depth, parents before children, siblings by start."""
        out: list[tuple[int, Bar]] = []
        children: dict[str | None, list[Bar]] = {}
        for bar in self.bars.values():
            children.setdefault(bar.parent, []).append(bar)

        def walk(parent: str | None, depth: int) -> None:
            for bar in sorted(children.get(parent, ()), key=lambda b: (b.start, b.kind != "wait")):
                out.append((depth, bar))
                walk(bar.id, depth + 1)

        walk(None, 0)
        return out

    def end(self) -> float:
        session = self.bars.get("session")
        if session is not None and session.end is not None:
            return session.end
        return self.now

    # ----------------------------------------------------------------- building

    def _open(self, bar: Bar) -> Bar:
        self.bars[bar.id] = bar
        self._changes.append(("open", bar))
        return bar

    def _close(self, bar: Bar, end: float, status: str, **attrs: Any) -> None:
        if bar.end is not None:
            return
        bar.end = max(bar.start, end)
        bar.status = status
        bar.attrs.update(attrs)
        self._changes.append(("close", bar))

    def _span(self, bar: Bar, end: float, status: str) -> None:
        """A bar known only once it ended (an attempt, a wait, a code run): opened and closed."""
        self._open(bar)
        self._close(bar, end, status)

    def _session_started(self, e: ev.SessionStarted) -> None:
        self.session_id = e.session_id
        label = " ".join(e.task.split())
        self._open(
            Bar(
                "session",
                None,
                "session",
                label if len(label) <= 60 else label[:59] + "…",
                e.t,
                attrs={
                    "session_id": e.session_id,
                    "workflow": e.workflow,
                    "strategy": e.strategy,
                    "models": dict(e.models),
                    "task": e.task,
                    "parent_id": e.parent_id,
                },
            )
        )

    def _cache_checked(self, e: ev.CacheChecked) -> None:
        lookup = (e.lookup_ms or 0.0) / 1000
        attrs = {"hit": e.hit, "decision": e.decision or ("serve" if e.hit else "miss")}
        if e.similarity is not None:
            attrs["similarity"] = round(e.similarity, 4)
        if e.matched_on:
            attrs["reason"] = e.matched_on
        if e.saved_usd is not None:
            attrs["saved_usd"] = e.saved_usd
        bar = Bar("cache", "session", "cache", "cache lookup", _at(e.t - lookup), attrs=attrs)
        self._span(bar, e.t, "hit" if e.hit else "miss")

    def _chunk_started(self, e: ev.ChunkStarted) -> None:
        if self._chunk is not None:
            self._close(self._chunk, e.t, self._chunk_status(self._chunk))
        self._chunk = self._open(
            Bar(
                f"chunk:{e.chunk}",
                "session",
                "chunk",
                f"{e.chunk}. {e.title}",
                e.t,
                attrs={"chunk": e.chunk, "title": e.title},
            )
        )

    def _agent_started(self, e: ev.AgentStarted) -> None:
        chunk = self.bars.get(f"chunk:{e.chunk}")
        parent = chunk.id if chunk is not None else "session"
        synthesis = e.synthesizes or e.agent in self._synthesizers
        if synthesis:
            self._synthesizers.add(e.agent)
        key = (e.chunk, e.agent)
        previous = self._agents.get(key)
        run = 1 if previous is None else int(previous.attrs.get("run", 1)) + 1
        bar_id = f"agent:{e.chunk}:{e.agent}" + ("" if run == 1 else f":{run}")
        since = chunk.start if chunk is not None and previous is None else None
        if since is not None and e.reads and e.t - since >= MIN_WAIT_S and not synthesis:
            self._span(
                Bar(
                    f"{bar_id}:upstream",
                    parent,
                    "wait",
                    f"{e.agent} waits for {', '.join(e.reads)}",
                    since,
                    wait="upstream",
                    attrs={"reads": list(e.reads)},
                ),
                e.t,
                "waited",
            )
        provider, _, model = e.model.partition(":")
        self._agents[key] = self._open(
            Bar(
                bar_id,
                parent,
                "synthesis" if synthesis else "agent",
                f"synthesis ({e.agent})" if synthesis else e.agent,
                e.t,
                attrs={
                    "agent": e.agent,
                    "chunk": e.chunk,
                    "model": e.model,
                    "provider": provider,
                    "request_model": model,
                    "reads": list(e.reads),
                    "run": run,
                },
            )
        )

    def _model_attempt(self, e: ev.ModelAttempt) -> None:
        agent = self._agents.get((e.chunk, e.agent))
        parent = agent.id if agent is not None else f"chunk:{e.chunk}"
        base = f"{parent}:attempt:{e.attempt}"
        queued = e.queued_ms / 1000
        if queued >= MIN_WAIT_S:
            queue = Bar(f"{base}:queue", parent, "wait", "queued at the provider", e.started_t, wait="queue")
            self._span(queue, _at(e.started_t + queued), "waited")
        start = _at(e.started_t + queued)
        end = _at(start + e.duration_ms / 1000)
        provider, _, model = e.model.partition(":")
        attrs: dict[str, Any] = {
            "agent": e.agent,
            "chunk": e.chunk,
            "attempt": e.attempt,
            "attempt_kind": e.kind,
            "model": e.model,
            "provider": provider,
            "request_model": model,
            "response_model": e.response_model or model,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "cached_input_tokens": e.cached_input_tokens,
            "usage_estimated": e.usage_estimated,
            "cost_usd": e.cost_usd,
            "first_token_ms": e.first_token_ms,
            "queued_ms": e.queued_ms,
            "max_tokens": e.max_tokens,
            "temperature": e.temperature,
        }
        if e.stop_reason is not None:
            attrs["stop_reason"] = e.stop_reason
        if e.outcome == "failed":
            attrs["error"] = e.error or "other"
            attrs["message"] = e.message
        label = f"{e.kind} · {model or e.model}"
        self._span(Bar(base, parent, "attempt", label, start, attrs=attrs), end, e.outcome)
        wait = e.wait_ms / 1000
        if wait >= MIN_WAIT_S:
            said = f" (Retry-After {e.retry_after_s:g}s)" if e.retry_after_s is not None else ""
            backoff = Bar(
                f"{base}:retry-wait",
                parent,
                "wait",
                f"retry wait{said}",
                end,
                wait="retry",
                attrs={"retry_after_s": e.retry_after_s, "wait_ms": e.wait_ms},
            )
            self._span(backoff, _at(end + wait), "waited")

    def _agent_finished(self, e: ev.AgentFinished) -> None:
        bar = self._agents.get((e.chunk, e.agent))
        if bar is None:
            return
        facts = {
            "latency_ms": e.latency_ms,
            "stop_reason": e.stop_reason,
            "usage_estimated": e.usage_estimated,
        }
        self._close(bar, e.t, e.status, **_spent(e), **facts)

    def _synthesis(self, e: ev.Synthesis) -> None:
        chunk = self.bars.get(f"chunk:{e.chunk}")
        if chunk is None:
            return
        chunk.attrs.update(agreed=len(e.agreed), debated=len(e.debated), confidence=e.confidence)
        for bar in self._agents.values():
            if bar.parent == chunk.id and bar.kind == "synthesis":
                bar.attrs.update(agreed=len(e.agreed), debated=len(e.debated), parsed=e.parsed)
        self._close(chunk, e.t, self._chunk_status(chunk))
        if self._chunk is chunk:
            self._chunk = None

    def _code_run(self, e: ev.CodeRun) -> None:
        parent = f"chunk:{e.chunk}" if f"chunk:{e.chunk}" in self.bars else "session"
        runs = sum(1 for b in self.bars.values() if b.kind == "code_run" and b.parent == parent)
        bar = Bar(
            f"{parent}:code:{runs + 1}",
            parent,
            "code_run",
            f"code run · {e.agent} #{e.candidate}",
            _at(e.t - e.duration_ms / 1000),
            attrs={"agent": e.agent, "passed": e.passed, "failed": e.failed, "run_status": e.status},
        )
        self._span(bar, e.t, e.status)

    def _paused(self, e: ev.Paused) -> None:
        if "paused" not in self._waiting:
            bar = Bar(f"paused:{e.seq}", "session", "wait", "paused by you", e.t, wait="paused")
            self._waiting["paused"] = self._open(bar)

    def _resumed(self, e: ev.Resumed) -> None:
        bar = self._waiting.pop("paused", None)
        if bar is not None:
            self._close(bar, e.t, "waited")

    def _budget_exceeded(self, e: ev.BudgetExceeded) -> None:
        label = f"budget: waiting for your decision ({e.scope} limit ${e.limit_usd:g})"
        bar = Bar(
            f"budget:{e.seq}",
            "session",
            "wait",
            label,
            e.t,
            wait="budget",
            attrs={"chunk": e.chunk, "spent_usd": e.spent_usd, "forecast_usd": e.forecast_usd},
        )
        self._waiting["budget"] = self._open(bar)

    def _budget_decision(self, e: ev.BudgetDecision) -> None:
        bar = self._waiting.pop("budget", None)
        if bar is not None:
            self._close(bar, e.t, "waited", choice=e.choice)

    def _session_finished(self, e: ev.SessionFinished) -> None:
        for bar in list(self.bars.values()):
            if bar.open and bar.id != "session":
                status = self._chunk_status(bar) if bar.kind == "chunk" else "interrupted"
                self._close(bar, e.t, "waited" if bar.kind == "wait" else status)
        session = self.bars.get("session")
        if session is not None:
            self._close(session, e.t, e.status, **_spent(e), from_cache=e.from_cache)

    def _chunk_status(self, chunk: Bar) -> str:
        agents = [b for b in self.bars.values() if b.parent == chunk.id and b.kind in ("agent", "synthesis")]
        if any(b.status == "failed" for b in agents):
            return "failed"
        if any(b.status in ("cancelled", "interrupted") for b in agents):
            return "stopped"
        return "done"


def _spent(e: ev.AgentFinished | ev.SessionFinished) -> dict[str, Any]:
    """What a finished call or session read, wrote and cost."""
    return {
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "cached_input_tokens": e.cached_input_tokens,
        "cost_usd": e.cost_usd,
    }


def _at(t: float) -> float:
    """A time computed from an event's, rounded as event times are (microseconds)."""
    return round(max(0.0, t), 6)


_HANDLERS: dict[type[ev.Event], Any] = {
    ev.SessionStarted: Timeline._session_started,
    ev.CacheChecked: Timeline._cache_checked,
    ev.ChunkStarted: Timeline._chunk_started,
    ev.AgentStarted: Timeline._agent_started,
    ev.ModelAttempt: Timeline._model_attempt,
    ev.AgentFinished: Timeline._agent_finished,
    ev.Synthesis: Timeline._synthesis,
    ev.CodeRun: Timeline._code_run,
    ev.Paused: Timeline._paused,
    ev.Resumed: Timeline._resumed,
    ev.BudgetExceeded: Timeline._budget_exceeded,
    ev.BudgetDecision: Timeline._budget_decision,
    ev.SessionFinished: Timeline._session_finished,
}
