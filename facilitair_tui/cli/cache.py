"""``facilitair cache ...``: browse, share and question the semantic cache from the shell.

list / show ID / rm ID / clear / stats [--json] / export FILE / import FILE / lookup TASK. An
ID may be any unique prefix of an entry's id. Export and import use JSON Lines, one solution per
line with at least ``task``, ``context`` and ``output``, so a team can share solutions.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from facilitair_tui.cli.options import fail, write_export
from facilitair_tui.command_line import EXIT_CONFIG, EXIT_USAGE, err_console
from facilitair_tui.config import load_settings
from facilitair_tui.core import events as ev
from facilitair_tui.core.context import parse_context
from facilitair_tui.core.provider import ConfigurationError, UsageError
from facilitair_tui.library import CachedSolution, format_age
from facilitair_tui.summaries import clock, money

if TYPE_CHECKING:
    from facilitair_tui.cache import SemanticCache
    from facilitair_tui.cache.records import EntryRecord

out = Console(highlight=False)


def _open() -> SemanticCache:
    """The user's cache; CacheError when it can't be opened, ConfigurationError for the config.
    The cache (numpy, diskcache, the embedder) is imported here, not when ``facilitair`` starts."""
    from facilitair_tui.cache import SemanticCache
    from facilitair_tui.session import cache_dir, cache_settings

    return SemanticCache.open(cache_dir(), settings=cache_settings(load_settings()))


@contextmanager
def _opened() -> Iterator[SemanticCache]:
    from facilitair_tui.cache import CacheError

    try:
        cache = _open()
    except (CacheError, ConfigurationError) as exc:
        fail(str(exc), EXIT_CONFIG)
    try:
        yield cache
    finally:
        for warning in cache.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        cache.close()


def _one(cache: SemanticCache, prefix: str) -> str:
    try:
        ev.check_id(prefix.strip(), "cache entry id", listed_by="facilitair cache list")
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    ids = cache.resolve(prefix)
    if not ids:
        fail(f"no cache entry has an id starting with {prefix!r} (see: facilitair cache list)", EXIT_USAGE)
    if len(ids) > 1:
        fail(f"{prefix!r} matches {len(ids)} entries ({', '.join(ids[:5])}); type more of the id", EXIT_USAGE)
    return ids[0]


def _context_text(solution: CachedSolution) -> str:
    return ", ".join(f"{k}={v}" for k, v in solution.context.items()) or "—"


def _solution_dict(s: CachedSolution) -> dict[str, Any]:
    return {
        "id": s.id,
        "task": s.task,
        "context": s.context,
        "created_at": s.created_at.isoformat(),
        "hits": s.hits,
        "last_hit": s.last_hit.isoformat() if s.last_hit else None,
        "cost_usd": s.cost_usd,
        "duration_s": s.duration_s,
        "saved_usd": s.saved_usd,
        "models": s.models,
        "imported": s.imported,
    }


@click.group(name="cache")
def cache_group() -> None:
    """The semantic cache: past solutions, served again when task and context match."""


@cache_group.command(name="list")
@click.argument("query", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
def cache_list(query: str, as_json: bool) -> None:
    """Every cached solution (newest first), or those whose task or context has QUERY's words."""
    with _opened() as cache:
        found = cache.list(query)
    if as_json:
        click.echo(json.dumps([_solution_dict(s) for s in found], indent=2))
        return
    if not found:
        out.print("No cached solution matches." if query else "The cache is empty.")
        return
    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "Task", "Context", "Age", "Hits", "Saved"):
        table.add_column(column, overflow="fold" if column == "Task" else "ellipsis")
    for s in found:
        saved = money(s.saved_usd) if s.hits else "—"
        age = format_age(s.created_at, now) + (" (imported)" if s.imported else "")
        table.add_row(s.id, s.task, _context_text(s), age, str(s.hits), saved)
    out.print(table)


