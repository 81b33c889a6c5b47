"""The typed, versioned event stream: the only contract between the engine and its consumers.

Every consumer (CLI renderer, TUI, store, cache, replay) reads these events and nothing else.
Each event carries ``type``, ``session_id``, ``seq`` (monotonic in delivery order) and ``t``
(seconds since the session started, taken when the thing happened). ``v`` is the schema
version; a consumer that meets a newer version than it knows should refuse, not guess.

Field names are the JSON names. Adding an optional field is a compatible change; renaming or
removing one bumps ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from .provider import StopReason

SCHEMA_VERSION = 1

# Session and entry ids name files (a running session's lock) and are typed by users, so one
# that comes from outside (an imported file, a command argument) must be letters, digits, "-"
# and "_": never a path. Ours are 16 hex digits.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_id(value: str, what: str = "session id", listed_by: str = "facilitair sessions list") -> str:
    """``value`` when it is a well-formed id (or id prefix); ``ValueError`` saying what is allowed."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise ValueError(
            f"{repr(value)[:80]} is not a valid {what}: an id is 1 to 64 letters, digits, '-' or '_' "
            f"({listed_by} shows them)"
        )
    return value


AgentStatus = Literal["done", "failed", "cancelled"]
SessionStatus = Literal["done", "stopped", "failed"]
FeedbackTarget = Literal["next_chunk", "now"]


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=False):
    session_id: str
    seq: int = 0
    t: float = 0.0
    v: int = SCHEMA_VERSION


class SessionStarted(Event, tag="session_started"):
    task: str
    context: dict[str, str]
    strategy: str
    workflow: str
    # role name -> "provider:model", so a consumer can show who runs on what.
    models: dict[str, str] = msgspec.field(default_factory=dict)
    chunks: list[str] = msgspec.field(default_factory=list)
    # A continuation of a recorded session (a resume or a fork): its first ``reused_chunks``
    # chunks are ``parent_id``'s, played again as recorded without calling a model; ``change``
    # says in words what this branch changed (empty for a resume).
    parent_id: str | None = None
    reused_chunks: int = 0
    change: str = ""


class CacheChecked(Event, tag="cache_checked"):
    """The cache was asked before any agent started. On a hit the cached solution follows, played
    through the usual chunk and synthesis events, and no model is called."""

    hit: bool
    # The cached entry served (hit) or the nearest one that was turned down (miss), if any.
    entry_id: str | None = None
    similarity: float | None = None
    # Hit: what matched and how. Miss: why nothing was served.
    matched_on: str = ""
    # What serving from the cache saved: the original run's cost and time (None: unknown).
    saved_usd: float | None = None
    saved_s: float | None = None
    age_s: float | None = None  # how long ago the served solution was made
    imported: bool = False  # the served solution came from a file, not from a run here
    context: dict[str, str] = msgspec.field(default_factory=dict)  # the served solution's
    # "serve" (proven the same request), "offer" (close: the user was asked; ``hit`` says whether
    # they took it) or "miss"; "" in recordings older than offers (read ``hit``).
    decision: str = ""
    task: str = ""  # the cached entry's task (served, offered, or the nearest turned down)
    # How long the lookup took (the user's answer to an offer not included); None in older recordings.
    lookup_ms: float | None = None


class ChunkStarted(Event, tag="chunk_started"):
    chunk: int  # 1-based
    title: str
    total: int


class AgentStarted(Event, tag="agent_started"):
    agent: str
    chunk: int
    model: str
    # Upstream agents whose (partial) output is in this agent's prompt.
    reads: list[str] = msgspec.field(default_factory=list)
    # This call writes the chunk's synthesis (the synthesizer), not a role's answer.
    synthesizes: bool = False


class Token(Event, tag="token"):
    agent: str
    chunk: int
    text: str
    # Streamed deltas this text merges: more than one when they piled up before the consumer
    # took them (a lagging consumer, a pause). Counting tokens means summing this.
    deltas: int = 1


# A finished answer its model did not end by itself (``AgentFinished.stop_reason``), in words.
CUT_WORDS: dict[StopReason, str] = {"max_tokens": "cut at max tokens", "filtered": "cut by the provider"}


class AgentFinished(Event, tag="agent_finished"):
    agent: str
    chunk: int
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    status: AgentStatus
    usage_estimated: bool = False
    # Why the model stopped, as its backend said: "max_tokens" means the answer is cut (after the
    # continuation the workflow allows, if any); "filtered", that the provider withheld the rest.
    stop_reason: StopReason = "end"
    # Of the input tokens, those the backend read from its prompt cache: not computed again (the
    # embedded engine's shared prompt prefixes) or billed lower (OpenAI's and Anthropic's caches).
    cached_input_tokens: int = 0


AttemptKind = Literal["first", "retry", "fallback", "continuation"]
AttemptOutcome = Literal["ok", "cut", "failed", "cancelled"]


