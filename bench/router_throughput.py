"""Token router: 8 agent streams fanned in to one consumer, native router against asyncio.Queue.

Both sides do the same job on the same streams, in the same run: every delta is kept in its
agent's transcript (what the agents that read it take) and reaches one consumer in push order,
through a buffer of ``CAPACITY`` deltas that makes the producers wait when it is full.

- baseline: an ``asyncio.Queue(maxsize=CAPACITY)`` of ``(agent, text, sent)`` items, transcripts
  as Python lists; the consumer takes everything queued at each wake-up.
- router: the native ``StreamRouter(capacity=CAPACITY)`` as the orchestrator drives it: ``push``
  per delta (it says when to wait), the consumer woken by a future and taking everything with
  one ``drain`` (runs of one agent come merged, with their sequence numbers).

1. Throughput: the 8 streams push as fast as they can, ``BURST`` deltas per turn of the event
   loop (a network read seldom brings a single token). Aggregate deltas per second, median of
   ``RUNS`` interleaved runs. Target: at least 1,000,000 tok/s.
2. Added latency: the 8 streams at a steady pace (a delta per stream every millisecond), from
   the push to the consumer holding the delta: p50 and p99. Target: p99 at most 1 ms.
3. UI frames: the router with a 16 ms frame policy (a drain at most every 16 ms; the consumer
   sleeps until it is due), at the same pace: drains per second, deltas per drain, and the
   latency, which includes the wait for the next frame by design.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable

from facilitair_tui._native import StreamRouter

STREAMS = 8
CAPACITY = 1024
BURST = 16
DELTAS_PER_STREAM = 25_000  # throughput runs
PACED_PER_STREAM = 1_000  # latency runs, one per millisecond
PACE_S = 0.001
RUNS = 5
FRAME_S = 0.016
FRAME_DELTAS = 512
AGENTS = tuple(f"agent{i}" for i in range(STREAMS))
# Token-sized pieces of text, some multibyte, a different rotation per stream.
PIECES = (
    "The",
    " API",
    " issues",
    " a",
    " short",
    "-lived",
    " JWT",
    ";",
    " argon2",
    " hashes",
    " 日本",
    " ✓",
)

clock = time.perf_counter_ns


def stream_texts(index: int, n: int) -> list[str]:
    return [PIECES[(index + i) % len(PIECES)] for i in range(n)]


class QueueFanIn:
    """The baseline: one bounded asyncio.Queue, Python transcripts."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue(maxsize=CAPACITY)
        self.transcripts: dict[str, list[str]] = {agent: [] for agent in AGENTS}

    async def produce(self, agent: str, texts: list[str], pace_s: float) -> None:
        queue, parts = self.queue, self.transcripts[agent]
        for i, text in enumerate(texts, start=1):
            parts.append(text)
            item = (agent, text, clock())
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                await queue.put(item)
            if i % BURST == 0 or pace_s:
                await asyncio.sleep(pace_s)

    async def consume(self, total: int, latencies: list[int]) -> int:
        queue = self.queue
        received = wakeups = 0
        while received < total:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            now = clock()
            wakeups += 1
            latencies.extend(now - sent for _agent, _text, sent in items)
            received += len(items)
        return wakeups


class RouterFanIn:
    """The native router, driven the way the orchestrator drives it."""

    def __init__(self, frame_s: float = 0.0) -> None:
        self.router = StreamRouter(capacity=CAPACITY, frame_s=frame_s, frame_deltas=FRAME_DELTAS)
        self.sent: list[int] = []  # by sequence number
        self.waiter: asyncio.Future[None] | None = None
        self.room = asyncio.Event()
        self.room.set()

    async def produce(self, agent: str, texts: list[str], pace_s: float) -> None:
        router, sent, room = self.router, self.sent, self.room
        for i, text in enumerate(texts, start=1):
            sent.append(clock())
            has_room = router.push(agent, text)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            while not has_room and not router.has_room():
                room.clear()
                await room.wait()
            if i % BURST == 0 or pace_s:
                await asyncio.sleep(pace_s)

    async def _wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def consume(self, total: int, latencies: list[int]) -> int:
        router, sent = self.router, self.sent
        paced = router.frame_policy[0] > 0
        received = drains = 0
        while received < total:
            if paced and (due := router.due_in()):  # not yet due: sleep, not woken by every push
                await asyncio.sleep(due)
                continue
            frames = router.drain()
            if not frames:
                await self._wait()
                continue
            now = clock()
            drains += 1
            for _agent, _text, seq, count, _t in frames:
                latencies.extend(now - s for s in sent[seq : seq + count])
                received += count
            if not self.room.is_set() and router.has_room():
                self.room.set()
        return drains


