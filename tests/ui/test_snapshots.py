"""How the screens look, as SVG snapshots (pytest-textual-snapshot).

Each case holds a scripted session at a fixed point with the gate (never a sleep), runs on a
fake clock (so every time shown is the same on every run) and turns the live clock off.
Update the baselines with ``pytest tests/ui/test_snapshots.py --snapshot-update`` and look at
the report before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from facilitair_tui.providers.scripted import Reply
from facilitair_tui.tui.app import FacilitairApp
from facilitair_tui.tui.screens.error import ErrorScreen

from .support import (
    GatedProvider,
    Script,
    agent_deltas,
    collaboration,
    hold_at,
    hold_from_chunk,
    wait_until,
)

SnapCompare = Callable[..., bool]


def _app(provider: GatedProvider) -> FacilitairApp:
    return FacilitairApp(collaboration(provider), live_clock=False)


def _settled(app: FacilitairApp, provider: GatedProvider, held: int) -> Callable[[], bool]:
    """The gate holds ``held`` calls and every pane shows all the text it was given."""

    def check() -> bool:
        screen = app.main_screen
        if screen is None or provider.held != held:
            return False
        return all(pane.rendered_source == pane.text for pane in screen.panes)

    return check


def _mid_run() -> tuple[FacilitairApp, Callable[[Pilot[Any]], Awaitable[None]]]:
    # The architect is held after 5 tokens and the coder after 2, so the reviewer (who needs 3
    # of each) is still reading them and the synthesizer waits.
    provider = GatedProvider(Script(), hold_at({("architect", 1): 5, ("coder", 1): 2}))
    app = _app(provider)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, _settled(app, provider, held=2), "the session is held mid-chunk")

    return app, run_before


def test_main_screen_mid_run(snap_compare: SnapCompare) -> None:
    app, run_before = _mid_run()
    assert snap_compare(app, terminal_size=(200, 50), run_before=run_before)


def test_main_screen_mid_run_80x24(snap_compare: SnapCompare) -> None:
    app, run_before = _mid_run()
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_synthesis_panel_after_chunk_1(snap_compare: SnapCompare) -> None:
    provider = GatedProvider(Script(), hold_from_chunk(2))
    app = _app(provider)

    async def run_before(pilot: Pilot[Any]) -> None:
        def synthesis_shown() -> bool:
            screen = app.main_screen
            return (
                screen is not None and screen.view.chunk == 2 and bool(screen.synthesis_panel.merged_source)
            )

        await wait_until(pilot, synthesis_shown, "chunk 1's synthesis is shown")
        await wait_until(pilot, _settled(app, provider, held=1), "chunk 2's architect is held")

    assert snap_compare(app, terminal_size=(200, 50), run_before=run_before)


def test_synthesis_tab_after_chunk_1_80x24(snap_compare: SnapCompare) -> None:
    provider = GatedProvider(Script(), hold_from_chunk(2))
    app = _app(provider)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, _settled(app, provider, held=1), "chunk 2's architect is held")
        screen = app.main_screen
        assert screen is not None
        screen.agent_tabs.active = "tab-synthesis"

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_error_state_a_failed_agent_then_a_session_that_cannot_go_on(snap_compare: SnapCompare) -> None:
    # The coder fails after 2 tokens in chunk 1, the others go on; in chunk 2 no one writes.
    script = Script(replies={("coder", 1): Reply(agent_deltas("coder", 1)[:4], fail_after=2)})
    for agent in ("architect", "coder", "reviewer"):
        script.replies[agent, 2] = Reply(fail_after=0)
    app = _app(GatedProvider(script, hold_from_chunk(3)))

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen), "the error screen shows")

    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


def test_help_screen(snap_compare: SnapCompare) -> None:
    app, run_before = _mid_run()

    async def open_help(pilot: Pilot[Any]) -> None:
        await run_before(pilot)
        await pilot.press("f1")

    assert snap_compare(app, terminal_size=(140, 40), run_before=open_help)
