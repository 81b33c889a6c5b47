"""The synthesizer's panel: its live status and raw stream, then the synthesis of each chunk.

A synthesis shows the chunk (k/n and title), the agreed points, the debated points with each
agent's position, the confidence computed for it and the parts it was computed from ("not
measured" when none could be: we never invent one), the merged text as Markdown, and a marker
when the answer did not follow the format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static

from facilitair_tui.core import events as ev
from facilitair_tui.core.synthesis import parse_synthesis
from facilitair_tui.summaries import confidence_words
from facilitair_tui.tui.session_view import AgentView
from facilitair_tui.tui.widgets.agent_pane import agent_header

WAITING_TEXT = "No synthesis yet: it appears when every agent of a chunk is done."


def synthesis_title(event: ev.Synthesis, title: str, total: int, cost_usd: float | None = 0.0) -> Content:
    confidence = confidence_words(event).removeprefix("confidence ")
    cost = "unknown" if cost_usd is None else f"${cost_usd:.4f}"
    parts: list[str | tuple[str, str]] = [
        (f"Chunk {event.chunk}/{total}: {title}", "bold"),
        "  ",
        ("confidence ", "dim"),
        confidence,
        "  ",
        ("cost ", "dim"),
        cost,
    ]
    if not event.parsed:
        parts += ["  ", ("free-form: the synthesizer did not follow the format", "bold $warning")]
    return Content.assemble(*parts)


def synthesis_points(
    agreed: Sequence[str], debated: Sequence[ev.DebatedPoint], titles: Mapping[str, str]
) -> Content:
    parts: list[str | tuple[str, str]] = [("Agreed\n", "bold $success")]
    if agreed:
        parts += [f"  ✓ {point}\n" for point in agreed]
    else:
        parts.append(("  (none)\n", "dim"))
    parts.append(("Debated\n", "bold $warning"))
    if debated:
        for debate in debated:
            parts.append(f"  • {debate.point}\n")
            for agent, position in debate.positions.items():
                parts += [("      " + titles.get(agent, agent) + ": ", "bold"), f"{position}\n"]
    else:
        parts.append(("  (none)\n", "dim"))
    return Content.assemble(*parts).rstrip()


def live_view(text: str, titles: Mapping[str, str]) -> Content | str:
    """The synthesizer's answer as it is being written: the JSON it writes shown as what it says
    so far (points, then the merged text), anything else as it came."""
    if not text.lstrip().startswith("{"):
        return text
    so_far = parse_synthesis(text, list(titles))
    if not so_far.parsed:
        return text
    merged = so_far.text if '"merged"' in text else ""
    return Content.assemble(
        synthesis_points(so_far.agreed, so_far.debated, titles),
        ("\n\nMerged\n", "bold"),
        merged or ("…", "dim"),
    )


class SynthesisPanel(Vertical):
    """The screen calls its methods; it posts nothing."""

    def __init__(
        self,
        synthesizer: AgentView,
        titles: Mapping[str, str],
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.agent_name = synthesizer.name
        self._synthesizer = synthesizer
        self._titles = dict(titles)
        self._live: list[str] = []
        self._live_dirty = False
        self._header_cache = ""
        self.synthesis: ev.Synthesis | None = None

    def compose(self) -> ComposeResult:
        yield Static(agent_header(self._synthesizer, "idle", 0.0), classes="pane-header")
        with VerticalScroll(classes="pane-scroll"):
            # The synthesizer's raw answer while it writes, above the previous synthesis.
            yield Static("", classes="synthesis-live", markup=False)
            yield Static(WAITING_TEXT, classes="synthesis-title", markup=False)
            yield Static("", classes="synthesis-points")
            yield Markdown(classes="synthesis-merged")

    @property
    def live_text(self) -> str:
        return "".join(self._live)

    @property
    def merged_source(self) -> str:
        return self.query_one(".synthesis-merged", Markdown).source

    def start_chunk(self, chunk: int, title: str) -> None:
        self._live.clear()
        self._live_dirty = True

    def add_text(self, text: str) -> None:
        self._live.append(text)
        self._live_dirty = True

    def add_note(self, note: str) -> None:
        self.add_text(f"\n[{note}]\n")

    async def show_synthesis(
        self, event: ev.Synthesis, title: str, total: int, cost_usd: float | None = 0.0
    ) -> None:
        self.synthesis = event
        self.query_one(".synthesis-title", Static).update(synthesis_title(event, title, total, cost_usd))
        self.query_one(".synthesis-points", Static).update(
            synthesis_points(event.agreed, event.debated, self._titles)
        )
        await self.query_one(".synthesis-merged", Markdown).update(event.text or "_(empty)_")
        self._live.clear()
        self._live_dirty = True
        self.add_class("-has-synthesis")
        self.query_one(".pane-scroll", VerticalScroll).scroll_home(animate=False)

    def flush(self) -> None:
        if self._live_dirty:
            self._live_dirty = False
            self.query_one(".synthesis-live", Static).update(live_view(self.live_text, self._titles))
            self.set_class(bool(self._live), "-streaming")

    def show_state(self, agent: AgentView, status: str, now: float) -> None:
        header = agent_header(agent, status, now)
        if header.markup != self._header_cache:  # Content's == compares the text only
            self._header_cache = header.markup
            # One line high: its size never changes, no layout needed.
            self.query_one(".pane-header", Static).update(header, layout=False)
