"""The trace waterfall: a live session's and a recorded one's, driven by Pilot."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from facilitair_tui.core import events as ev
from facilitair_tui.traces.timeline import Timeline
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.history import HistoryScreen
from facilitair_tui.tui.screens.waterfall import WaterfallScreen

from .library_support import ScreenApp, recorded_live_app
from .support import ROLES, SYNTH, finished_live


def labels(screen: WaterfallScreen) -> list[str]:
    table = screen.table
    return [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)]


def detail(screen: WaterfallScreen) -> str:
    return str(screen.query_one("#waterfall-detail", Static).render())


async def test_t_shows_the_live_sessions_waterfall_and_the_same_one_from_the_history(tmp_path: Path) -> None:
    app = recorded_live_app(tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        live = await finished_live(pilot, app)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, WaterfallScreen)
        rows = labels(screen)
        assert rows[0].startswith("Build a URL shortener")
        assert [r for r in rows if r[0].isdigit()] == [
            "1. Requirements",
            "2. Architecture",
            "3. Implementation",
            "4. Review",
        ]
        for role in ROLES:
            assert rows.count(role) == 4
        assert rows.count(f"synthesis ({SYNTH})") == 4
        assert rows.count(f"first · {ROLES[0]}") == 4  # one request per call, each shown
        # Highlighting a model request shows its model, tokens, cost and status.
        row = rows.index(f"first · {ROLES[1]}")
        screen.table.move_cursor(row=row)
        await pilot.pause()
        said = detail(screen)
        assert "model scripted:coder" in said and "tokens " in said and " out" in said and "·  ok" in said
        await pilot.press("escape")
        assert app.screen is live

        await pilot.press("h")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("t")
        recorded = app.screen
        assert isinstance(recorded, WaterfallScreen)
        assert labels(recorded) == rows  # built from the store's events: the same bars
        await pilot.press("escape")
        assert isinstance(app.screen, HistoryScreen)


def _waits_session() -> list[ev.Event]:
    sid = "waits"
    return [
        ev.SessionStarted(session_id=sid, t=0.0, task="Waits", context={}, strategy="s", workflow="w"),
        ev.ChunkStarted(session_id=sid, t=0.0, chunk=1, title="Plan", total=1),
        ev.AgentStarted(session_id=sid, t=0.1, agent="architect", chunk=1, model="openai:m"),
        ev.AgentStarted(session_id=sid, t=1.0, agent="coder", chunk=1, model="openai:m", reads=["architect"]),
        ev.ModelAttempt(
            session_id=sid, t=0.6, agent="architect", chunk=1, attempt=1, model="openai:m", kind="first",
            started_t=0.1, queued_ms=200.0, duration_ms=300.0, outcome="failed", error="rate_limit",
            message="rate limited (HTTP 429)", wait_ms=2000.0, retry_after_s=2.0,
        ),
        ev.Paused(session_id=sid, t=1.5),
        ev.Resumed(session_id=sid, t=2.0),
        ev.ModelAttempt(
            session_id=sid, t=3.5, agent="architect", chunk=1, attempt=2, model="openai:m", kind="retry",
            started_t=2.6, first_token_ms=150.0, duration_ms=900.0, input_tokens=40, output_tokens=9,
            cost_usd=0.001, outcome="ok", stop_reason="end",
        ),
        ev.AgentFinished(
            session_id=sid, t=3.5, agent="architect", chunk=1, input_tokens=40, output_tokens=9,
            latency_ms=3400.0, cost_usd=0.001, status="done",
        ),
        ev.SessionFinished(
            session_id=sid, t=4.0, status="stopped", output="", input_tokens=40, output_tokens=9,
            cost_usd=0.001, duration_s=4.0,
        ),
    ]  # fmt: skip


async def test_waits_are_drawn_as_waits_and_say_what_they_waited_for() -> None:
    app = ScreenApp(lambda: WaterfallScreen(Timeline.of(_waits_session())))
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, WaterfallScreen)
        rows = labels(screen)
        for wait in ("queued at the provider", "retry wait (Retry-After 2s)", "paused by you",
                     "coder waits for architect"):  # fmt: skip
            assert wait in rows, rows
        row = rows.index("retry wait (Retry-After 2s)")
        bar = screen.table.get_row_at(row)[1]
        assert isinstance(bar, Text) and "░" in bar.plain and "█" not in bar.plain
        screen.table.move_cursor(row=row)
        await pilot.pause()
        assert "at least the server's Retry-After" in detail(screen)
        screen.table.move_cursor(row=rows.index("first · m"))
        await pilot.pause()
        assert "failed (rate_limit): rate limited (HTTP 429)" in detail(screen)
        # The coder never finished: the session's end closes its bar as interrupted.
        screen.table.move_cursor(row=rows.index("coder"))
        await pilot.pause()
        assert "coder  ·  interrupted" in detail(screen)


async def test_an_empty_timeline_says_the_bars_come_with_the_session() -> None:
    app = ScreenApp(lambda: WaterfallScreen(Timeline()))
    async with app.run_test(size=(100, 30)):
        screen = app.screen
        assert isinstance(screen, WaterfallScreen)
        assert screen.table.row_count == 0
        assert "Nothing recorded yet" in detail(screen)


def test_the_app_binds_t_to_the_waterfall() -> None:
    assert any(getattr(b, "id", None) == "waterfall" for b in FacilitairApp.BINDINGS)


async def test_a_live_tui_session_is_traced_when_tracing_is_on(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from facilitair_tui.traces.export import Tracing
    from facilitair_tui.traces.settings import TraceConfig

    exporter = InMemorySpanExporter()
    tracing = Tracing(TraceConfig(endpoint="http://unused:4318/v1/traces"), exporter)
    app = recorded_live_app(tmp_path, traced=tracing.wrap)
    async with app.run_test(size=(120, 40)) as pilot:
        await finished_live(pilot, app)
    tracing.close()
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "session" and root.attributes is not None
    assert root.attributes["facilitair.status"] == "done"
    assert sum(1 for s in spans if s.name.startswith("invoke_agent ")) == 16
    assert len({s.context.trace_id for s in spans if s.context is not None}) == 1
