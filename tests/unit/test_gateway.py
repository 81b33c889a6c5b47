"""The gateway: retries, continuation after a broken stream, fallback, stalls and limits.

Remote faults come from the real local server speaking the OpenAI streaming format, through the
real SDK (``OpenAICompatibleProvider``). Waiting is recorded, not done: the gateway is given a
``sleep`` that notes each delay, so the tests assert which waits were asked for, never how long
anything took.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Iterator

import pytest

from facilitair_tui.core.gateway import (
    CONTINUE_INSTRUCTION,
    MIN_RESTART,
    OVERLAP_WINDOW,
    Attempt,
    Billed,
    Gateway,
    GatewayItem,
    ProviderLimit,
    Recovery,
    RetryPolicy,
    rough_token_count,
)
from facilitair_tui.core.provider import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    ConfigurationError,
    ModelRef,
    ProviderError,
    StreamItem,
    TextDelta,
    Usage,
)
from facilitair_tui.providers.openai_compat import OpenAICompatibleProvider
from facilitair_tui.providers.scripted import Reply, ScriptedProvider
from tests.support.openai_sse_server import OpenAISSEServer, Script

TEXT = ["The ", "plan: ", "short ", "codes, ", "SQLite, ", "no ", "cache ", "yet."]
PRIMARY = ModelRef("local", "primary-model")
BACKUP = ModelRef("local", "backup-model")
SECRET = "sk-test-GATEWAY-SECRET-42"


@pytest.fixture
def server() -> Iterator[OpenAISSEServer]:
    with OpenAISSEServer() as srv:
        yield srv


class Resolver:
    """Every ``local:*`` model on the test server; other providers are unknown."""

    def __init__(self, provider: ChatProvider) -> None:
        self.provider = provider

    def resolve(self, ref: ModelRef) -> ChatProvider:
        if ref.provider != "local":
            raise ConfigurationError(f"unknown provider {ref.provider!r}")
        return self.provider


class Waits:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def provider(server: OpenAISSEServer) -> AsyncIterator[OpenAICompatibleProvider]:
    prov = OpenAICompatibleProvider("local", base_url=server.base_url, api_key=SECRET, timeout_s=20.0)
    yield prov
    await prov.aclose()


def gateway(provider: ChatProvider, waits: Waits, policy: RetryPolicy | None = None) -> Gateway:
    policy = policy or RetryPolicy(attempts_per_model=3, base_delay_s=1.0, jitter=0.0, stall_s=20.0)
    return Gateway(Resolver(provider), policy, sleep=waits, rng=random.Random(7))


def request() -> ChatRequest:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Plan a URL shortener."))
    return ChatRequest(model="ignored", messages=messages, max_tokens=64)


async def run(gw: Gateway, models: tuple[ModelRef, ...] = (PRIMARY,)) -> list[GatewayItem]:
    items: list[GatewayItem] = []
    await gw.call(models, request(), items.append)
    return items


def text_of(items: list[GatewayItem]) -> str:
    return "".join(item.text for item in items if isinstance(item, TextDelta))


def recoveries(items: list[GatewayItem]) -> list[str]:
    return [item.message for item in items if isinstance(item, Recovery)]


def billed(items: list[GatewayItem]) -> list[Billed]:
    return [item for item in items if isinstance(item, Billed)]


# ---------------------------------------------------------------------------- success and retries


async def test_a_healthy_stream_passes_through_once_billed_with_the_reported_usage(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=TEXT, prompt_tokens=21, completion_tokens=9)
    items = await run(gateway(provider, Waits()))
    assert text_of(items) == "".join(TEXT)
    assert [i.text for i in items if isinstance(i, TextDelta)] == TEXT  # no re-chunking
    assert billed(items) == [Billed(PRIMARY, Usage(21, 9))]
    assert recoveries(items) == []
    assert server.requests[0].body["model"] == "primary-model"


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (Script(status=429, retry_after="7", error_message="slow down"), "rate limited (HTTP 429)"),
        (Script(status=500, error_message="boom"), "server error (HTTP 500)"),
        (Script(status=529, error_message="Overloaded"), "server error (HTTP 529)"),
        (Script(deltas=TEXT, fault="drop", fault_after=0), "stream broke after 0 text deltas"),
    ],
    ids=["429-retry-after", "500", "529-overloaded", "reset-before-any-text"],
)
async def test_a_retryable_failure_before_any_text_is_retried_and_the_text_comes_once(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, fault: Script, said: str
) -> None:
    server.enqueue(fault, Script(deltas=TEXT))
    waits = Waits()
    items = await run(gateway(provider, waits))
    assert text_of(items) == "".join(TEXT)
    (recovery,) = recoveries(items)
    assert said in recovery and "Retrying in" in recovery and "attempt 2 of 3" in recovery
    assert len(server.requests) == 2
    assert server.requests[1].body["messages"] == server.requests[0].body["messages"]
    if fault.retry_after is not None:
        assert waits.delays == [7.0]  # the server's Retry-After, not the shorter backoff
    else:
        assert waits.delays == [1.0]  # base delay, no jitter in this policy
    assert len(billed(items)) == 1  # nothing was produced by the failed attempt


@pytest.mark.parametrize("fault", ["drop", "malformed"])
async def test_a_stream_broken_midway_continues_from_the_partial_text_without_loss_or_repeat(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, fault: str
) -> None:
    # The retry repeats the last words before going on, as models do; the repeat is cut.
    server.enqueue(
        Script(deltas=TEXT, fault=fault, fault_after=4),  # type: ignore[arg-type]
        Script(deltas=["short codes, ", "SQLite, ", "no ", "cache ", "yet."]),
    )
    waits = Waits()
    items = await run(gateway(provider, waits))
    assert text_of(items) == "".join(TEXT)
    continuation = server.requests[1].body["messages"]
    assert continuation[-2] == {"role": "assistant", "content": "The plan: short codes, "}
    assert continuation[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
    (recovery,) = recoveries(items)
    assert "stream broke after 4 text deltas" in recovery
    assert "continuing from the 23 characters received" in recovery
    first, second = billed(items)
    # It broke before reporting: counted with the gateway's token counter (a rough one here).
    assert first.usage.estimated
    assert first.usage.output_tokens == rough_token_count("The plan: short codes, ")
    assert second.usage == Usage(17, 5)


# A plan long enough that a restart is more than the end-overlap window can see.
STEPS = [
    "1. Accept a long URL and check that it is one.\n",
    "2. Make a short code of seven letters and digits.\n",
    "3. Store the pair in SQLite, the code as the key.\n",
    "4. Redirect a short code to its long URL.\n",
    "5. Count each visit without slowing the redirect.\n",
    "6. Expire codes nobody used for a year.\n",
    "7. Limit how many codes one client makes a minute.\n",
]


async def test_a_continuation_that_starts_over_is_not_shown_twice(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    # The retry ignores "continue" and writes the whole answer again, from its first word.
    server.enqueue(Script(deltas=STEPS, fault="drop", fault_after=4), Script(deltas=STEPS))
    items = await run(gateway(provider, Waits()))
    partial = "".join(STEPS[:4])
    assert len(partial) > OVERLAP_WINDOW
    assert server.requests[1].body["messages"][-2] == {"role": "assistant", "content": partial}
    assert text_of(items) == "".join(STEPS)
    assert len(billed(items)) == 2  # the repeat was produced, so it is paid for, just not shown


async def test_a_restart_in_other_pieces_and_spacing_is_cut_too(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    # The same words, cut into other deltas, a blank line between steps and a leading newline:
    # whitespace runs match whitespace runs, so it is still the same text.
    restart = "\n" + "\n".join(STEPS).replace(" a ", "  a ")
    pieces = [restart[start : start + 7] for start in range(0, len(restart), 7)]
    server.enqueue(Script(deltas=STEPS, fault="drop", fault_after=4), Script(deltas=pieces))
    items = await run(gateway(provider, Waits()))
    new_part = restart[restart.index("5. Count") :]
    assert text_of(items) == "".join(STEPS[:4]) + new_part


def scripted(*replies: Reply) -> ScriptedProvider:
    """A provider that answers each call with the next reply."""
    queue = deque(replies)
    return ScriptedProvider(lambda _request: queue.popleft())


async def test_a_restart_is_released_as_soon_as_it_has_caught_up_with_the_partial_answer() -> None:
    answer = "".join(STEPS)
    partial = "".join(STEPS[:4])
    provider = scripted(Reply(deltas=list(answer), fail_after=len(partial)), Reply(deltas=list(answer)))
    items: list[GatewayItem] = []
    delivered_when_shown: list[int] = []

    def sink(item: GatewayItem) -> None:
        items.append(item)
        if isinstance(item, TextDelta) and len(provider.calls) == 2:
            delivered_when_shown.append(len(provider.calls[1].delivered))

    await gateway(provider, Waits()).call((PRIMARY,), request(), sink)
    assert text_of(items) == answer
    # Held back while it repeated the partial answer (and one character more, to know the
    # repeat ended), then streamed on one delta at a time, not at the end of the stream.
    assert delivered_when_shown[0] == len(partial) + 1
    assert delivered_when_shown == list(range(len(partial) + 1, len(answer) + 1))


async def test_a_restart_that_rewords_partway_keeps_only_the_words_after_the_repeat() -> None:
    partial = "".join(STEPS[:3])
    reworded = "".join(STEPS[:2]) + "3. Keep the pairs in SQLite.\n" + "".join(STEPS[3:])
    provider = scripted(Reply(deltas=STEPS, fail_after=3), Reply(deltas=[reworded[:40], reworded[40:]]))
    items = await run(gateway(provider, Waits()))
    # Cut where the repeat ends, at the start of the word that differs ("3. " is repeated too).
    assert text_of(items) == partial + reworded[reworded.index("Keep the pairs") :]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 1000])
async def test_how_a_restart_is_cut_does_not_depend_on_how_it_is_split_into_deltas(size: int) -> None:
    partial = "".join(STEPS[:4])
    spaced = "\n  " + "\n\n".join(STEPS).replace(" a ", " \t a ")  # runs split across deltas too
    reworded = "".join(STEPS[:2]) + "3. Keep the pairs in SQLite.\n" + "".join(STEPS[3:])
    for restart, new_part in (
        (spaced, spaced[spaced.index("5. Count") :]),
        (reworded, reworded[reworded.index("Keep the pairs") :]),
    ):
        pieces = [restart[start : start + size] for start in range(0, len(restart), size)]
        provider = scripted(Reply(deltas=STEPS, fail_after=4), Reply(deltas=pieces))
        items = await run(gateway(provider, Waits()))
        assert text_of(items) == partial + new_part


async def test_a_restart_that_breaks_again_before_catching_up_shows_nothing() -> None:
    partial = "".join(STEPS[:4])
    provider = scripted(
        Reply(deltas=STEPS, fail_after=4),
        Reply(deltas=STEPS, fail_after=2),  # starts over, breaks inside the repeat
        Reply(deltas=STEPS[4:]),  # continues as asked
    )
    items = await run(gateway(provider, Waits()))
    assert text_of(items) == "".join(STEPS)
    assert provider.calls[2].request.messages[-2] == ChatMessage("assistant", partial)


def common_start(one: str, other: str) -> int:
    """How many characters two strings share from their start."""
    shared = 0
    for mine, theirs in zip(one, other, strict=False):
        if mine != theirs:
            break
        shared += 1
    return shared


@pytest.mark.parametrize(
    ("partial", "continuation"),
    [
        # The same first words as the partial answer: fewer alike than a restart needs.
        ("The cache keeps the last answer. ", "The cache key is the prompt's hash."),
        ("Use a dict for the index, ", "Use a list for the order of arrival."),
    ],
)
async def test_a_continuation_that_starts_like_the_partial_answer_is_kept_whole(
    partial: str, continuation: str
) -> None:
    words = partial.split(" ")
    deltas = [word + " " for word in words[:-1]] + ([words[-1]] if words[-1] else [])
    assert "".join(deltas) == partial
    alike = common_start(partial.replace(" ", ""), continuation.replace(" ", ""))
    assert 3 <= alike < MIN_RESTART
    provider = scripted(
        Reply(deltas=[*deltas, "never sent"], fail_after=len(deltas)), Reply(deltas=[continuation])
    )
    items = await run(gateway(provider, Waits()))
    assert text_of(items) == partial + continuation


async def test_a_stall_counts_as_a_failure_and_is_retried(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(Script(deltas=TEXT, fault="stall", fault_after=2, stall_s=30.0), Script(deltas=TEXT[2:]))
    policy = RetryPolicy(attempts_per_model=2, base_delay_s=1.0, jitter=0.0, stall_s=0.3)
    items = await run(gateway(provider, Waits(), policy))
    assert text_of(items) == "".join(TEXT)
    (recovery,) = recoveries(items)
    assert "the stream stalled: nothing for 0.3s" in recovery
    assert server.wait_client_disconnected_during_stall(timeout=10)  # the stalled call was closed


class PullCountingProvider:
    """Streams ``TEXT`` from memory, counting the deltas the caller has pulled."""

    name = "counting"

    def __init__(self) -> None:
        self.pulled = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        for text in TEXT:
            self.pulled += 1
            yield TextDelta(text)
        yield Usage(10, len(TEXT))

    async def aclose(self) -> None:
        return None


async def test_a_sink_that_returns_an_awaitable_holds_the_stream_and_it_is_no_stall() -> None:
    provider = PullCountingProvider()
    policy = RetryPolicy(attempts_per_model=1, stall_s=0.05)
    room = asyncio.get_running_loop().create_future()
    items: list[GatewayItem] = []
    pulled_while_waiting: list[int] = []

    def sink(item: GatewayItem) -> asyncio.Future[None] | None:
        items.append(item)
        return room if len(items) == 3 else None

    async def make_room() -> None:
        while not room.done():
            await asyncio.sleep(0.05)  # several stall periods: the wait must not count as one
            pulled_while_waiting.append(provider.pulled)
            if len(pulled_while_waiting) == 4:
                room.set_result(None)

    helper = asyncio.create_task(make_room())
    await gateway(provider, Waits(), policy).call((PRIMARY,), request(), sink)
    await helper
    # The third delta's awaitable kept the gateway from pulling a fourth until it was done.
    assert pulled_while_waiting == [3, 3, 3, 3]
    assert text_of(items) == "".join(TEXT)
    assert recoveries(items) == []
    assert billed(items) == [Billed(PRIMARY, Usage(10, len(TEXT)))]


async def test_backoff_grows_exponentially_with_jitter_within_bounds() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.25)
    rng = random.Random(1)
    for failures, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        for _ in range(50):
            assert nominal * 0.75 <= policy.delay(failures, None, rng) <= nominal * 1.25
    assert policy.delay(1, 12.0, rng) == 12.0  # Retry-After wins when it is longer


# ---------------------------------------------------------------------------- giving up, fallback


async def test_a_failure_retrying_cannot_fix_is_not_retried_and_falls_back(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(Script(status=401, error_message="bad key", echo_auth_in_error=True), Script(deltas=TEXT))
    waits = Waits()
    items = await run(gateway(provider, waits), (PRIMARY, BACKUP))
    assert text_of(items) == "".join(TEXT)
    (recovery,) = recoveries(items)
    assert "authentication failed (HTTP 401)" in recovery and "Falling back to local:backup-model" in recovery
    assert SECRET not in recovery
    assert waits.delays == []
    assert [r.body["model"] for r in server.requests] == ["primary-model", "backup-model"]
    assert billed(items) == [Billed(BACKUP, Usage(17, len(TEXT)))]


async def test_a_fallback_continues_the_text_the_first_model_left(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    policy = RetryPolicy(attempts_per_model=1, jitter=0.0)
    server.enqueue(Script(deltas=TEXT, fault="drop", fault_after=3), Script(deltas=TEXT[3:]))
    items = await run(gateway(provider, Waits(), policy), (PRIMARY, BACKUP))
    assert text_of(items) == "".join(TEXT)
    assert server.requests[1].body["model"] == "backup-model"
    assert server.requests[1].body["messages"][-2]["content"] == "".join(TEXT[:3])
    assert [b.model for b in billed(items)] == [PRIMARY, BACKUP]


async def test_when_every_attempt_fails_the_last_error_is_raised_after_the_partial_text(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(
        Script(deltas=TEXT, fault="drop", fault_after=2),
        Script(status=503, error_message="unavailable"),
        Script(status=503, error_message="still unavailable"),
    )
    waits = Waits()
    items: list[GatewayItem] = []
    with pytest.raises(ProviderError) as info:
        await gateway(provider, waits).call((PRIMARY,), request(), items.append)
    assert "server error (HTTP 503): still unavailable" in str(info.value)
    assert text_of(items) == "".join(TEXT[:2])  # what arrived is kept, once
    assert len(recoveries(items)) == 2 and waits.delays == [1.0, 2.0]


async def test_an_unknown_provider_in_the_list_is_skipped_for_the_next(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.script = Script(deltas=TEXT)
    items = await run(gateway(provider, Waits()), (ModelRef("nowhere", "m"), PRIMARY))
    assert text_of(items) == "".join(TEXT)
    assert "unknown provider 'nowhere'. Falling back to local:primary-model" in recoveries(items)[0]


async def test_a_retry_after_longer_than_the_policy_allows_moves_on_at_once(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(Script(status=429, retry_after="3600"), Script(deltas=TEXT))
    waits = Waits()
    items = await run(gateway(provider, waits), (PRIMARY, BACKUP))
    assert text_of(items) == "".join(TEXT)
    assert waits.delays == []
    assert "Falling back to local:backup-model" in recoveries(items)[0]


# ---------------------------------------------------------------------------- per-provider limits


class CountingProvider:
    """An in-process provider that notes how many of its streams run at once."""

    name = "local"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            yield TextDelta("ok")
            yield Usage(1, 1)
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        return None


async def test_max_concurrent_holds_extra_calls_until_a_slot_frees() -> None:
    counting = CountingProvider()
    gw = Gateway(Resolver(counting), RetryPolicy(), {"local": ProviderLimit(max_concurrent=2)})
    calls = [asyncio.create_task(run(gw)) for _ in range(5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert counting.running == 2
    counting.release.set()
    results = await asyncio.gather(*calls)
    assert all(text_of(items) == "ok" for items in results)
    assert counting.most == 2


async def test_requests_per_minute_spaces_call_starts_over_a_sliding_minute() -> None:
    counting = CountingProvider()
    counting.release.set()
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    gw = Gateway(
        Resolver(counting),
        RetryPolicy(),
        {"local": ProviderLimit(requests_per_minute=2)},
        sleep=sleep,
        clock=lambda: now[0],
    )
    await run(gw)
    now[0] += 10.0
    await run(gw)
    await run(gw)  # the third start in the minute waits for the first to leave the window
    assert waits == [50.0]


@pytest.mark.parametrize("allowed", [0, 1])
async def test_an_answer_cut_at_max_tokens_is_continued_as_often_as_allowed(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider, allowed: int
) -> None:
    server.enqueue(
        Script(deltas=TEXT[:4], finish_reason="length"),  # the model stopped at max_tokens
        Script(deltas=TEXT[4:], finish_reason="stop"),
    )
    items: list[GatewayItem] = []
    await gateway(provider, Waits()).call((PRIMARY,), request(), items.append, continue_cut=allowed)
    if not allowed:  # the cut answer is what there is, and it says so
        assert text_of(items) == "".join(TEXT[:4]) and len(server.requests) == 1
        assert [b.usage.stop_reason for b in billed(items)] == ["max_tokens"]
        return
    assert text_of(items) == "".join(TEXT)
    continuation = server.requests[1].body["messages"]
    assert continuation[-2] == {"role": "assistant", "content": "".join(TEXT[:4])}
    assert continuation[-1] == {"role": "user", "content": CONTINUE_INSTRUCTION}
    assert [b.usage.stop_reason for b in billed(items)] == ["max_tokens", "end"]
    (recovery,) = recoveries(items)
    assert "reached max_tokens (64); continuing it (1 of 1)" in recovery


async def test_a_continuation_cut_again_stays_cut(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(
        Script(deltas=TEXT[:4], finish_reason="length"), Script(deltas=TEXT[4:6], finish_reason="length")
    )
    items: list[GatewayItem] = []
    await gateway(provider, Waits()).call((PRIMARY,), request(), items.append, continue_cut=1)
    assert text_of(items) == "".join(TEXT[:6]) and len(server.requests) == 2
    assert billed(items)[-1].usage.stop_reason == "max_tokens"


# ---------------------------------------------------------------------------- attempts reported


def attempts(items: list[GatewayItem]) -> list[Attempt]:
    return [item for item in items if isinstance(item, Attempt)]


async def test_every_attempt_is_reported_with_its_kind_outcome_and_wait(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    # A rate limit (retried after the server's Retry-After), a stream that breaks midway
    # (retried, continuing the text), a refused key (falls back), then the answer.
    server.enqueue(
        Script(status=429, retry_after="7", error_message="slow down"),
        Script(deltas=TEXT, fault="drop", fault_after=3),
        Script(status=401, error_message="bad key"),
        Script(deltas=TEXT[3:], prompt_tokens=30, completion_tokens=5),
    )
    items = await run(gateway(provider, Waits()), (PRIMARY, BACKUP))
    assert text_of(items) == "".join(TEXT)
    reported = attempts(items)
    assert [(a.model, a.kind, a.outcome, a.error) for a in reported] == [
        (PRIMARY, "first", "failed", "rate_limit"),
        (PRIMARY, "retry", "failed", "broken_stream"),
        (PRIMARY, "retry", "failed", "auth"),
        (BACKUP, "fallback", "ok", ""),
    ]
    assert reported[0].wait_s == 7.0 and reported[0].retry_after_s == 7.0
    assert reported[1].wait_s == 2.0  # the second failure's backoff
    assert reported[2].wait_s == 0.0  # no wait before a fallback
    assert reported[0].usage is None and reported[0].first_token_s is None
    assert reported[1].usage is not None and reported[1].usage.estimated  # three deltas, billed
    assert reported[1].first_token_s is not None
    assert reported[3].usage == Usage(30, 5)
    assert SECRET not in " ".join(a.message for a in reported)
    # Each attempt is reported once it ended: after what it billed, before what follows it.
    kinds = [type(i).__name__ for i in items if not isinstance(i, TextDelta)]
    assert kinds[-2:] == ["Billed", "Attempt"]


async def test_a_continued_answer_reports_the_cut_and_the_continuation(
    server: OpenAISSEServer, provider: OpenAICompatibleProvider
) -> None:
    server.enqueue(
        Script(deltas=TEXT[:4], finish_reason="length"), Script(deltas=TEXT[4:], finish_reason="stop")
    )
    items: list[GatewayItem] = []
    await gateway(provider, Waits()).call((PRIMARY,), request(), items.append, continue_cut=1)
    reported = attempts(items)
    assert [(a.kind, a.outcome) for a in reported] == [("first", "cut"), ("continuation", "ok")]
    assert reported[0].usage is not None and reported[0].usage.stop_reason == "max_tokens"


async def test_a_cancelled_attempt_is_reported_as_cancelled() -> None:
    slow = ScriptedProvider(lambda _request: Reply(deltas=["a "] * 50, delay_s=0.05))
    items: list[GatewayItem] = []
    streaming = asyncio.Event()

    def sink(item: GatewayItem) -> None:
        items.append(item)
        if isinstance(item, TextDelta):
            streaming.set()

    gw = Gateway(Resolver(slow), RetryPolicy(attempts_per_model=1), sleep=Waits())
    task = asyncio.create_task(gw.call((PRIMARY,), request(), sink))
    await streaming.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (reported,) = attempts(items)
    assert reported.outcome == "cancelled" and reported.usage is not None


class _HeldProvider:
    """Says its backend held the request 0.5 s before working on it (the embedded engine's queue)."""

    name = "local"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        yield TextDelta("held answer")
        yield Usage(10, 2, queued_s=0.5)

    async def aclose(self) -> None:
        return None


async def test_a_backends_own_queue_is_reported_as_waiting_not_answering() -> None:
    ticks = iter(float(n) for n in range(100))  # each reading of the clock is one second later
    gw = Gateway(Resolver(_HeldProvider()), RetryPolicy(attempts_per_model=1), clock=lambda: next(ticks))
    items: list[GatewayItem] = []
    await gw.call((PRIMARY,), request(), items.append)
    (reported,) = attempts(items)
    # Asked at 0, its slot at 1, first text at 2, ended at 3; the backend held it 0.5 s of that.
    assert (reported.queued_s, reported.first_token_s, reported.duration_s) == (1.5, 0.5, 1.5)
