"""Child process of ``tui_throughput.py``: start an app headless and report its first frame.

``python bench/first_frame_probe.py app|bare`` prints one JSON line: the wall-clock time
(``time.time()``) of the first frame the compositor produced for the app's first real screen,
and the seconds from the top of this script to that frame. The parent notes ``time.time()``
before it spawns the process, so it can also count the interpreter's own start-up.

``app`` is ``FacilitairApp`` on the scripted workflow with a provider that never answers (the
first frame is the main screen, agents waiting); ``bare`` is a plain ``textual.app.App``.
"""

from __future__ import annotations

import time

SCRIPT_START = time.perf_counter()

import asyncio  # noqa: E402 - after the clock on purpose: imports are part of what we time
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from textual.app import App  # noqa: E402
from textual.screen import Screen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = (160, 48)
first_frame: list[tuple[float, float]] = []


def hook_first_frame(is_target: Any) -> None:
    original = Screen._compositor_refresh

    def wrapped(screen: Screen[Any]) -> None:
        original(screen)
        if not first_frame and screen is screen.app.screen and is_target(screen):
            first_frame.append((time.time(), time.perf_counter() - SCRIPT_START))

    Screen._compositor_refresh = wrapped  # type: ignore[method-assign,assignment]


class SilentProvider:
    """Never yields: the agents wait, so the first frame is the main screen at rest."""

    name = "bench"

    async def stream(self, request: object) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover - unreachable; makes this an async generator

    async def aclose(self) -> None:
        return None

    def resolve(self, ref: object) -> SilentProvider:
        return self


async def run(kind: str) -> None:
    app: App[Any]
    stop = None
    if kind == "app":
        from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
        from facilitair_tui.core.workflow import load_workflow
        from facilitair_tui.tui.app import FacilitairApp
        from facilitair_tui.tui.screens.main import MainScreen

        workflow = load_workflow(ROOT / "tests" / "data" / "scripted_workflow.toml")
        spec = SessionSpec(task="Build a REST API with JWT auth", workflow=workflow, strategy="test")
        collaboration = Collaboration(spec, SilentProvider())
        stop = collaboration.stop
        hook_first_frame(lambda screen: isinstance(screen, MainScreen))
        app = FacilitairApp(collaboration, live_clock=False)
    else:
        hook_first_frame(lambda screen: True)
        app = App()
    async with app.run_test(size=SIZE) as pilot:
        while not first_frame:
            await pilot.pause(0.001)
        if stop is not None:
            stop()
    wall, since_script = first_frame[0]
    print(json.dumps({"wall": wall, "since_script": since_script}))


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