class ModelAttempt(Event, tag="model_attempt"):
    """One request to one model within an agent's call, emitted when the request ended.

    A call takes one attempt when all goes well; a retry after a failure, the next model of the
    role's list (a fallback) and the continuation of an answer cut at ``max_tokens`` are further
    attempts. Times are the session's seconds (``t`` is the end); durations are milliseconds.
    What an agent's call cost in total is in its ``agent_finished``; this is the detail behind it.
    """

    agent: str
    chunk: int
    attempt: int  # 1-based, within the agent's call
    model: str  # "provider:model"
    kind: AttemptKind
    started_t: float  # when the attempt asked for its provider's slot
    # Waited for the provider's concurrency slot or its requests-per-minute limit, or (as the
    # backend said) inside it: the embedded engine's wait for a place in its batch.
    queued_ms: float = 0.0
    # From the request to the first text (None: no text came).
    first_token_ms: float | None = None
    duration_ms: float = 0.0  # from the request (after the queue) to its end
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: float | None = None
    # "ok": the model ended its answer; "cut": it stopped at max_tokens or was filtered
    # (``stop_reason`` says which); "failed": the request failed (``error`` is the kind of
    # failure, ``message`` the provider's words); "cancelled": the user stopped it.
    outcome: AttemptOutcome = "ok"
    stop_reason: StopReason | None = None
    error: str = ""
    message: str = ""
    # The wait after a failed attempt before the next one (backoff, at least Retry-After).
    wait_ms: float = 0.0
    retry_after_s: float | None = None
    max_tokens: int = 0
    temperature: float | None = None
    # The model that answered as its backend named it; "" when it did not say.
    response_model: str = ""


class DebatedPoint(msgspec.Struct, kw_only=True):
    point: str
    positions: dict[str, str] = msgspec.field(default_factory=dict)


class ConfidenceParts(msgspec.Struct, kw_only=True):
    """What a synthesis's confidence is computed from (``core.confidence``); a part that could
    not be measured is None and does not count."""

    # Mean pairwise cosine similarity of the agents' outputs (the native embedder), in [0, 1].
    agreement: float | None = None
    # The synthesis's agreed and debated points: settled = agreed / (agreed + debated).
    agreed: int = 0
    debated: int = 0
    # Tests the chunk's code passed and failed where code ran.
    passed: int = 0
    failed: int = 0


class Synthesis(Event, tag="synthesis"):
    chunk: int
    agreed: list[str]
    debated: list[DebatedPoint]
    # Computed from ``confidence_parts`` (never what a model says); None when nothing could be
    # measured.
    confidence: float | None
    text: str
    # False when the synthesizer's answer did not follow the format; ``text`` is then its raw answer.
    parsed: bool = True
    confidence_parts: ConfidenceParts | None = None


class CodeTest(msgspec.Struct, kw_only=True):
    name: str
    passed: bool
    message: str = ""  # why it failed
    # Where the test came from: "task" (an example the task states), "tester" (an agent wrote it).
    origin: str = "tester"


class CodeRun(Event, tag="code_run"):
    """The code an agent wrote was run with its tests in the sandbox (or the user refused it)."""

    agent: str
    chunk: int
    passed: int
    failed: int
    duration_ms: float
    # What the code printed, and why it did not load or finish (a bounded excerpt).
    output: str
    # "ran", "error" (the code did not load), "timeout", "memory" (a limit stopped it), or
    # "skipped" (the user did not allow the run; nothing ran).
    status: str = "ran"
    tests: list[CodeTest] = msgspec.field(default_factory=list)
    # Which of the agent's candidates in this chunk (1-based) was run.
    candidate: int = 1


class Paused(Event, tag="paused"):
    pass


class Resumed(Event, tag="resumed"):
    # Events generated while paused, delivered right after this one.
    held: int = 0


class Feedback(Event, tag="feedback"):
    text: str
    applies_to: FeedbackTarget
    chunk: int = 0  # the chunk it will shape


class BudgetExceeded(Event, tag="budget_exceeded"):
    """The next chunk could pass a budget: the session waits for the user's decision."""

    chunk: int
    title: str
    # Spent so far: by this session (scope "session"), or today by every session ("day").
    spent_usd: float
    forecast_usd: float  # the chunk's estimated cost (an estimate, not a bound: core.budget)
    limit_usd: float
    scope: Literal["session", "day"]
    # The cheapest other strategy that can run here, and its forecast for this chunk (if any).
    cheaper: str | None = None
    cheaper_forecast_usd: float | None = None


class BudgetDecision(Event, tag="budget_decision"):
    choice: Literal["continue", "cheaper", "stop"]
    strategy: str | None = None  # the strategy switched to, for "cheaper"
    models: dict[str, str] = {}  # role -> "provider:model" from here on, for "cheaper"


class Error(Event, tag="error"):
    message: str
    agent: str | None = None
    recoverable: bool = True
    chunk: int | None = None


class SessionFinished(Event, tag="session_finished"):
    status: SessionStatus
    output: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_s: float
    # The output was served from the semantic cache (the entry is in cache_checked).
    from_cache: bool = False
    # Of the input tokens, those read from the backends' prompt caches (see AgentFinished).
    cached_input_tokens: int = 0


AnyEvent = (
    SessionStarted
    | CacheChecked
    | ChunkStarted
    | AgentStarted
    | Token
    | AgentFinished
    | ModelAttempt
    | Synthesis
    | CodeRun
    | Paused
    | Resumed
    | Feedback
    | BudgetExceeded
    | BudgetDecision
    | Error
    | SessionFinished
)

# Control events reach consumers even while paused: they describe the pause itself or a
# request the user just made, and holding them back would make the UI lie about its state.
CONTROL_EVENTS: tuple[type[Event], ...] = (Paused, Resumed, Feedback, BudgetExceeded, BudgetDecision)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)


def to_json(event: Event) -> bytes:
    return _encoder.encode(event)


def to_dict(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result


class EventFormatError(ValueError):
    """A line is not a valid event of a schema version we understand."""


def from_json(data: bytes | str) -> AnyEvent:
    try:
        event = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventFormatError(f"not a Facilitair event: {exc}") from None
    if event.v > SCHEMA_VERSION:
        raise EventFormatError(
            f"event schema v{event.v} is newer than this Facilitair (v{SCHEMA_VERSION}); upgrade Facilitair"
        )
    return event


def event_type(cls: type[Event]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
