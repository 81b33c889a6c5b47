"""TUI throughput: how fast the Textual front end can show streamed tokens, and how it reacts.

Everything runs headless (``App.run_test(size=(160, 48))``): the headless driver does not write
to a terminal, but Textual still lays out and composits every frame, which is the work measured.
A frame is one call of ``Screen._compositor_refresh`` on the current screen (the update timer
and the layout refresh both end there); its interval is the time between two frame ends.

1. Frames while streaming. A rate-controlled provider emits tokens at a target aggregate rate,
   split evenly over the 3 roles of ``tests/data/scripted_workflow.toml`` streaming at once
   (the roles' phase of a chunk: the synthesizer runs only after them, so it never streams
   here). Per rate: p50/p95 frame interval, mean frame work, and the achieved rate (tokens the
   panes were given per second); then, for each app, the highest rate with p95 <= 17 ms.
   Target: >= 2,000 tok/s with p95 <= 17 ms.
2. Pause latency at the embedded model's pace (150 tok/s) and under load (2,000 tok/s): ``p``
   pressed through the pilot at random moments, 20 samples; from just before the key press to
   the first frame drawn once the panes' text has stopped growing and the state shown is
   "paused" (a task of its own polls the app every millisecond meanwhile). Later frames that
   only move a clock are not token flow and are not counted. Target: p99 <= 50 ms.
3. Start-up: a fresh process per run, from spawn to the first frame of the main screen; and
   the import time of ``facilitair_tui.tui.app``. Target: first frame <= 1 s.

Both apps run with the frame cap facilitair-tui sets (``TEXTUAL_FPS`` 90 unless set; Textual's
own default is 60) and the garbage-collector settings it uses.

Baseline, measured in the same run with the same streams and the same probes: a bare Textual
app that appends every token to one ``Log`` widget (pause: a flag, tokens held while it is set),
and for start-up a bare ``textual.app.App`` / ``import textual.app``.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

from facilitair_tui.tui.main import frame_rate_headroom

frame_rate_headroom()  # before Textual is imported, as facilitair-tui does

import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Log, Static

from facilitair_tui.core.orchestrator import Collaboration, SessionSpec
from facilitair_tui.core.provider import ChatRequest, ModelRef, StreamItem, TextDelta
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.tui.app import FacilitairApp, tune_gc_for_streaming

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = load_workflow(ROOT / "tests" / "data" / "scripted_workflow.toml")
STREAMS = len(WORKFLOW.roles)
SIZE = (160, 48)
RATES = tuple(int(r) for r in sys.argv[1:]) or (250, 500, 1000, 2000, 4000, 8000)
# The embedded model's real pace (~140 tok/s on this machine) and the target load.
PAUSE_RATES = (150, 2000)
PAUSE_SAMPLES = 20
WARMUP_S = 0.4
WINDOW_S = 1.5
SETTLE_S = 0.12  # no text growth for this long after a pause means the text has stopped
STARTUP_RUNS = 5
FRAME_TARGET_MS = 17.0
MAX_BURST = 50  # tokens one stream may emit per wake-up when it is behind schedule
# Words of a plausible answer; a blank line now and then so the Markdown has paragraphs.
ANSWER = (
    "The API issues a short-lived JWT access token and a refresh token. Passwords are hashed with "
    "argon2, tokens are signed with HS256 and rotated on every refresh; revoked tokens go to a deny "
    "list keyed by jti.\n\n"
)
WORDS = tuple(ANSWER.split(" "))


# ---------------------------------------------------------------------------- measuring frames


class FrameRecorder:
    """Wraps ``Screen._compositor_refresh`` once; records when each frame of the current screen ends."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.work: list[float] = []
        original = Screen._compositor_refresh
        recorder = self

        def wrapped(screen: Screen[Any]) -> None:
            start = time.perf_counter()
            original(screen)
            end = time.perf_counter()
            if screen is screen.app.screen:
                recorder.ends.append(end)
                recorder.work.append(end - start)

        Screen._compositor_refresh = wrapped  # type: ignore[method-assign,assignment]

    def reset(self) -> None:
        self.ends.clear()
        self.work.clear()


