"""Offering a cached solution that may answer the task: the user decides, not a threshold.

The cache serves on its own only what it proves is the same request. When a cached task is
close but not proven the same (other words, other models, steered by feedback), a session asks
its ``ChooseOffer``: ``OfferChooser`` shows ``CacheOfferScreen`` on the app it belongs to, with
the cached task beside the new one, the words that differ highlighted, why it was offered, and
the cached answer to read. ``u`` (or Enter) uses it; ``r`` (or Escape) runs the agents fresh.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from facilitair_tui.core.cache import CachedAnswer
from facilitair_tui.library import age_words
from facilitair_tui.summaries import Marked, differing_words, money

PREVIEW_LINES = 40


def highlighted(words: Marked, style: str) -> Text:
    """The words, those marked in ``style``."""
    text = Text()
    for word, marked in words:
        if text:
            text.append(" ")
        text.append(word, style=style if marked else "")
    return text


class CacheOfferScreen(ModalScreen[bool]):
    """The cached task beside the new one; True uses the cached answer, False runs fresh."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u,enter", "answer(True)", "Use it", id="cache_offer.use", tooltip="Use the cached answer"),
        Binding("r,escape", "answer(False)", "Run fresh", id="cache_offer.fresh", tooltip="Run the agents"),
    ]

    def __init__(self, offered: CachedAnswer, asked: str) -> None:
        super().__init__()
        self.offered = offered
        self.asked = asked

    def compose(self) -> ComposeResult:
        offered = self.offered
        removed, added = differing_words(offered.task, self.asked)
        cached, new = highlighted(removed, "bold red strike"), highlighted(added, "bold green")
        cost = "unknown cost" if offered.cost_usd is None else money(offered.cost_usd)
        models = ", ".join(sorted(set(offered.models.values()))) or "models not recorded"
        made = f"made {age_words(offered.age_s)} by {models}"
        lines = offered.output.strip().splitlines()
        preview = "\n".join(lines[:PREVIEW_LINES])
        if len(lines) > PREVIEW_LINES:
            preview += f"\n… {len(lines) - PREVIEW_LINES} more lines"
        with Vertical(id="cache-offer-dialog", classes="dialog"):
            yield Static("A cached answer may fit this task", classes="dialog-title")
            with Horizontal(id="cache-offer-tasks"):
                with Vertical(classes="cache-offer-task"):
                    yield Static("Cached task", classes="cache-offer-label")
                    yield Static(cached, id="cache-offer-cached")
                with Vertical(classes="cache-offer-task"):
                    yield Static("Your task", classes="cache-offer-label")
                    yield Static(new, id="cache-offer-asked")
            yield Static(
                Text(f"Why offered: {offered.matched_on}"), id="cache-offer-why", classes="dialog-detail"
            )
            yield Static(
                Text(f"It was {made}; it took {round(offered.duration_s)} s and {cost}."),
                classes="dialog-detail",
            )
            with VerticalScroll(id="cache-offer-preview"):
                yield Static(Text(preview), id="cache-offer-answer")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Use it (u)", id="cache-offer-use", variant="primary")
                yield Button("Run fresh (r)", id="cache-offer-fresh")

    def on_mount(self) -> None:
        self.query_one("#cache-offer-use", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "cache-offer-use")

    def action_answer(self, use: bool) -> None:
        self.dismiss(use)


class OfferChooser:
    """``core.cache.ChooseOffer`` for the TUI: asks on ``app`` (no app yet: runs fresh)."""

    def __init__(self) -> None:
        self.app: App[Any] | None = None

    async def __call__(self, asked: str, offered: CachedAnswer) -> bool:
        app = self.app
        if app is None:
            return False
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(use: bool | None) -> None:
            if not answered.done():
                answered.set_result(bool(use))

        app.push_screen(CacheOfferScreen(offered, asked), settle)
        return await answered
