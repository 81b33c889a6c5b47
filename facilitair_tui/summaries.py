"""What a session's events say in words, the same in both front ends: times, costs, the closing
line, the cache's answer and the budget guard's question."""

from __future__ import annotations

import difflib
import re

from .core import events as ev
from .core.events import CUT_WORDS
from .library import age_words

__all__ = [
    "CUT_WORDS",
    "budget_question",
    "cache_summary",
    "clock",
    "differing_words",
    "finished_summary",
    "money",
]

_WORD = re.compile(r"\S+")


def clock(t: float) -> str:
    minutes, seconds = divmod(max(t, 0.0), 60)
    return f"{int(minutes):02d}:{seconds:05.2f}"


def money(cost: float | None) -> str:
    return "cost unknown" if cost is None else f"${cost:.4f}"


def cached_words(tokens: int) -> str:
    """ " (1,234 cached)": input tokens read from a prompt cache (an API's, or the embedded
    engine's shared prefixes), or nothing when there were none."""
    return f" ({tokens:,} cached)" if tokens else ""


def finished_summary(event: ev.SessionFinished) -> str:
    """The closing line of a session: "Collaboration complete: 01:02.30, 1,234 tokens (…), $0.0123"."""
    word = {"done": "complete", "stopped": "stopped", "failed": "failed"}[event.status]
    tokens = event.input_tokens + event.output_tokens
    return (
        f"Collaboration {word}: {clock(event.duration_s)}, {tokens:,} tokens "
        f"({event.input_tokens:,} in{cached_words(event.cached_input_tokens)}, {event.output_tokens:,} out), "
        f"{money(event.cost_usd)}"
    )


def cache_summary(e: ev.CacheChecked) -> str:
    """The cache's answer in words (the CLI and the TUI), e.g. "Found a cached solution (94%
    match), cached 2 h ago, context: Python, FastAPI, small team; saves $0.0412 and 01:31.20"."""
    if e.decision == "offer" and not e.hit:
        return f"Cache: a close solution was offered and declined; the agents run. Offered: {e.matched_on}"
    if not e.hit:
        return f"Cache: no match ({e.matched_on})" if e.matched_on else "Cache: no match"
    match = f"{e.similarity:.0%} match" if e.similarity is not None else "match"
    origin = "an imported cached solution" if e.imported else "a cached solution"
    taken = ", offered and taken" if e.decision == "offer" else ""
    parts = [f"Found {origin} ({match}{taken})"]
    if e.age_s is not None:
        parts.append(f"cached {age_words(e.age_s)}")
    parts.append(f"context: {', '.join(e.context.values()) or 'none given'}")
    saved = f"saves {money(e.saved_usd)}" if e.saved_usd is not None else "saves an unknown cost"
    if e.saved_s is not None:
        saved += f" and {clock(e.saved_s)}"
    return f"{', '.join(parts)}; {saved}. Why: {e.matched_on}"


Marked = list[tuple[str, bool]]


def differing_words(cached: str, asked: str) -> tuple[Marked, Marked]:
    """The two tasks word by word, each word marked True where the other task lacks it (removed
    from the cached one, added in the new one); compared ignoring case and the punctuation
    around words. The front ends highlight the marked words."""
    old, new = _WORD.findall(cached), _WORD.findall(asked)

    def key(word: str) -> str:
        return word.strip(".,;:!?()\"'").lower()

    matcher = difflib.SequenceMatcher(None, [key(w) for w in old], [key(w) for w in new], autojunk=False)
    left: Marked = []
    right: Marked = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left += [(word, tag != "equal") for word in old[i1:i2]]
        right += [(word, tag != "equal") for word in new[j1:j2]]
    return left, right


def budget_question(e: ev.BudgetExceeded) -> str:
    """The budget guard's question in words (shared by the CLI's renderer and prompt)."""
    limit = "the session's budget" if e.scope == "session" else "today's budget"
    text = (
        f"💰 chunk {e.chunk} ({e.title}) is estimated at {money(e.forecast_usd)}; with {money(e.spent_usd)} "
        f"spent that may pass {limit} of {money(e.limit_usd)}. The session waits"
    )
    if e.cheaper is not None:
        text += f" (a cheaper strategy, {e.cheaper.upper()}, is estimated at {money(e.cheaper_forecast_usd)})"
    return text


def confidence_words(event: ev.Synthesis) -> str:
    """A synthesis's confidence and what it was computed from: "confidence 77% (agreement 87%,
    settled 2 of 3)". ``core.confidence`` has the formula; an older recorded synthesis has a
    value but no parts."""
    if event.confidence is None:
        return "confidence not measured"
    words = f"confidence {event.confidence:.0%}"
    parts = event.confidence_parts
    if parts is None:
        return words
    shown = []
    if parts.agreement is not None:
        shown.append(f"agreement {parts.agreement:.0%}")
    if parts.agreed + parts.debated:
        shown.append(f"settled {parts.agreed} of {parts.agreed + parts.debated}")
    if parts.passed + parts.failed:
        shown.append(f"tests {parts.passed} of {parts.passed + parts.failed} passed")
    return f"{words} ({', '.join(shown)})" if shown else words


CODE_RUN_STATUS = {
    "error": "did not load",
    "timeout": "passed its time limit",
    "memory": "passed its memory limit",
    "skipped": "was not run",
}


def code_run_words(e: ev.CodeRun, title: str) -> str:
    """One line on a code run: whose code, which candidate, what the tests said."""
    whose = f"{title}'s code" + (f", candidate {e.candidate}" if e.candidate > 1 else "")
    total = e.passed + e.failed
    if e.status == "ran":
        said = f"{e.passed} of {total} tests passed" if total else "it loads; no tests to run"
    else:
        said = CODE_RUN_STATUS.get(e.status, e.status)
    took = "" if e.status == "skipped" else f" ({e.duration_ms / 1000:.2f}s)"
    return f"🧪 {whose}: {said}{took}"


def code_run_note(e: ev.CodeRun, title: str, failures: int = 5) -> str:
    """A code run in a few lines: its headline, the tests that failed and why, what stopped it."""
    lines = [code_run_words(e, title)]
    for test in [t for t in e.tests if not t.passed][:failures]:
        why = test.message.strip().splitlines()[-1] if test.message.strip() else "failed"
        lines.append(f"✗ {test.name}: {why}")
    if e.status not in ("ran", "skipped") and e.output.strip():
        lines.append(e.output.strip().splitlines()[-1])
    return "\n".join(lines)
