"""One agent's live pane: who it is, what it is doing (from events), and its text as Markdown.

Text arrives in batches (one per frame, see ``MainScreen``) and goes to a ``StreamView``, which
renders only the Markdown block being written: a batch costs the same however long the answer
has grown. The view follows new text until the user scrolls up, and again once they are back at
the bottom.

While the pane only shows the latest paragraph ("filtered") or is hidden ("synthesis"), text is
kept aside and handed to the view in one piece when the full view comes back.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from facilitair_tui.summaries import clock
from facilitair_tui.tui.session_view import AgentView, Verbosity
from facilitair_tui.tui.widgets.stream_view import StreamView

_PHASE_CLASSES = ("generating", "done", "failed", "cancelled")
_STATUS_STYLES = {
    "generating": "bold $accent",
    "done": "bold $success",
    "failed": "bold $error",
    "cancelled": "bold $warning",
    "paused": "bold $warning",
    "cut at max tokens": "bold $warning",
    "cut by the provider": "bold $warning",
}


def agent_header(agent: AgentView, status: str, now: float) -> Content:
    """``A Architect  scripted:architect  generating  00:01.50  12 tok``"""
    elapsed = agent.elapsed(now)
    tokens = f"{'~' if agent.tokens_estimated else ''}{agent.tokens} tok"
    parts: list[str | tuple[str, str]] = [
        (f"{agent.icon} {agent.title}", "bold"),
        "  ",
        (agent.model or "…", "dim"),
        "  ",
        (status, _STATUS_STYLES.get(status, "dim")),
    ]
    if elapsed is not None:
        parts += ["  ", clock(elapsed)]
    parts += ["  ", (tokens, "dim")]
    return Content.assemble(*parts)


def latest_paragraph(text: str) -> str:
    """The last non-empty paragraph of ``text`` (paragraphs are separated by blank lines)."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    for paragraph in reversed(paragraphs):
        if paragraph:
            return paragraph
    return ""


class AgentPane(Vertical):
    """The live view of one agent. The screen calls its methods; it posts nothing."""

    verbosity: reactive[Verbosity] = reactive("all")

    def __init__(self, agent: AgentView, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.agent_name = agent.name
        self._agent = agent
        self._document: list[str] = []
        self._chunk_start = 0  # index in _document where the current chunk's text begins
        self._chunk_heading = ""
        self._unrendered: list[str] = []
        self._header_cache = ""

    def compose(self) -> ComposeResult:
        yield Static(agent_header(self._agent, "idle", 0.0), classes="pane-header")
        yield StreamView(classes="pane-text")
        with VerticalScroll(classes="pane-latest"):
            yield Static("", classes="pane-latest-text", markup=False)

    # ------------------------------------------------------------------ what the screen calls

    @property
    def text(self) -> str:
        """Everything this pane was given, including chunk headings: the full transcript."""
        return "".join(self._document)

    @property
    def rendered_source(self) -> str:
        """What the text view holds now (lags ``text`` while filtered or hidden)."""
        return self.query_one(".pane-text", StreamView).source

    def start_chunk(self, chunk: int, title: str) -> None:
        prefix = ""
        if self._document:
            current = "".join(self._document[self._chunk_start :])
            if current.count("```") % 2:  # close a code block the agent left open
                prefix = "\n```"
            prefix += "\n\n"
        self._chunk_heading = f"Chunk {chunk}: {title}"
        self._write(f"{prefix}#### {self._chunk_heading}\n\n")
        self._chunk_start = len(self._document)

    def add_text(self, text: str) -> None:
        self._write(text)

    def add_note(self, note: str) -> None:
        """A line the engine reported about this agent (an error, a restart), set apart as a quote."""
        separator = "\n\n" if self._document and not self.text.endswith("\n\n") else ""
        quoted = "\n".join(f"> {line}" for line in note.splitlines() or [""])
        self._write(f"{separator}{quoted}\n\n")

    def flush(self) -> None:
        """Hand the batch to the text view (full view) or to the latest-paragraph line."""
        if self.verbosity == "all":
            if self._unrendered:
                fragment = "".join(self._unrendered)
                self._unrendered.clear()
                self.query_one(".pane-text", StreamView).append(fragment)
        elif self.verbosity == "filtered":
            paragraph = latest_paragraph("".join(self._document[self._chunk_start :]))
            heading = self._chunk_heading
            line = f"{heading}\n\n{paragraph}" if heading and paragraph else heading or paragraph
            self.query_one(".pane-latest-text", Static).update(line)

    def show_state(self, agent: AgentView, status: str, now: float) -> None:
        header = agent_header(agent, status, now)
        if header.markup != self._header_cache:  # Content's == compares the text only
            self._header_cache = header.markup
            # One line high: its size never changes, no layout needed.
            self.query_one(".pane-header", Static).update(header, layout=False)
        # The classes (the border's colour) follow the agent's own phase, not the session's
        # pause: a paused agent's call is still open, and restyling three panes on p would
        # delay the frame that shows the pause. One update for the whole change.
        self.update_classes({f"-{phase}": agent.phase == phase for phase in _PHASE_CLASSES})

    # ------------------------------------------------------------------ internals

    def _write(self, text: str) -> None:
        if text:
            self._document.append(text)
            self._unrendered.append(text)

    def watch_verbosity(self, verbosity: Verbosity) -> None:
        self.set_class(verbosity == "filtered", "-filtered")
        self.flush()