FanIn = QueueFanIn | RouterFanIn


async def run(fan_in: FanIn, per_stream: int, pace_s: float) -> tuple[float, list[int], int]:
    """Seconds for all deltas to reach the consumer, their latencies (ns), consumer wake-ups."""
    total = per_stream * STREAMS
    latencies: list[int] = []
    texts = [stream_texts(i, per_stream) for i in range(STREAMS)]
    gc.collect()
    start = time.perf_counter()
    consumer = asyncio.create_task(fan_in.consume(total, latencies))
    await asyncio.gather(*(fan_in.produce(agent, texts[i], pace_s) for i, agent in enumerate(AGENTS)))
    wakeups = await consumer
    return time.perf_counter() - start, latencies, wakeups


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def throughput(make: Callable[[], FanIn]) -> float:
    seconds, _, _ = await run(make(), DELTAS_PER_STREAM, 0.0)
    return DELTAS_PER_STREAM * STREAMS / seconds


async def main() -> None:
    for _ in range(2):  # warm up
        await run(QueueFanIn(), 2_000, 0.0)
        await run(RouterFanIn(), 2_000, 0.0)
    rates: dict[str, list[float]] = {"queue": [], "router": []}
    for _ in range(RUNS):  # interleaved so machine noise hits both alike
        rates["queue"].append(await throughput(QueueFanIn))
        rates["router"].append(await throughput(RouterFanIn))
    base_rate, our_rate = (statistics.median(rates[k]) for k in ("queue", "router"))
    _, base_lat, _ = await run(QueueFanIn(), PACED_PER_STREAM, PACE_S)
    _, our_lat, _ = await run(RouterFanIn(), PACED_PER_STREAM, PACE_S)
    seconds, ui_lat, drains = await run(RouterFanIn(FRAME_S), PACED_PER_STREAM, PACE_S)

    n = DELTAS_PER_STREAM * STREAMS
    print(f"== Token router: {STREAMS} streams -> 1 consumer, buffer {CAPACITY}, {n:,} deltas per run ==")
    print(f"   throughput: median of {RUNS} runs, {BURST} deltas per stream per loop turn")
    print(f"   latency: push -> consumer, {STREAMS} streams x 1 delta/ms, {len(our_lat):,} deltas")
    rows = (("asyncio.Queue fan-in", base_rate, base_lat), ("StreamRouter", our_rate, our_lat))
    print(f"  {'':22} {'tok/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for name, rate, lat in rows:
        print(f"  {name:22} {rate:>11,.0f} {pct(lat, 0.5):>8.3f} {pct(lat, 0.99):>8.3f}")
    p99_ratio = pct(our_lat, 0.99) / max(pct(base_lat, 0.99), 1e-9)
    print(f"  {'ratio router/queue':22} {our_rate / base_rate:>10.2f}x {'':>8} {p99_ratio:>7.2f}x")
    print("  targets: >= 1,000,000 tok/s, p99 added <= 1 ms")
    print(f"== UI frames: StreamRouter(frame_s={FRAME_S}, frame_deltas={FRAME_DELTAS}), same pace ==")
    print(
        f"  {drains / seconds:.0f} drains/s, {len(ui_lat) / max(drains, 1):.1f} deltas per drain, "
        f"latency p50 {pct(ui_lat, 0.5):.3f} ms p99 {pct(ui_lat, 0.99):.3f} ms (waits for the frame)"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
