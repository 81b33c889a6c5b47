"""What the recorded sessions say about models, costs and pairings (``facilitair stats`` and the
TUI's stats screen), computed from the session store's rows (``store.analytics``).

- Per model: calls (agent executions on it), failures by kind (its failed requests, from the
  ``model_attempt`` events; a failed execution recorded before those existed counts as "other"),
  time to first token and latency at p50 / p95 / p99, output tokens per second of latency,
  tokens and cost.
- Cost and sessions per day (local dates of the sessions' starts) and cost per role.
- Model pairs: for each (coder model, reviewer model) of the sessions' roles ("—" when a
  workflow has no such role), the sessions, the debated points of their syntheses, the review
  findings (debated points on which the reviewer took a position: what the reviewer raised or
  contested), the test pass rate where code ran, and the mean cost per session.

Percentiles are nearest-rank: the p-th percentile is the smallest recorded value with at least
p% of the values at or below it (so it is always a value that happened). A cost is None when any
call in it had no known price.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from facilitair_tui.core.cost import add_costs
from facilitair_tui.store import SessionStore
from facilitair_tui.store.analytics import Recorded

NO_ROLE = "—"
PERCENTILES = (50, 95, 99)
_SINCE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_FORMS = "a duration like 30m, 24h, 7d or 2w, or a date like 2026-12-01"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least ``p``% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values, p) for p in PERCENTILES}


def parse_since(text: str, now: datetime) -> float:
    """``text`` ("7d", "24h", "2026-12-01") as the epoch second it means; ``ValueError`` saying
    the forms it takes."""
    value = text.strip().lower()
    if match := _SINCE.fullmatch(value):
        return (now - timedelta(seconds=int(match[1]) * _UNITS[match[2]])).timestamp()
    try:
        day = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {text!r} is not {SINCE_FORMS}") from None
    if day.tzinfo is None:
        day = day.astimezone()  # a date or time without a zone is local, like the day rows
    return day.timestamp()


@dataclass
class ModelStats:
    model: str
    calls: int = 0
    failed_calls: int = 0  # executions that ended failed
    requests: int = 0  # model requests (retries, fallbacks, continuations included), where recorded
    failures: dict[str, int] = field(default_factory=dict)  # failed requests by kind
    first_token_ms: dict[str, float | None] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    tokens_per_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0


@dataclass
class PairStats:
    coder: str
    reviewer: str
    sessions: int = 0
    debated_points: int = 0
    review_findings: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    test_pass_rate: float | None = None  # None: no code ran
    cost_per_session_usd: float | None = None


@dataclass
class Stats:
    since: float | None  # epoch seconds; None: every session
    sessions: int
    cost_usd: float | None
    models: list[ModelStats]
    days: list[dict[str, Any]]  # {"day", "sessions", "cost_usd"}, oldest first
    roles: list[dict[str, Any]]  # {"role", "calls", "cost_usd"}, dearest first
    pairs: list[PairStats]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read(store: SessionStore | None, since: float | None = None) -> Stats:
    """The stats of ``store``'s sessions started since ``since`` (epoch seconds; None: all).
    Without a store (nothing is recorded) there is nothing to sum up."""
    recorded = store.analytics.since(since) if store is not None else Recorded([], [], [], {}, [])
    return collect(recorded, since)


def collect(recorded: Recorded, since: float | None = None) -> Stats:
    """The stats of the sessions in ``recorded`` (read with the same ``since``)."""
    return Stats(
        since=since,
        sessions=len(recorded.sessions),
        cost_usd=add_costs(s.cost_usd for s in recorded.sessions),
        models=_models(recorded),
        days=_days(recorded),
        roles=_roles(recorded),
        pairs=_pairs(recorded),
    )


def _models(recorded: Recorded) -> list[ModelStats]:
    by_model: dict[str, ModelStats] = {}

    def of(model: str) -> ModelStats:
        return by_model.setdefault(model, ModelStats(model))

    traced = {a.session_id for a in recorded.attempts}
    latencies: dict[str, list[float]] = defaultdict(list)
    costs: dict[str, list[float | None]] = defaultdict(list)
    busy: Counter[str] = Counter()
    for execution in recorded.executions:
        stats = of(execution.model)
        stats.calls += 1
        stats.input_tokens += execution.input_tokens
        stats.output_tokens += execution.output_tokens
        costs[execution.model].append(execution.cost_usd)
        if execution.status == "failed":
            stats.failed_calls += 1
            if execution.session_id not in traced:  # no request detail: the kind is unknown
                stats.failures["other"] = stats.failures.get("other", 0) + 1
        if execution.status == "done" and execution.latency_ms is not None:
            latencies[execution.model].append(execution.latency_ms)
            busy[execution.model] += execution.output_tokens
    first_tokens: dict[str, list[float]] = defaultdict(list)
    for attempt in recorded.attempts:
        stats = of(attempt.model)
        stats.requests += 1
        if attempt.outcome == "failed":
            kind = attempt.error or "other"
            stats.failures[kind] = stats.failures.get(kind, 0) + 1
        if attempt.first_token_ms is not None:
            first_tokens[attempt.model].append(attempt.first_token_ms)
    for model, stats in by_model.items():
        stats.latency_ms = percentiles(latencies[model])
        stats.first_token_ms = percentiles(first_tokens[model])
        seconds = sum(latencies[model]) / 1000
        stats.tokens_per_s = busy[model] / seconds if seconds > 0 else None
        stats.cost_usd = add_costs(costs[model])
        stats.failures = dict(sorted(stats.failures.items(), key=lambda kv: (-kv[1], kv[0])))
    return sorted(by_model.values(), key=lambda s: (-s.calls, s.model))


def _days(recorded: Recorded) -> list[dict[str, Any]]:
    sessions: Counter[str] = Counter()
    costs: dict[str, list[float | None]] = defaultdict(list)
    for session in recorded.sessions:
        day = datetime.fromtimestamp(session.started_at).date().isoformat()
        sessions[day] += 1
        costs[day].append(session.cost_usd)
    return [
        {"day": day, "sessions": sessions[day], "cost_usd": add_costs(costs[day])} for day in sorted(sessions)
    ]


def _roles(recorded: Recorded) -> list[dict[str, Any]]:
    calls: Counter[str] = Counter()
    costs: dict[str, list[float | None]] = defaultdict(list)
    for execution in recorded.executions:
        calls[execution.agent] += 1
        costs[execution.agent].append(execution.cost_usd)
    rows = [{"role": role, "calls": calls[role], "cost_usd": add_costs(costs[role])} for role in calls]
    return sorted(rows, key=lambda r: (-(r["cost_usd"] or 0.0), r["role"]))


def _pairs(recorded: Recorded) -> list[PairStats]:
    pairs: dict[tuple[str, str], PairStats] = {}
    costs: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    runs = _runs_by_session(recorded)
    for session in recorded.sessions:
        key = (session.models.get("coder", NO_ROLE), session.models.get("reviewer", NO_ROLE))
        pair = pairs.setdefault(key, PairStats(*key))
        pair.sessions += 1
        costs[key].append(session.cost_usd)
        for points in recorded.debated.get(session.id, []):
            pair.debated_points += len(points)
            pair.review_findings += sum(1 for p in points if "reviewer" in (p.get("positions") or {}))
        passed, failed = runs.get(session.id, (0, 0))
        pair.tests_passed += passed
        pair.tests_failed += failed
    for key, pair in pairs.items():
        tests = pair.tests_passed + pair.tests_failed
        pair.test_pass_rate = pair.tests_passed / tests if tests else None
        total = add_costs(costs[key])
        pair.cost_per_session_usd = None if total is None else total / pair.sessions
    return sorted(pairs.values(), key=lambda p: (-p.sessions, p.coder, p.reviewer))


def _runs_by_session(recorded: Recorded) -> dict[str, tuple[int, int]]:
    """Tests passed and failed by the code each session ran (skipped runs ran nothing)."""
    totals: dict[str, tuple[int, int]] = {}
    for run in recorded.code_runs:
        if run.status == "skipped":
            continue
        passed, failed = totals.get(run.session_id, (0, 0))
        totals[run.session_id] = (passed + run.passed, failed + run.failed)
    return totals


def failure_words(failures: dict[str, int]) -> str:
    """ "rate_limit 3, server 1" (or "—")."""
    return ", ".join(f"{kind} {count}" for kind, count in failures.items()) or NO_ROLE


def ms(value: float | None) -> str:
    """A duration in milliseconds, short: "412 ms", "9.3 s" ("—" when unknown)."""
    if value is None:
        return NO_ROLE
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.1f} s"


def share(value: float | None) -> str:
    return NO_ROLE if value is None else f"{value:.0%}"
