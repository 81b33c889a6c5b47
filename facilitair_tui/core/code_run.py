"""The seam between the engine and whatever runs the team's code.

The engine never starts a process itself: it hands a ``CodeRunner`` the Python the agents wrote
and the tests to run against it, and gets a ``RunReport`` back. ``facilitair_tui.sandbox``
implements it with a separate, limited process; tests can use any other.

A test is one piece of Python run after the code, in the code's namespace (``assert f(2) == 4``,
or a ``check(candidate)`` call). Every test runs on its own: one that fails, raises or hangs does
not stop the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# Where a test came from, most trusted first: the examples the task itself states, the tests a
# tester agent wrote, the checks of an eval (never shown to any agent).
TestOrigin = Literal["task", "tester", "hidden"]

# "ran": the code loaded and every test ran (each passed or failed on its own; a test that passes
# its own time or memory limit fails alone); "error": the code itself did not load (a syntax
# error, an exception or an exit at import), or the process ended before the tests did;
# "timeout": the whole run passed its time limit and was killed, or loading the code took longer
# than a test may; "memory": the code, not one test, passed its memory limit.
RunStatus = Literal["ran", "error", "timeout", "memory"]


@dataclass(frozen=True, slots=True)
class TestCase:
    __test__ = False  # a test's description, not a pytest class

    name: str
    source: str
    origin: TestOrigin = "tester"


@dataclass(frozen=True, slots=True)
class TestOutcome:
    __test__ = False

    name: str
    passed: bool
    # Why it failed, in one or a few lines ("f(2) returned 5, expected 4", the exception); "" when passed.
    message: str = ""
    origin: TestOrigin = "tester"


@dataclass(frozen=True, slots=True)
class RunReport:
    status: RunStatus
    outcomes: tuple[TestOutcome, ...] = ()
    duration_ms: float = 0.0
    # What the code and its tests printed (stdout and stderr, cut to a bounded length), and the
    # error that stopped the code from loading, if any.
    output: str = ""

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def failed(self) -> int:
        """Tests that did not pass; when the code never loaded, every test counts as failed."""
        return sum(1 for o in self.outcomes if not o.passed)

    def count(self, origin: TestOrigin) -> tuple[int, int]:
        """(passed, total) of the tests from ``origin``."""
        mine = [o for o in self.outcomes if o.origin == origin]
        return sum(1 for o in mine if o.passed), len(mine)


@dataclass(frozen=True, slots=True)
class RunLimits:
    """What a run may use. ``timeout_s`` is wall time for the whole run; each test also has
    ``test_timeout_s`` of its own so one endless loop fails one test, not all."""

    timeout_s: float = 10.0
    test_timeout_s: float = 3.0
    memory_mb: int = 512
    output_chars: int = 8_000


class CodeRunner(Protocol):
    """Runs Python and its tests somewhere the user's machine is safe from them."""

    async def run(
        self, code: str, tests: Sequence[TestCase], *, limits: RunLimits | None = None
    ) -> RunReport: ...


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the engine is about to run, for the user to allow or refuse."""

    agent: str
    chunk: int
    code: str
    tests: tuple[TestCase, ...] = field(default=())


# Asked before each run when set: True runs it, False skips it (the skip is reported as such).
ApproveRun = Callable[[RunRequest], Awaitable[bool]]