@cache_group.command(name="show")
@click.argument("entry")
@click.option("--json", "as_json", is_flag=True, help="The entry as JSON, its output included.")
def cache_show(entry: str, as_json: bool) -> None:
    """One cached solution: its task, context, origin and full output."""
    with _opened() as cache:
        solution = cache.get(_one(cache, entry))
    if solution is None:
        fail(f"cache entry {entry!r} has just expired or been removed", EXIT_USAGE)
    if as_json:
        click.echo(json.dumps({**_solution_dict(solution), "output": solution.output}, indent=2))
        return
    now = datetime.now(UTC)
    out.print(f"[bold]{escape(solution.task)}[/]")
    out.print(f"id {solution.id} · context: {escape(_context_text(solution))}")
    out.print(
        f"{'imported from a file, made' if solution.imported else 'cached'} "
        f"{format_age(solution.created_at, now)} · the original run took {clock(solution.duration_s)} "
        f"and cost {money(solution.cost_usd)} · {solution.hits} hits",
        soft_wrap=True,
    )
    if solution.models:
        out.print("models: " + ", ".join(f"{role} {model}" for role, model in solution.models.items()))
    out.print()
    out.print(Markdown(solution.output))


@cache_group.command(name="rm")
@click.argument("entry")
def cache_rm(entry: str) -> None:
    """Remove one cached solution."""
    with _opened() as cache:
        entry_id = _one(cache, entry)
        cache.delete(entry_id)
    out.print(f"Removed {entry_id}.")


