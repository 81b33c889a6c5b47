"""``facilitair stats [--since 7d] [--json]``: models, costs and model pairs, from the session store.

What each figure means is in ``facilitair_tui.stats``; this prints it as tables or one JSON
document (its keys are stable: scripts may read them).
"""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facilitair_tui.cli.headless import opened_store
from facilitair_tui.cli.options import OneLineUsageErrors, fail
from facilitair_tui.command_line import EXIT_USAGE, err_console
from facilitair_tui.stats import SINCE_FORMS, Stats, failure_words, ms, parse_since, read, share
from facilitair_tui.summaries import money

out = Console(highlight=False)


@click.command(cls=OneLineUsageErrors, name="stats")
@click.option("--since", metavar="WHEN", help=f"Only sessions started since then: {SINCE_FORMS}.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def stats_command(since: str | None, as_json: bool) -> None:
    """Per model: calls, failures by kind, time to first token and latency p50/p95/p99, tokens/s,
    cost. Cost per day and per role. Per (coder model, reviewer model): sessions, debated points,
    review findings (debated points the reviewer took a position on), test pass rate, cost per
    session."""
    cutoff = None
    if since is not None:
        try:
            cutoff = parse_since(since, datetime.now().astimezone())
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE, as_json=as_json)
    with opened_store(as_json=as_json) as store:
        result = read(store, cutoff)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    if not result.sessions:
        when = f" since {since}" if since else ""
        err_console.print(f"No sessions{when}: every facilitair collaborate run is recorded.")
        return
    _print(result, since)


def _print(result: Stats, since: str | None) -> None:
    span = f"since {since}" if since else "all recorded"
    out.print(f"[bold]{result.sessions} sessions[/] ({span}), {money(result.cost_usd)}")
    models = Table(title="Models", title_justify="left")
    for column in ("model", "calls", "requests", "failures by kind"):
        models.add_column(column, overflow="fold")
    for column in ("tokens/s", "tokens in / out", "cost"):
        models.add_column(column, justify="right")
    timing = Table(title="Time to first token and latency", title_justify="left")
    timing.add_column("model", overflow="fold")
    for column in ("first token p50", "p95", "p99", "latency p50", "p95", "p99"):
        timing.add_column(column, justify="right")
    for m in result.models:
        models.add_row(
            escape(m.model),
            str(m.calls),
            str(m.requests) if m.requests else "—",
            escape(failure_words(m.failures)),
            "—" if m.tokens_per_s is None else f"{m.tokens_per_s:,.1f}",
            f"{m.input_tokens:,} / {m.output_tokens:,}",
            money(m.cost_usd),
        )
        timing.add_row(
            escape(m.model), *(ms(v) for v in (*m.first_token_ms.values(), *m.latency_ms.values()))
        )
    out.print(models)
    out.print(timing)
    pairs = Table(title="Model pairs (coder, reviewer)", title_justify="left")
    for column in (
        "coder",
        "reviewer",
        "sessions",
        "debated",
        "review findings",
        "tests passed",
        "cost/session",
    ):
        pairs.add_column(column, overflow="fold")
    for p in result.pairs:
        pairs.add_row(
            escape(p.coder),
            escape(p.reviewer),
            str(p.sessions),
            str(p.debated_points),
            str(p.review_findings),
            share(p.test_pass_rate),
            money(p.cost_per_session_usd),
        )
    out.print(pairs)
    days = Table(title="Per day", title_justify="left")
    for column in ("day", "sessions", "cost"):
        days.add_column(column)
    for day in result.days:
        days.add_row(day["day"], str(day["sessions"]), money(day["cost_usd"]))
    roles = Table(title="Per role", title_justify="left")
    for column in ("role", "calls", "cost"):
        roles.add_column(column)
    for role in result.roles:
        roles.add_row(escape(role["role"]), str(role["calls"]), money(role["cost_usd"]))
    out.print(days)
    out.print(roles)
