"""The top of the main screen: the task on one line, the strategy, who runs on what, the cache.

The cache field says "not checked" until a cache lookup really happens (a later part of the
work feeds it through ``show_cache``); it never pretends one did.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

CACHE_NOT_CHECKED = "not checked"


def one_line(text: str) -> str:
    """The task with its line breaks and runs of spaces folded, for a one-line display."""
    return " ".join(text.split())


def models_line(strategy: str, models: Mapping[str, str], titles: Mapping[str, str], cache: str) -> Content:
    parts: list[str | tuple[str, str]] = [("Strategy ", "dim"), (strategy.upper() or "…", "bold")]
    if len(set(models.values())) == 1:
        parts += ["  ", ("every role on ", "dim"), next(iter(models.values()))]
    else:
        for name, model in models.items():
            parts += ["  ", (f"{titles.get(name, name)} ", "dim"), model]
    parts += ["  ", ("cache: ", "dim"), cache]
    return Content.assemble(*parts)


class SessionHeader(Vertical):
    def __init__(self, task: str, titles: Mapping[str, str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._task_text = task
        self._titles = dict(titles)
        self._strategy = ""
        self._models: dict[str, str] = {}
        self.cache_status = CACHE_NOT_CHECKED

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("Task ", "dim"), one_line(self._task_text)), classes="header-task")
        yield Static(self._models_line(), classes="header-models")

    def show_session(self, task: str, strategy: str, models: Mapping[str, str]) -> None:
        self._task_text, self._strategy, self._models = task, strategy, dict(models)
        self.query_one(".header-task", Static).update(Content.assemble(("Task ", "dim"), one_line(task)))
        self.query_one(".header-models", Static).update(self._models_line())

    def show_cache(self, status: str) -> None:
        self.cache_status = status
        self.query_one(".header-models", Static).update(self._models_line())

    def _models_line(self) -> Content:
        return models_line(self._strategy, self._models, self._titles, self.cache_status)
