"""Gateway overhead: what our provider layer and the reliability gateway cost around the SDK.

Against the same local server speaking the OpenAI streaming wire format (the test suite's
``OpenAISSEServer``, in its own thread), in the same run, three ways of making the same call:

- baseline: the official ``openai`` SDK directly (``chat.completions.create(stream=True)``,
  every chunk read);
- provider: ``OpenAICompatibleProvider.stream`` (error mapping, usage, redaction);
- gateway: ``Gateway.call`` over that provider (limits, stall watch, retry bookkeeping).

1. Per call: a one-delta answer, many calls, the three ways interleaved so drift hits them
   alike; the median time per call and the difference to the baseline. Target: gateway at most
   0.5 ms per call over the SDK.
2. Per token: a 4,000-delta answer; tokens per second of each way. Target: the gateway at most
   2% fewer tokens/s than the SDK.

Prints numbers; asserts nothing (this is not a test).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from facilitair_tui.core.gateway import Gateway, RetryPolicy  # noqa: E402
from facilitair_tui.core.provider import ChatMessage, ChatRequest, ModelRef, TextDelta  # noqa: E402
from facilitair_tui.providers.openai_compat import OpenAICompatibleProvider  # noqa: E402
from facilitair_tui.providers.scripted import SingleProviderResolver  # noqa: E402
from tests.support.openai_sse_server import OpenAISSEServer, Script  # noqa: E402

CALLS = 300
LONG_DELTAS = 4000
LONG_RUNS = 11
MODEL = "bench-model"
MESSAGES = (ChatMessage("system", "Be brief."), ChatMessage("user", "Say something."))

Call = Callable[[], Awaitable[int]]


def ways(server: OpenAISSEServer) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url=server.base_url, max_retries=0)
    provider = OpenAICompatibleProvider("local", base_url=server.base_url, api_key="sk-bench")
    gateway = Gateway(SingleProviderResolver(provider), RetryPolicy())
    request = ChatRequest(model=MODEL, messages=MESSAGES, max_tokens=8192)
    model = ModelRef("local", MODEL)

    async def sdk() -> int:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say something."},
            ],
            max_tokens=8192,
            stream=True,
            stream_options={"include_usage": True},
        )
        count = 0
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    count += 1
        return count

    async def ours() -> int:
        return sum([1 async for item in provider.stream(request) if isinstance(item, TextDelta)])

    async def through_gateway() -> int:
        count = 0

        def sink(item: object) -> None:
            nonlocal count
            count += isinstance(item, TextDelta)

        await gateway.call((model,), request, sink)
        return count

    async def close() -> None:
        await client.close()
        await provider.aclose()

    return {"SDK directly": sdk, "provider": ours, "gateway": through_gateway}, close


async def per_call(server: OpenAISSEServer) -> dict[str, list[float]]:
    server.script = Script(deltas=["ok"])
    calls, close = ways(server)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up: connections, imports, caches
        for _ in range(10):
            await call()
    for _ in range(CALLS):
        for name, call in calls.items():
            start = time.perf_counter()
            await call()
            times[name].append(time.perf_counter() - start)
    await close()
    return times


async def per_token(server: OpenAISSEServer) -> dict[str, list[float]]:
    server.script = Script(deltas=["tok "] * LONG_DELTAS)
    calls, close = ways(server)
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        await call()
    for _ in range(LONG_RUNS):
        for name, call in calls.items():
            start = time.perf_counter()
            count = await call()
            rates[name].append(count / (time.perf_counter() - start))
    await close()
    return rates


async def main() -> None:
    with OpenAISSEServer(max_lifetime_s=600.0) as server:
        times = await per_call(server)
        rates = await per_token(server)
    base = statistics.median(times["SDK directly"])
    print(f"== Per call: one-delta answers, {CALLS} calls each, interleaved; median ms per call ==")
    for name, samples in times.items():
        median = statistics.median(samples)
        extra = "" if name == "SDK directly" else f"  (+{(median - base) * 1e3:.3f} ms, {median / base:.2f}x)"
        print(f"  {name:<13} {median * 1e3:7.3f} ms{extra}")
    print("  target: gateway at most +0.5 ms per call over the SDK")
    base_rate = statistics.median(rates["SDK directly"])
    print(f"== Per token: {LONG_DELTAS:,}-delta answers, {LONG_RUNS} runs each; median tokens/s ==")
    for name, samples in rates.items():
        rate = statistics.median(samples)
        extra = "" if name == "SDK directly" else f"  ({(rate / base_rate - 1) * 100:+.1f}% vs the SDK)"
        print(f"  {name:<13} {rate:10,.0f} tok/s{extra}")
    print("  target: gateway at most 2% fewer tokens/s than the SDK")


if __name__ == "__main__":
    asyncio.run(main())
