"""The TUI's view of a session, folded from events alone (no Textual involved)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from facilitair_tui.core import events as ev
from facilitair_tui.core.workflow import load_workflow
from facilitair_tui.tui.session_view import SessionView, next_verbosity

WORKFLOW = load_workflow(Path(__file__).parents[1] / "data" / "scripted_workflow.toml")
SID = "s"


def view() -> SessionView:
    v = SessionView.for_workflow(WORKFLOW)
    v.apply(
        ev.SessionStarted(
            session_id=SID,
            t=0.0,
            task="t",
            context={},
            strategy="test",
            workflow="scripted",
            models={"architect": "scripted:architect", "coder": "scripted:coder"},
            chunks=["Requirements", "Architecture"],
        )
    )
    return v


def started(agent: str, t: float, chunk: int = 1) -> ev.AgentStarted:
    return ev.AgentStarted(session_id=SID, t=t, agent=agent, chunk=chunk, model=f"scripted:{agent}")


def finished(
    agent: str, t: float, status: ev.AgentStatus = "done", cost: float | None = 0.01
) -> ev.AgentFinished:
    return ev.AgentFinished(
        session_id=SID,
        t=t,
        agent=agent,
        chunk=1,
        input_tokens=10,
        output_tokens=3,
        latency_ms=1.0,
        cost_usd=cost,
        status=status,
    )


def test_before_a_chunk_everyone_is_idle_and_the_models_come_from_session_started() -> None:
    v = view()
    assert v.state == "running"
    assert {v.status(name) for name in v.agents} == {"idle"}
    assert v.agents["architect"].model == "scripted:architect"
    assert v.total_chunks == 2 and v.title_of(2) == "Architecture"


def test_statuses_follow_the_events() -> None:
    v = view()
    v.apply(ev.ChunkStarted(session_id=SID, t=1.0, chunk=1, title="Requirements", total=2))
    assert v.status("architect") == "waiting"
    assert v.status("coder") == "waiting"
    v.apply(started("architect", 1.5))
    assert v.status("architect") == "generating"
    assert v.status("coder") == "reading Architect"  # it reads the architect, who is writing
    assert v.status("reviewer") == "reading Architect"
    assert v.status("synthesizer") == "waiting"  # never "reading": it merges finished outputs
    v.apply(ev.Token(session_id=SID, t=2.0, agent="architect", chunk=1, text="x"))
    v.apply(started("coder", 2.5))
    assert v.status("reviewer") == "reading Architect, Coder"
    assert v.live_output_tokens() == 1
    # A token that merges deltas which piled up counts each of them.
    v.apply(ev.Token(session_id=SID, t=2.6, agent="coder", chunk=1, text="a b c", deltas=3))
    assert v.live_output_tokens() == 4

    v.apply(ev.Paused(session_id=SID, t=3.0))
    assert v.state == "paused"
    assert v.status("architect") == v.status("reviewer") == "paused"
    v.apply(ev.Resumed(session_id=SID, t=4.0))
    assert v.status("architect") == "generating"

    v.apply(finished("architect", 5.0))
    v.apply(finished("coder", 5.5, status="failed"))
    assert v.status("architect") == "done" and v.status("coder") == "failed"
    assert v.status("reviewer") == "waiting"
    assert v.agents["architect"].elapsed(now=99.0) == 3.5  # agent_started t to agent_finished t


def test_elapsed_runs_to_now_while_generating() -> None:
    v = view()
    v.apply(ev.ChunkStarted(session_id=SID, t=1.0, chunk=1, title="Requirements", total=2))
    v.apply(started("architect", 2.0))
    assert v.agents["architect"].elapsed(now=v.now) == 0.0
    v.apply(ev.Token(session_id=SID, t=4.5, agent="architect", chunk=1, text="x"))
    assert v.agents["architect"].elapsed(now=v.now) == 2.5
    assert v.agents["coder"].elapsed(now=v.now) is None


def test_cost_is_unknown_once_any_call_has_no_price() -> None:
    v = view()
    v.apply(ev.ChunkStarted(session_id=SID, t=1.0, chunk=1, title="Requirements", total=2))
    v.apply(finished("architect", 2.0, cost=0.25))
    assert v.cost_usd == 0.25
    assert (v.input_tokens, v.output_tokens) == (10, 3)
    v.apply(finished("coder", 3.0, cost=None))
    assert v.cost_usd is None
    v.apply(finished("reviewer", 4.0, cost=0.25))
    assert v.cost_usd is None


def test_a_restart_is_recognised_and_a_session_end_leaves_no_false_waiting() -> None:
    v = view()
    v.apply(ev.ChunkStarted(session_id=SID, t=1.0, chunk=1, title="Requirements", total=2))
    first = started("architect", 1.5)
    assert not v.is_restart(first)
    v.apply(first)
    v.apply(finished("architect", 2.0, status="cancelled"))
    assert v.is_restart(started("architect", 2.5))
    v.apply(
        ev.SessionFinished(
            session_id=SID,
            t=3.0,
            status="stopped",
            output="",
            input_tokens=1,
            output_tokens=2,
            cost_usd=None,
            duration_s=3.0,
        )
    )
    assert v.state == "stopped" and v.finished
    assert v.status("coder") == "idle"  # it never ran
    assert v.status("architect") == "cancelled"
    v.apply(ev.Paused(session_id=SID, t=4.0))
    assert v.state == "stopped"


def test_verbosity_cycles() -> None:
    assert next_verbosity("all") == "filtered"
    assert next_verbosity("filtered") == "synthesis"
    assert next_verbosity("synthesis") == "all"


def test_the_view_model_imports_no_textual() -> None:
    code = "import sys, facilitair_tui.tui.session_view\nprint('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_answer_cut_at_max_tokens_shows_as_cut_not_done() -> None:
    import msgspec

    v = view()
    v.apply(started("architect", 1.0))
    v.apply(msgspec.structs.replace(finished("architect", 2.0), stop_reason="max_tokens"))
    v.apply(started("coder", 1.0))
    v.apply(finished("coder", 2.5))
    assert v.status("architect") == "cut at max tokens"
    assert v.status("coder") == "done"


def test_the_cli_says_an_answer_was_cut() -> None:
    import io

    import msgspec
    from rich.console import Console

    from facilitair_tui.cli.render import LiveRenderer

    out = io.StringIO()
    renderer = LiveRenderer(Console(file=out, width=120, highlight=False), WORKFLOW)
    for event in (
        ev.SessionStarted(
            session_id=SID, task="t", context={}, strategy="test", workflow="scripted", chunks=["A"]
        ),
        started("architect", 1.0),
        msgspec.structs.replace(finished("architect", 2.0), stop_reason="max_tokens"),
        started("coder", 1.0),
        finished("coder", 2.5),
    ):
        renderer.handle(event)
    printed = out.getvalue()
    assert "✂ Architect cut at max tokens: 3 tokens out" in printed
    assert "✓ Coder done: 3 tokens out" in printed
