"""The session's final output, split by stage into Code / Architecture / Review notes tabs.

The output document (``core.deliverable``) has one "## Title" section per chunk, the files
under "## Code" and "## Tests", and the review's "## Open points" (and, when the session was
stopped, an "(interrupted)" section holding the unfinished text). Implementation, Code and Tests
go to Code, Requirements and Architecture to Architecture, Review and its open points to Review
notes; the whole document is always in the last tab, and is what opens first when no section
matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static, TabbedContent, TabPane

from facilitair_tui.core import events as ev
from facilitair_tui.core.deliverable_layout import CODE_HEADING, OPEN_POINTS_HEADING, TESTS_HEADING
from facilitair_tui.core.markdown_fences import fenced_lines, fences
from facilitair_tui.summaries import finished_summary

_HEADING = re.compile(r"^## (?P<title>.+?)\s*$")

# Tab id -> (tab label, title prefixes of the chunk sections it shows, the document's own sections).
TABS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "output-code": ("Code", ("implementation",), (CODE_HEADING, TESTS_HEADING)),
    "output-architecture": ("Architecture", ("requirements", "architecture"), ()),
    "output-review": ("Review notes", ("review",), (OPEN_POINTS_HEADING,)),
}
FULL_TAB = "output-full"


@dataclass
class OutputSections:
    by_tab: dict[str, list[str]] = field(default_factory=lambda: {tab: [] for tab in TABS})

    @property
    def matched(self) -> bool:
        return any(self.by_tab.values())

    def text(self, tab: str) -> str:
        return "\n\n".join(section.strip() for section in self.by_tab[tab])


def _tab_for(title: str) -> str | None:
    key = title.lower().removesuffix("(interrupted)").strip()
    for tab, (_label, prefixes, sections) in TABS.items():
        if title in sections or key.startswith(prefixes):
            return tab
    return None


def split_output(output: str) -> OutputSections:
    """Sort the document's "## Title" sections into the tabs (headings inside code are ignored)."""
    sections: list[tuple[str, list[str]]] = []
    lines = output.splitlines()
    in_code = fenced_lines(lines, list(fences(lines)))
    for line, fenced in zip(lines, in_code, strict=True):
        heading = None if fenced else _HEADING.match(line)
        if heading is not None:
            sections.append((heading["title"], [line]))
        elif sections:
            sections[-1][1].append(line)
    result = OutputSections()
    for title, section in sections:
        tab = _tab_for(title)
        if tab is not None:
            result.by_tab[tab].append("\n".join(section))
    return result


class FinalOutput(Vertical):
    """Shown once the session has finished; the screen calls ``show``."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="output-summary")
        with TabbedContent(id="output-tabs"):
            for tab, (label, _prefixes, _sections) in TABS.items():
                with TabPane(label, id=tab), VerticalScroll(classes="output-scroll"):
                    yield Markdown(classes="output-text")
            with TabPane("Full output", id=FULL_TAB), VerticalScroll(classes="output-scroll"):
                yield Markdown(classes="output-text")

    def text_of(self, tab: str) -> str:
        return self.query_one(f"#{tab} .output-text", Markdown).source

    async def show(self, event: ev.SessionFinished) -> None:
        style = {"done": "bold $success", "stopped": "bold $warning", "failed": "bold $error"}[event.status]
        await self.show_document(event.output, Content.styled(finished_summary(event), style))

    async def show_document(self, output: str, summary_line: Content) -> None:
        """Any output document (a session's, a cached solution's) under a one-line summary."""
        self.query_one(".output-summary", Static).update(summary_line)
        sections = split_output(output)
        empty = "_Nothing for this part: the session ended before this stage was written._"
        for tab in TABS:
            text = sections.text(tab)
            await self.query_one(f"#{tab} .output-text", Markdown).update(text or empty)
        whole = output.strip() or "_The session ended before any agent wrote anything._"
        await self.query_one(f"#{FULL_TAB} .output-text", Markdown).update(whole)
        tabs = self.query_one(TabbedContent)
        if sections.matched:
            first = next(tab for tab in TABS if sections.by_tab[tab])
            tabs.active = "output-code" if sections.by_tab["output-code"] else first
        else:
            tabs.active = FULL_TAB
