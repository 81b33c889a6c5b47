"""Eval runs in the session store: continued with the same parameters, each result committed at
once, progress as it goes, a stop part way; and the report's pairing of a team with one call.

The run goes through ``facilitair_tui.evaluation`` in process, on the local OpenAI-compatible test
server (tests/support/eval_problems.py answers as a small model would), never a real model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from facilitair_tui.evaluation.attempts import Setup, Stop
from facilitair_tui.evaluation.problems import load_problems
from facilitair_tui.evaluation.report import comparisons, model_label
from facilitair_tui.evaluation.runs import Progress, params_for, run_eval
from facilitair_tui.store import SessionStore, StoreError
from facilitair_tui.store.evals import EvalParams, EvalResult, EvalRun
from tests.support.eval_problems import answer, asked_about, write_problems
from tests.support.openai_sse_server import OpenAISSEServer

MODEL = "openai:gpt-4o-mini"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAISSEServer]:
    monkeypatch.setenv("FACILITAIR_HOME", str(tmp_path / "home"))
    with OpenAISSEServer() as srv:
        srv.script_for = answer
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-eval-0123456789abcdef")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        yield srv


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    opened = SessionStore.open(tmp_path / "sessions.db")
    yield opened
    opened.close()


async def test_progress_a_stop_part_way_and_the_rest_on_the_next_start(
    server: OpenAISSEServer, store: SessionStore, tmp_path: Path
) -> None:
    problems = load_problems(str(write_problems(tmp_path / "toy.jsonl")))
    setup = Setup("code", model=MODEL)
    params = params_for(str(tmp_path / "toy.jsonl"), "single", setup, None)
    stop = Stop()
    seen: list[Progress] = []

    def stop_after_the_first(progress: Progress) -> None:
        seen.append(progress)
        stop.request()  # as Ctrl-C would, once add's result is known

    first = await run_eval(store, problems, params, setup, stop=stop, on_progress=stop_after_the_first)
    assert (first.stopped, first.problems, first.total, first.passed) == ("stopped", 1, 3, 1)
    (one,) = seen
    assert (one.done, one.total, one.passed, one.resumed, one.result.task_id) == (1, 3, 1, False, "Toy/add")
    assert one.eta_s is not None and one.eta_s >= 0
    with SessionStore.open(tmp_path / "sessions.db") as other:  # committed, seen from elsewhere
        (run,) = other.evals.runs()
        assert [r.task_id for r in run.results] == ["Toy/add"] and run.finished_at is None

    seen.clear()
    asked = len(server.requests)
    rest = await run_eval(store, problems, params, setup, on_progress=seen.append)
    assert rest.run_id == first.run_id and rest.stopped is None
    assert (rest.problems, rest.passed) == (3, 1)
    assert [(p.done, p.passed, p.resumed) for p in seen] == [(1, 1, True), (2, 1, False), (3, 1, False)]
    assert seen[-1].eta_s == 0
    assert [asked_about(r.body) for r in server.requests[asked:]] == ["mul", "neg"]
    (run,) = store.evals.runs()
    assert run.finished_at is not None

    again = await run_eval(store, problems, params, setup)  # a finished run is not continued
    assert again.run_id != first.run_id and again.problems == 3


def test_the_same_parameters_continue_an_unfinished_run_unless_fresh(store: SessionStore) -> None:
    params = EvalParams("/x/toy.jsonl", "abc", "team", "code", None, MODEL, None, 3)
    run_id, continued = store.evals.start(params, 3)
    assert not continued
    assert store.evals.start(params, 3) == (run_id, True)
    assert store.evals.start(replace(params, mode="single"), 3)[0] != run_id
    assert store.evals.start(replace(params, seed=1), 3)[0] != run_id
    assert store.evals.start(replace(params, source_hash="changed"), 3)[0] != run_id
    fresh, continued = store.evals.start(params, 3, fresh=True)
    assert fresh != run_id and not continued
    assert store.evals.start(params, 3) == (fresh, True)  # the newest unfinished one


def test_a_store_problem_is_a_store_error(store: SessionStore) -> None:
    params = EvalParams("/x/toy.jsonl", "abc", "team", "code", None, MODEL, None, 3)
    run_id, _ = store.evals.start(params, 3)
    store._conn.execute("DROP TABLE eval_results")
    with pytest.raises(StoreError):
        store.evals.results(run_id)


def run(
    run_id: str, mode: str, passed: list[bool], tokens: int, *, model: str = MODEL, created: float = 0.0
) -> EvalRun:
    results = tuple(
        EvalResult(f"t/{i}", i, ok, "passed" if ok else "failed", tokens, 0, None, 1.0)
        for i, ok in enumerate(passed)
    )
    params = EvalParams("toy.jsonl", "abc", mode, "code", None, model, None, None)
    return EvalRun(run_id, created, params, len(passed), None, results)


def test_report_pairs_each_team_run_with_the_newest_single_run_on_the_same_models() -> None:
    team = run("team", "team", [True, True, False, True], 400)
    old = run("old", "single", [True, False, False, False], 100, created=1)
    new = run("new", "single", [True, False, True], 100, created=2)  # stopped after three
    other_model = run("other", "single", [False] * 4, 100, model="local:qwen2.5-coder-0.5b", created=3)
    (c,) = comparisons([team, old, new, other_model])
    assert (c.team_run, c.single_run, c.problems) == ("team", "new", 3)  # the problems both answered
    assert (c.team_passed, c.single_passed) == (2, 2) and c.points == 0
    assert c.token_ratio == 4.0
    assert comparisons([team, other_model]) == []
    assert model_label(team) == MODEL
    assert (
        model_label(replace(team, params=replace(team.params, model=None, strategy="cheap")))
        == "strategy cheap"
    )


async def test_the_same_parameters_over_other_problems_are_another_run(
    server: OpenAISSEServer, store: SessionStore, tmp_path: Path
) -> None:
    problems = load_problems(str(write_problems(tmp_path / "toy.jsonl")))
    setup = Setup("code", model=MODEL)
    params = params_for(str(tmp_path / "toy.jsonl"), "single", setup, 2)
    stop = Stop()
    first = await run_eval(
        store, problems[:2], params, setup, stop=stop, on_progress=lambda p: stop.request()
    )
    assert first.stopped == "stopped" and first.problems == 1  # add, kept in an unfinished run
    other = await run_eval(store, problems[1:], params, setup)  # picked another way: mul and neg
    assert other.run_id != first.run_id
    assert (other.problems, other.passed) == (2, 0)  # add's result is not counted here