@cache_group.command(name="clear")
@click.option("--yes", "-y", is_flag=True, help="Don't ask.")
def cache_clear(yes: bool) -> None:
    """Remove every cached solution and the statistics. A damaged cache is set aside instead."""
    from facilitair_tui.cache import CacheDamaged, CacheError
    from facilitair_tui.session import cache_dir

    if not yes and sys.stdin.isatty():
        click.confirm("Remove every cached solution?", abort=True, err=True)
    try:
        cache = _open()
    except CacheDamaged:
        # Keep the damaged files for inspection and start afresh; any other failure (the config,
        # permissions) is reported, and a healthy cache is never moved.
        directory = cache_dir()
        aside = directory.with_name(f"cache.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(directory, aside)
        out.print(f"The cache could not be opened; its files were moved to {aside}. A new one starts empty.")
        return
    except (CacheError, ConfigurationError) as exc:
        fail(str(exc), EXIT_CONFIG)
    with cache:
        count = cache.clear()
    out.print(f"Removed {count} cached solutions.")


@cache_group.command(name="stats")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def cache_stats(as_json: bool) -> None:
    """Entries, hit rate, and the cost and time the cache saved."""
    with _opened() as cache:
        stats = cache.stats()
    if as_json:
        click.echo(json.dumps(stats.as_dict(), indent=2))
        return
    rate = "—" if stats.hit_rate is None else f"{stats.hit_rate:.0%}"
    out.print(f"entries   {stats.entries}")
    out.print(f"lookups   {stats.lookups} ({stats.hits} hits, hit rate {rate})")
    out.print(f"offers    {stats.offers} ({stats.accepted} accepted, {stats.declined} declined)")
    out.print(f"saved     {money(stats.saved_usd)} and {clock(stats.saved_s)} of running time")
    out.print(f"size      {stats.size_bytes / 1e6:.1f} MB in {stats.directory}")


def _export_line(record: EntryRecord) -> bytes:
    data = msgspec.to_builtins(record)
    for key in ("format", "id", "profile", "expires_at", "session_id"):
        data.pop(key, None)
    data["created_at"] = datetime.fromtimestamp(record.created_at, UTC).isoformat()
    for synthesis in data.get("syntheses", []):
        for key in ("session_id", "seq", "t", "v", "type"):
            synthesis.pop(key, None)
    return json.dumps(data, ensure_ascii=False).encode() + b"\n"


@cache_group.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE when it exists.")
def cache_export(file: Path, force: bool) -> None:
    """Write every cached solution to FILE as JSON Lines ("-" for standard output)."""
    with _opened() as cache:
        records = list(cache.records())
    lines = b"".join(_export_line(r) for r in records)
    if str(file) == "-":
        sys.stdout.buffer.write(lines)
        return
    write_export(file, lines, force=force)
    err_console.print(f"Exported {len(records)} cached solutions to {file}.")


_OPTIONAL = frozenset(
    {"chunks", "models", "strategy", "workflow", "cost_usd", "duration_s", "input_tokens", "output_tokens"}
)


def _created_at(value: object) -> float | None:
    """The export's ISO 8601 time back to Unix time (None: the file has none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'created_at' must be an ISO 8601 time")
    try:
        made = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'created_at' is not an ISO 8601 time: {value!r}") from None
    return (made if made.tzinfo else made.replace(tzinfo=UTC)).timestamp()


def _import_fields(data: Any) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    task, context, output = data.get("task"), data.get("context", {}), data.get("output")
    if not isinstance(task, str) or not task.strip():
        raise ValueError("'task' must be a non-empty string")
    if not isinstance(context, dict):
        raise ValueError("'context' must be an object of KEY: VALUE")
    if not isinstance(output, str) or not output.strip():
        raise ValueError("'output' must be a non-empty string")
    extra = {key: data[key] for key in _OPTIONAL if data.get(key) is not None}
    extra["created_at"] = _created_at(data.get("created_at"))
    if "syntheses" in data:
        syntheses = [{**s, "session_id": "", "type": "synthesis"} for s in data["syntheses"] or []]
        extra["syntheses"] = msgspec.convert(syntheses, list[ev.Synthesis])
    return task, context, output, extra


@cache_group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def cache_import(file: Path) -> None:
    """Add the solutions in FILE (JSON Lines, as written by export). Bad lines are skipped and named."""
    from facilitair_tui.cache import CacheError

    try:
        lines = sys.stdin.buffer.read().splitlines() if str(file) == "-" else file.read_bytes().splitlines()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE)
    imported, problems = 0, []
    with _opened() as cache, cache.batch():
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                task, context, output, extra = _import_fields(json.loads(line))
                cache.put(task, context, output, **extra, imported=True)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not valid JSON ({exc.msg})")
            except (ValueError, TypeError, msgspec.ValidationError) as exc:
                problems.append(f"line {number}: {exc}")
            except CacheError as exc:
                fail(f"{exc} (imported {imported} before line {number})", EXIT_CONFIG)
            else:
                imported += 1
    for problem in problems[:20]:
        err_console.print(f"[yellow]skipped[/] {escape(problem)}", soft_wrap=True)
    if len(problems) > 20:
        err_console.print(f"[yellow]… and {len(problems) - 20} more skipped lines[/]")
    out.print(f"Imported {imported} cached solutions" + (f", skipped {len(problems)}." if problems else "."))
    if problems and not imported:
        sys.exit(EXIT_USAGE)


@cache_group.command(name="lookup")
@click.argument("task")
@click.option("--context", "-c", "context", multiple=True, metavar="KEY=VALUE", help="Context (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="The answer as JSON.")
def cache_lookup(task: str, context: tuple[str, ...], as_json: bool) -> None:
    """Would TASK in this context be served from the cache, offered, or missed, and why? Runs
    nothing, counts nothing."""
    try:
        parsed = parse_context(context)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    with _opened() as cache:
        decision = cache.explain(task, parsed)
    if as_json:
        click.echo(json.dumps(decision.as_dict(), indent=2))
        return
    if decision.match is not None:
        word = "[bold green]serve[/]" if decision.hit else "[bold yellow]offer[/] (a session would ask you)"
        out.print(f"{word} {decision.entry_id}: {escape(decision.match.solution.task)}")
        out.print(f"why: {escape(decision.match.matched_on)}")
    else:
        out.print(f"[bold]miss[/]: {escape(decision.reason)}")
