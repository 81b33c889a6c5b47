"""Write SVG screenshots of the TUI's main states into screenshots/ (``make screenshots``).

Every state is a scripted session (the UI tests' scripted provider and gate, so a session is
held at an exact point without sleeping) on a fake clock with the live clock off: the same
script gives the same pictures on every run. The task is a small JWT auth API; the agents'
replies are written out below.

Then real sessions: the recordings in ``screenshots/sessions/`` (the events of a session run on
a real model, ``facilitair collaborate --json``) replayed in the TUI to their end, no model
called: what the agents wrote there is what that model wrote.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from facilitair_tui.core.events import AnyEvent, from_json  # noqa: E402
from facilitair_tui.core.orchestrator import Collaboration, SessionSpec  # noqa: E402
from facilitair_tui.core.workflow import packaged_workflows  # noqa: E402
from facilitair_tui.providers.scripted import Reply, SingleProviderResolver  # noqa: E402
from facilitair_tui.replay import Replay, replay_workflow  # noqa: E402
from facilitair_tui.store import SessionStore  # noqa: E402
from facilitair_tui.tui.app import FacilitairApp  # noqa: E402
from facilitair_tui.tui.entry_options import EntryOptions  # noqa: E402
from facilitair_tui.tui.screens.main import MainScreen  # noqa: E402
from tests.support.scripted import chunk_of  # noqa: E402
from tests.support.stats_store import fill_demo_store  # noqa: E402
from tests.ui.support import (  # noqa: E402
    WORKFLOW,
    FakeClock,
    GatedProvider,
    Hold,
    Script,
    hold_at,
    hold_from_chunk,
    wait_until,
)

OUT = ROOT / "screenshots"
TASK = "Build a small REST API with JWT authentication: sign-up, login, refresh, and a protected /me"

ARCHITECT = {
    1: """- Endpoints: `POST /auth/signup`, `POST /auth/login`, `POST /auth/refresh`, `GET /me`
- Access token: JWT (HS256), 15 min; refresh token: opaque, 7 days, stored hashed
- Passwords hashed with argon2id; never logged
- Errors as JSON `{"error": ..., "detail": ...}` with 401 / 409 / 422
""",
    2: """- FastAPI app, one router per concern: `auth`, `users`
- SQLite via SQLAlchemy; tables `users` and `refresh_tokens`
- Secret key from the environment (`JWT_SECRET`), refused if shorter than 32 bytes
""",
    3: """- Build the token helpers first, then the routes on top of them
- Dependency `current_user` decodes the bearer token once per request
""",
    4: """- Refresh tokens rotate on every use: a reused one revokes the whole family
- Rate-limit `/auth/login` to 5 attempts per minute per IP
""",
}

CODER = {
    1: """Requirements as a first test list:

```python
def test_login_returns_tokens(client):
    r = client.post("/auth/login", json={"email": "a@b.c", "password": "s3cret!"})
    assert r.status_code == 200
    assert {"access_token", "refresh_token"} <= r.json().keys()
```
""",
    2: """```python
class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
```
""",
    3: """```python
def create_access_token(user_id: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + ACCESS_TTL}
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def current_user(token: str = Depends(bearer), db: Session = Depends(get_db)) -> User:
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(401, "invalid or expired token") from None
    return db.get(User, int(claims["sub"]))
```
""",
    4: """```python
@router.post("/auth/refresh")
def refresh(body: RefreshIn, db: Session = Depends(get_db)) -> TokenPair:
    stored = db.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256(body.token)))
    if stored is None or stored.expires_at < datetime.now(UTC):
        raise HTTPException(401, "refresh token unknown or expired")
    return rotate(db, stored)
```
""",
}

REVIEWER = {
    1: """- Pin `algorithms=["HS256"]` when decoding, or `alg: none` tokens get through
- Say what `/me` returns for a deleted user (401, not 500)
""",
    2: """- Index `refresh_tokens.user_id`: revoking a family scans by user
- Keep the secret out of the settings' `repr`
""",
    3: """- `current_user` must 401 when the user no longer exists; `db.get` returns None
- Compare refresh token hashes in constant time
""",
    4: """- Looks complete; add a test for refresh-token reuse revoking the family
""",
}

SYNTHESIS = {
    1: """AGREED:
- four endpoints: signup, login, refresh, /me
- JWT access tokens (HS256, 15 min), opaque refresh tokens (7 days, stored hashed)
- argon2id for passwords
DEBATED:
- refresh token format | architect: opaque and stored | coder: a second JWT would need no table
CONFIDENCE: 0.85
MERGED:
A JWT auth API with **four endpoints**. Short-lived HS256 access tokens, opaque refresh tokens \
stored as hashes, argon2id passwords, JSON errors with 401/409/422. Decoding pins the algorithm.
""",
    2: """AGREED:
- FastAPI with `auth` and `users` routers; SQLite through SQLAlchemy
- secret from `JWT_SECRET`, at least 32 bytes
DEBATED:
- migrations | architect: Alembic now | coder: create_all until the schema settles
CONFIDENCE: 0.8
MERGED:
FastAPI app with two routers, tables `users` and `refresh_tokens` (indexed by user), the secret \
read from the environment and kept out of logs.
""",
    3: """AGREED:
- token helpers first, routes on top; one `current_user` dependency
- 401 for a bad token and for a user that no longer exists
DEBATED:
CONFIDENCE: 0.9
MERGED:
`create_access_token` and `current_user` as written by the coder, with the reviewer's fix: a \
missing user is a 401. Refresh hashes are compared in constant time.
""",
    4: """AGREED:
- refresh tokens rotate; reuse revokes the family
- login rate-limited to 5 per minute per IP
DEBATED:
CONFIDENCE: 0.85
MERGED:
Ready to build. Remaining work: a test for refresh-token reuse, and the login rate limit.
""",
}

REPLIES = {"architect": ARCHITECT, "coder": CODER, "reviewer": REVIEWER, "synthesizer": SYNTHESIS}


def deltas(text: str) -> list[str]:
    """Model-like deltas: one word with the whitespace after it."""
    return re.findall(r"\S+\s*|\s+", text)


def script() -> Script:
    return Script(
        replies={
            (agent, chunk): Reply(deltas(text))
            for agent, by_chunk in REPLIES.items()
            for chunk, text in by_chunk.items()
        }
    )


def new_app(hold: Hold) -> tuple[FacilitairApp, GatedProvider]:
    provider = GatedProvider(script(), hold)
    if hold is hold_nothing:
        provider.gate.set()
    spec = SessionSpec(
        task=TASK,
        workflow=WORKFLOW,
        strategy="test",
        context={"language": "python", "framework": "fastapi"},
        session_id="screenshots",
    )
    collaboration = Collaboration(spec, SingleProviderResolver(provider), clock=FakeClock())
    return FacilitairApp(collaboration, live_clock=False), provider


def hold_nothing(request: object) -> int | None:
    return None


def settled(app: FacilitairApp, provider: GatedProvider, held: int) -> Callable[[], bool]:
    """The gate holds ``held`` calls, the screen has every delta they sent, and each pane shows
    all the text it was given."""

    def check() -> bool:
        screen = app.main_screen
        if screen is None or provider.held != held:
            return False
        chunk = screen.view.chunk
        sent = sum(len(call.delivered) for call in provider.calls if chunk_of(call.request) == chunk)
        applied = sum(screen.view.agents[name].streamed for name in screen.view.roles)
        return sent == applied and all(pane.rendered_source == pane.text for pane in screen.panes)

    return check


Steps = Callable[[FacilitairApp, GatedProvider, Pilot[Any]], Awaitable[None]]

# Mid-run: the architect has written most of its bullets, the coder is in its test, the reviewer
# has started reading them.
MID_RUN = hold_at({("architect", 1): 40, ("coder", 1): 22, ("reviewer", 1): 12})


async def mid_run(app: FacilitairApp, provider: GatedProvider, pilot: Pilot[Any]) -> None:
    await wait_until(pilot, settled(app, provider, held=3), "the session is held mid-chunk", attempts=1000)


async def help_open(app: FacilitairApp, provider: GatedProvider, pilot: Pilot[Any]) -> None:
    await mid_run(app, provider, pilot)
    await pilot.press("f1")
    await pilot.pause(0.05)


async def after_chunk_1(app: FacilitairApp, provider: GatedProvider, pilot: Pilot[Any]) -> None:
    def shown() -> bool:
        screen = app.main_screen
        return screen is not None and screen.view.chunk == 2 and bool(screen.synthesis_panel.merged_source)

    await wait_until(pilot, shown, "chunk 1's synthesis is shown", attempts=1000)
    await wait_until(pilot, settled(app, provider, held=1), "chunk 2's architect is held", attempts=1000)


async def finished(app: FacilitairApp, provider: GatedProvider, pilot: Pilot[Any]) -> None:
    def done() -> bool:
        screen = app.main_screen
        return screen is not None and screen.view.finished

    await wait_until(pilot, done, "the session finished", attempts=3000)
    await pilot.pause(0.1)


SHOTS: list[tuple[str, tuple[int, int], Hold, Steps]] = [
    ("main-wide.svg", (160, 45), MID_RUN, mid_run),
    ("main-80x24.svg", (80, 24), MID_RUN, mid_run),
    ("synthesis-chunk-1.svg", (160, 45), hold_from_chunk(2), after_chunk_1),
    ("help.svg", (140, 40), MID_RUN, help_open),
    ("final-output.svg", (160, 45), hold_nothing, finished),
]


async def shoot(name: str, size: tuple[int, int], hold: Hold, steps: Steps) -> None:
    app, provider = new_app(hold)
    async with app.run_test(size=size) as pilot:
        await steps(app, provider, pilot)
        # Let the Markdown widgets finish laying out what they were given (times come from the
        # fake clock, so waiting here changes nothing in the picture but the layout).
        await pilot.pause(0.3)
        app.save_screenshot(filename=name, path=str(OUT))
        provider.gate.set()
        main = app.main_screen
        if main is not None:
            main.collaboration.stop()
    print(f"wrote {(OUT / name).relative_to(ROOT)}")


# Recordings of real sessions -> the screenshot of their end.
# Recording -> (screenshot, keys pressed once it has played).
RECORDINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "url-shortener-qwen2.5-coder-0.5b.jsonl": ("real-session-qwen.svg", ()),
    # A real team session of bench/collaboration_quality.py: HumanEval/9, whose first answer
    # failed the task's examples and was repaired; "o" shows the agents' panes and their runs.
    "humaneval-9-team-qwen2.5-coder-0.5b.jsonl": ("code-session-qwen.svg", ("o",)),
    # A default-workflow session recorded with its model requests: "t" opens its trace waterfall,
    # the cursor on the implementation chunk's coder.
    "rate-limiter-qwen2.5-coder-0.5b.jsonl": ("waterfall.svg", ("t", *["down"] * 21)),
}


def recorded_events(recording: Path) -> list[AnyEvent]:
    return [from_json(line) for line in recording.read_bytes().splitlines() if line.strip()]


async def shoot_recording(
    recording: Path, name: str, size: tuple[int, int] = (160, 50), keys: tuple[str, ...] = ()
) -> None:
    events = recorded_events(recording)
    replay = Replay(events, replay_workflow(events, packaged_workflows()), speed=10_000)
    # As the history screen plays a recording: its main screen over the task entry.
    app = FacilitairApp(entry=EntryOptions(strategies=("local",), default_strategy="local"), live_clock=False)
    async with app.run_test(size=size) as pilot:
        await app.push_screen(MainScreen(replay, live_clock=False))

        def done() -> bool:
            screen = app.main_screen
            return screen is not None and screen.view.finished

        await wait_until(pilot, done, "the replay finished", attempts=3000)
        await pilot.pause(0.3)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        app.save_screenshot(filename=name, path=str(OUT))
    print(f"wrote {(OUT / name).relative_to(ROOT)}")


async def shoot_stats(name: str = "stats.svg", size: tuple[int, int] = (160, 62)) -> None:
    """The stats screen over a store of made-up sessions (a week, three model pairings): it shows
    what the screen draws, not a measurement."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore.open(Path(tmp) / "sessions.db")
        fill_demo_store(store, time.time())
        app = FacilitairApp(
            entry=EntryOptions(strategies=("local",), default_strategy="local"), store=store, live_clock=False
        )
        async with app.run_test(size=size) as pilot:
            app.action_stats()
            await pilot.pause()
            await app.workers.wait_for_complete()  # the screen reads the store in a thread
            await pilot.pause(0.2)  # and draws what it read (tables, charts) on the next frames
            app.save_screenshot(filename=name, path=str(OUT))
        store.close()
    print(f"wrote {(OUT / name).relative_to(ROOT)}")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, size, hold, steps in SHOTS:
        await shoot(name, size, hold, steps)
    for recording, (name, keys) in RECORDINGS.items():
        await shoot_recording(OUT / "sessions" / recording, name, keys=keys)
    await shoot_stats()


if __name__ == "__main__":
    asyncio.run(main())