FRAMES = FrameRecorder()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------- the token source


class RateProvider:
    """Every call streams forever at ``rate / streams`` tokens per second, catching up in bursts
    (at most ``MAX_BURST`` tokens per wake-up) when the event loop was late."""

    name = "bench"

    def __init__(self, rate: float, streams: int = STREAMS) -> None:
        self.per_stream = rate / streams
        self.sent = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        start = time.perf_counter()
        n = 0
        while True:
            due = int((time.perf_counter() - start) * self.per_stream) + 1
            if due - n > MAX_BURST:
                # The loop fell far behind: forgive the debt instead of flooding it (the achieved
                # rate then shows the shortfall).
                start += (due - n - MAX_BURST) / self.per_stream
                due = n + MAX_BURST
            while n < due:
                yield TextDelta(WORDS[n % len(WORDS)] + " ")
                n += 1
                self.sent += 1
            await asyncio.sleep(max(0.0, n / self.per_stream - (time.perf_counter() - start)))

    async def aclose(self) -> None:
        return None

    def resolve(self, ref: ModelRef) -> RateProvider:
        return self


# ---------------------------------------------------------------------------- the two subjects


class Subject:
    """What a measurement needs from an app: its tokens and text so far, and its pause state."""

    app: App[Any]

    def delivered(self) -> int:
        raise NotImplementedError

    def shown_chars(self) -> int:
        raise NotImplementedError

    def paused(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class FacilitairSubject(Subject):
    def __init__(self, rate: float) -> None:
        spec = SessionSpec(task="Build a REST API with JWT auth", workflow=WORKFLOW, strategy="test")
        self.collaboration = Collaboration(spec, RateProvider(rate))
        self.facilitair = FacilitairApp(self.collaboration, live_clock=False)
        self.app = self.facilitair

    def delivered(self) -> int:
        main = self.facilitair.main_screen
        if main is None:
            return 0
        return sum(main.view.agents[name].streamed for name in main.view.roles)

    def shown_chars(self) -> int:
        main = self.facilitair.main_screen
        return 0 if main is None else sum(len(pane.rendered_source) for pane in main.panes)

    def paused(self) -> bool:
        main = self.facilitair.main_screen
        return main is not None and main.view.shown_state == "paused"

    def stop(self) -> None:
        self.collaboration.stop()


class BareLogApp(App[None]):
    """The cheapest possible UI for the same streams: every token appended to one Log."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("p", "toggle_pause", "Pause", id="pause")]

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.provider = RateProvider(rate)
        self.delivered = 0
        self.chars = 0
        self.is_paused = False
        self._held: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("running", id="state")
        yield Log(id="log")

    def on_mount(self) -> None:
        for index in range(STREAMS):
            self.run_worker(self._consume(index), group="streams")

    async def _consume(self, index: int) -> None:
        log = self.query_one(Log)
        request = ChatRequest(model=f"agent-{index}", messages=(), max_tokens=1 << 30)
        async for item in self.provider.stream(request):
            if isinstance(item, TextDelta):
                self.delivered += 1
                if self.is_paused:
                    self._held.append(item.text)
                else:
                    log.write(item.text)
                    self.chars += len(item.text)

    def action_toggle_pause(self) -> None:
        self.is_paused = not self.is_paused
        self.query_one("#state", Static).update("paused" if self.is_paused else "running")
        if not self.is_paused and self._held:
            text = "".join(self._held)
            self._held.clear()
            self.query_one(Log).write(text)
            self.chars += len(text)


class BareSubject(Subject):
    def __init__(self, rate: float) -> None:
        self.bare = BareLogApp(rate)
        self.app = self.bare

    def delivered(self) -> int:
        return self.bare.delivered

    def shown_chars(self) -> int:
        return self.bare.chars

    def paused(self) -> bool:
        return self.bare.is_paused

    def stop(self) -> None:
        self.bare.workers.cancel_group(self.bare, "streams")


Factory = Callable[[float], Subject]


# ---------------------------------------------------------------------------- 1. frames while streaming


@dataclass
class StreamResult:
    p50_ms: float
    p95_ms: float
    work_ms: float
    achieved: float
    frames: int


async def wait_for_tokens(pilot: Pilot[Any], subject: Subject) -> None:
    for _ in range(2000):
        if subject.delivered() > 0:
            return
        await pilot.pause(0.005)
    raise RuntimeError("no token reached the app in 10 s")


async def measure_stream(factory: Factory, rate: float) -> StreamResult:
    subject = factory(rate)
    async with subject.app.run_test(size=SIZE) as pilot:
        await wait_for_tokens(pilot, subject)
        await asyncio.sleep(WARMUP_S)
        FRAMES.reset()
        start, tokens0 = time.perf_counter(), subject.delivered()
        await asyncio.sleep(WINDOW_S)
        elapsed, tokens = time.perf_counter() - start, subject.delivered() - tokens0
        ends, work = list(FRAMES.ends), list(FRAMES.work)
        subject.stop()
    intervals = [(b - a) * 1e3 for a, b in itertools.pairwise(ends)] or [float("nan")]
    return StreamResult(
        p50_ms=pct(intervals, 0.5),
        p95_ms=pct(intervals, 0.95),
        work_ms=statistics.fmean(work) * 1e3 if work else float("nan"),
        achieved=tokens / elapsed,
        frames=len(ends),
    )


# ---------------------------------------------------------------------------- 2. pause latency


async def pause_once(pilot: Pilot[Any], subject: Subject) -> float:
    """One press of ``p``: milliseconds until the first frame that shows both the paused state
    and the last text that grew. The screen is watched from a task of its own while the pilot
    presses (``Pilot.press`` returns only once the app is idle, which under a stream is later)."""
    FRAMES.reset()
    pressed = time.perf_counter()
    watch = asyncio.create_task(watch_until_still(subject, pressed))
    await pilot.press("p")
    last_growth, paused_at = await watch
    settled = max(last_growth, paused_at)
    shown = min((t for t in FRAMES.ends if t >= settled), default=settled)
    return (shown - pressed) * 1e3


async def watch_until_still(subject: Subject, pressed: float) -> tuple[float, float]:
    """(last growth of the shown text, moment the paused state was seen), polling every 1 ms."""
    last_size, last_growth, paused_at = subject.shown_chars(), pressed, None
    while True:
        now = time.perf_counter()
        size = subject.shown_chars()
        if size != last_size:
            last_size, last_growth = size, now
        if paused_at is None and subject.paused():
            paused_at = now
        if paused_at is not None and now - max(last_growth, paused_at) >= SETTLE_S:
            return last_growth, paused_at
        if now - pressed > 5.0:
            raise RuntimeError("the text never stopped growing after p")
        await asyncio.sleep(0.001)


async def measure_pause(factory: Factory, rate: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    subject = factory(rate)
    samples = []
    async with subject.app.run_test(size=SIZE) as pilot:
        await wait_for_tokens(pilot, subject)
        await asyncio.sleep(WARMUP_S)
        for _ in range(PAUSE_SAMPLES):
            await asyncio.sleep(rng.uniform(0.05, 0.25))
            samples.append(await pause_once(pilot, subject))
            await pilot.press("p")  # resume; the held text follows
        subject.stop()
    return samples


# ---------------------------------------------------------------------------- 3. start-up


def first_frame_s(kind: str) -> tuple[float, float]:
    """(spawn -> first frame, script top -> first frame) of one fresh process."""
    spawned = time.time()
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "first_frame_probe.py"), kind],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return float(report["wall"]) - spawned, float(report["since_script"])


def import_s(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(out.stdout.strip())


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


# ---------------------------------------------------------------------------- report


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}x" if base > 0 else "n/a"


async def main() -> None:
    began = time.perf_counter()
    tune_gc_for_streaming()  # as facilitair-tui does before its app runs
    print(
        f"== Frames while streaming: {STREAMS} concurrent role streams (scripted workflow, roles' "
        f"phase), headless {SIZE[0]}x{SIZE[1]}, {WINDOW_S:.1f} s per rate =="
    )
    print(
        "  frame = one compositor refresh of the current screen; interval between frame ends;"
        f" frame cap TEXTUAL_FPS={os.environ.get('TEXTUAL_FPS')}"
    )
    print(
        f"  {'target':>8} | {'bare Log: p50':>13} {'p95':>6} {'work':>6} {'tok/s':>7} |"
        f" {'Facilitair: p50':>15} {'p95':>6} {'work':>6} {'tok/s':>7} | {'p95 ratio':>9}"
    )
    best: dict[str, int | None] = {"bare Log app": None, "Facilitair": None}
    for rate in RATES:
        base = await measure_stream(BareSubject, rate)
        ours = await measure_stream(FacilitairSubject, rate)
        for name, result in (("bare Log app", base), ("Facilitair", ours)):
            if result.p95_ms <= FRAME_TARGET_MS:
                best[name] = rate
        print(
            f"  {rate:>8,} | {base.p50_ms:>10.1f} ms {base.p95_ms:>6.1f} {base.work_ms:>6.2f} "
            f"{base.achieved:>7,.0f} | {ours.p50_ms:>12.1f} ms {ours.p95_ms:>6.1f} {ours.work_ms:>6.2f} "
            f"{ours.achieved:>7,.0f} | {ratio(ours.p95_ms, base.p95_ms):>9}"
        )
    print(f"  highest target rate with p95 <= {FRAME_TARGET_MS:.0f} ms:")
    for name, rate_met in best.items():
        met = f"{rate_met:,} tok/s" if rate_met is not None else f"none of {RATES[0]:,}..{RATES[-1]:,} tok/s"
        print(f"    {name + ':':<14} {met}")
    print("  (target: >= 2,000 tok/s at p95 <= 17 ms; 'work' = mean ms inside one compositor refresh)")

    print("== Pause latency: key p -> first frame with the text stopped and 'paused' shown ==")
    for rate in PAUSE_RATES:
        base_pause = await measure_pause(BareSubject, rate, seed=1)
        ours_pause = await measure_pause(FacilitairSubject, rate, seed=1)
        print(f"  at {rate:,} tok/s:")
        for label, samples in (("bare Log app", base_pause), ("Facilitair", ours_pause)):
            print(
                f"    {label + ':':<14} p50 {pct(samples, 0.5):6.1f} ms  p99 {pct(samples, 0.99):6.1f} ms"
                f"  (n={len(samples)})"
            )
        print(f"    p99 ratio {ratio(pct(ours_pause, 0.99), pct(base_pause, 0.99))}")
    print("  target p99 <= 50 ms (with 20 samples, p99 is the largest one)")

    print(f"== Start-up, fresh process each, median of {STARTUP_RUNS} ==")
    for kind, label in (("bare", "bare textual App"), ("app", "FacilitairApp")):
        runs = [first_frame_s(kind) for _ in range(STARTUP_RUNS)]
        spawn = statistics.median(r[0] for r in runs)
        script = statistics.median(r[1] for r in runs)
        print(
            f"  {label + ':':<18} spawn -> first frame {spawn * 1e3:7.1f} ms"
            f"  (script top -> {script * 1e3:6.1f} ms)"
        )
        if kind == "bare":
            bare_spawn = spawn
        else:
            print(f"  ratio {ratio(spawn, bare_spawn)}; target first frame <= 1 s")
    textual_import = median_of(STARTUP_RUNS, lambda: import_s("textual.app"))
    ours_import = median_of(STARTUP_RUNS, lambda: import_s("facilitair_tui.tui.app"))
    print(f"  import textual.app:        {textual_import * 1e3:7.1f} ms")
    print(
        f"  import facilitair_tui.tui.app: {ours_import * 1e3:7.1f} ms"
        f"  (ratio {ratio(ours_import, textual_import)})"
    )
    print(f"(whole benchmark: {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
