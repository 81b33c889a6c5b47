"""The synthesizer's answer while it streams: JSON shown as what it says so far."""

from __future__ import annotations

import json

from textual.content import Content

from facilitair_tui.tui.widgets.synthesis_panel import live_view

TITLES = {"architect": "Architect", "coder": "Coder", "reviewer": "Reviewer", "synthesizer": "Synthesizer"}
ANSWER = json.dumps(
    {
        "agreed": ["Store links in SQLite"],
        "debated": [{"point": "Code length", "positions": {"architect": "6", "coder": "8", "reviewer": "8"}}],
        "merged": "Use **SQLite** and 8-character codes.",
    }
)


def plain(view: Content | str) -> str:
    return view.plain if isinstance(view, Content) else view


def test_json_in_progress_shows_its_points_and_no_merged_text_yet() -> None:
    partial = ANSWER[: ANSWER.index('"debated"') + 30]
    shown = plain(live_view(partial, TITLES))
    assert "✓ Store links in SQLite" in shown
    assert '"agreed"' not in shown  # the points, not the JSON
    assert shown.rstrip().endswith("…")


def test_the_whole_answer_shows_points_positions_and_merged_text() -> None:
    shown = plain(live_view(ANSWER, TITLES))
    assert "• Code length" in shown and "Coder: 8" in shown
    assert "Use **SQLite** and 8-character codes." in shown


def test_anything_that_is_not_json_is_shown_as_it_came() -> None:
    for text in ("AGREED:\n- x\nMERGED: y", "Here is { a brace", ""):
        assert live_view(text, TITLES) == text
