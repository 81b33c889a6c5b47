"""The command palette (ctrl+p): the main screen's actions, found by name.

Each command runs the same action as its key, on the screen the palette was opened from, and
is offered only when that action is possible there (the screen's ``check_action``).
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (command name, help text, action on the calling screen)
SESSION_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Pause / resume the session", "No new model call starts while paused; nothing is lost", "toggle_pause"),
    (
        "Cycle verbosity",
        "All tokens, then each agent's latest paragraph, then the synthesis only",
        "cycle_verbosity",
    ),
    ("Give feedback to the agents", "For the next chunk, or now (restarts the current chunk)", "feedback"),
    ("Stop the session", "Stop every agent and keep the partial output", "stop"),
    ("Write the files", "The session's code, tests and a README, to a directory", "write_files"),
    ("Show the keys (help)", "Every key of the app and of this screen", "app.help"),
    ("Browse the cache", "Cached solutions: search, preview, open, delete", "app.cache_inspector"),
    ("Session history", "Past sessions, newest first; replay one", "app.history"),
    ("Trace waterfall", "Where this session's time went: agents, model requests, waits", "app.waterfall"),
    ("Stats", "Latency, failures and cost per model, model pairs, charts", "app.stats"),
)


class SessionCommands(Provider):
    def _available(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        available = []
        for name, help_text, action in SESSION_COMMANDS:
            namespace, _, bare = action.rpartition(".")
            target = screen.app if namespace == "app" else screen
            if target.check_action(bare, ()) is True:
                available.append((name, help_text, action))
        return available

    async def _run(self, action: str) -> None:
        await self.screen.run_action(action)

    async def discover(self) -> Hits:
        for name, help_text, action in self._available():
            yield DiscoveryHit(name, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._available():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self._run, action), help=help_text)
