"""The README's figures: every measurement names the bench or test anyone can run to get it.

The rule (issue 15): a figure in the README comes from a bench (``make bench``) or a test
(``make test``), or goes. These tests cannot tell whether a number is the one a bench printed
last (benches are timed on a shared machine and never asserted), but they keep every measured
figure next to the name of what measures it, that bench in ``make bench``, and the figures that
are settings equal to the code's.

A figure is a number with a unit of time, rate, share or ratio (``2.13 ms``, ``2,000 tok/s``,
``89.0%``, ``1.20x``, ``12 minutes``) or a decimal (a cosine, a recall). Its paragraph, list
item or table (with the paragraph that introduces the table) must name ``bench/<name>.py`` or
``tests/<path>.py``, unless it is one of the settings listed in ``SETTINGS``. Fenced code
(commands, config examples, a sample message) is not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facilitair_tui.core.markdown_fences import fenced_lines, fences

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")

_NUMBER = r"(?<![\w.\-])~?\d[\d,]*(?:\.\d+)?[kM]?"
_UNIT = r"(?:ms|µs|us|s|minutes?|min|hours?|%|tok/s|tokens/s|events/s|sentences/s|/s|x)"
# A number with a unit of time, rate, share or ratio; or a decimal that is not a file size (the
# models' sizes are pinned, and checked against the registry below).
FIGURE = re.compile(rf"{_NUMBER}\s?{_UNIT}(?![\w/])|(?<![\w.\-])\d+\.\d+(?![\w.])(?!\s?[KMG]?B\b)")
SOURCE = re.compile(r"\b(bench/\w+\.py|tests/[\w/]+\.py)\b")


def _stall_s() -> bool:
    from facilitair_tui.config import ReliabilitySettings

    return ReliabilitySettings().stall_s == 60


def _event_batch() -> bool:
    from facilitair_tui.tui.screens.main import FRAME_S

    return FRAME_S == 0.008


def _store_window() -> bool:
    from facilitair_tui.store.writer import WINDOW_S

    return WINDOW_S == 0.05


def _paraphrase_min() -> bool:
    from facilitair_tui.cache.matching import MatchSettings

    return MatchSettings().paraphrase_min == 0.55


def _frame_cap() -> bool:
    from facilitair_tui.tui.main import MAX_FPS

    return MAX_FPS == 90


def _token_buffer() -> bool:
    from facilitair_tui.core.orchestrator import TOKEN_BUFFER

    return TOKEN_BUFFER == 1024


def _cache_ttl() -> bool:
    from facilitair_tui.config import CacheConfig

    return CacheConfig().ttl_days == 7


# Figures that are settings, not measurements: the phrase that holds each (a measured-looking
# figure inside one needs no bench), and the check that the code says the same.
SETTINGS: dict[str, Callable[[], bool]] = {
    "sends nothing for 60 s": _stall_s,
    "in batches at most every 8 ms": _event_batch,
    "up to 90 frames a second": _frame_cap,
    "Once 1,024 deltas wait": _token_buffer,
    "the 0.55 a rewrite needs to be offered": _paraphrase_min,
    "7-day TTL": _cache_ttl,
    "in batches at most 50 ms apart": _store_window,
    "the last ~50 ms of tokens": _store_window,
}


@dataclass(frozen=True)
class Block:
    line: int  # 1-based, where it starts
    text: str
    context: str  # the text its sources may be named in


def blocks(markdown: str) -> Iterator[Block]:
    """Paragraphs, list items and tables outside fenced code; a table carries the paragraph
    before it as context (that is where a table says what measured it)."""
    lines = markdown.splitlines()
    previous = ""
    current: list[str] = []
    start = 0

    def flush() -> Iterator[Block]:
        nonlocal previous, current
        if current:
            text = "\n".join(current)
            table = current[0].lstrip().startswith("|")
            yield Block(start, text, previous + "\n" + text if table else text)
            if not table:
                previous = text
            current = []

    in_fence = fenced_lines(lines, list(fences(lines)))
    for number, (line, fenced) in enumerate(zip(lines, in_fence, strict=True), start=1):
        if fenced:
            yield from flush()
            continue
        is_table = line.lstrip().startswith("|")
        new_item = re.match(r"\s*(?:[-*]|\d+\.)\s", line) is not None
        in_table = bool(current) and current[0].lstrip().startswith("|")
        if not line.strip() or new_item or (current and is_table != in_table):
            yield from flush()
        if line.strip():
            if not current:
                start = number
            current.append(line)
    yield from flush()


def bench_scripts() -> list[str]:
    """The scripts ``make bench`` runs, from the Makefile's bench recipe."""
    recipe = re.search(r"^bench:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    assert recipe, "no bench target in the Makefile"
    return re.findall(r"(bench/\w+\.py)", recipe.group(1))


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """``phrase`` wherever the README's lines happen to break it."""
    return re.compile(r"\s+".join(re.escape(word) for word in phrase.split()))


def settings_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for phrase in SETTINGS:
        spans += [(m.start(), m.end()) for m in phrase_pattern(phrase).finditer(text)]
    return spans


def unsourced_figures(markdown: str) -> list[str]:
    problems = []
    for block in blocks(markdown):
        if SOURCE.search(block.context):
            continue
        excused = settings_spans(block.text)
        for match in FIGURE.finditer(block.text):
            if any(a <= match.start() and match.end() <= b for a, b in excused):
                continue
            line = block.line + block.text.count("\n", 0, match.start())
            problems.append(f"README.md:{line}: {match.group()!r} names no bench or test")
    return problems


def test_every_measured_figure_names_the_bench_or_test_it_comes_from() -> None:
    assert unsourced_figures(README) == []


def test_the_check_finds_a_figure_without_a_source() -> None:
    text = (
        "Intro.\n\nWe tried candle first: 7.3 ms per sentence.\n\n"
        "Measured on this machine:\n\n| | ours |\n| --- | --- |\n| lookup | 0.104 ms |\n\n"
        "Measured (`bench/index_search.py`):\n\n| | ours |\n| --- | --- |\n| lookup | 0.104 ms |\n\n"
        "- a list item at 12.8 ms\n- another, from `tests/unit/test_x.py`: 3.5 ms\n\n"
        "```\ncode 5 ms\n```\n\nA stream that sends nothing for 60 s fails; it builds in about 12 minutes.\n"
    )
    assert unsourced_figures(text) == [
        "README.md:3: '7.3 ms' names no bench or test",
        "README.md:9: '0.104 ms' names no bench or test",
        "README.md:17: '12.8 ms' names no bench or test",
        "README.md:24: '12 minutes' names no bench or test",
    ]


def test_every_bench_the_readme_names_is_run_by_make_bench() -> None:
    named = set(re.findall(r"\bbench/\w+\.py\b", README))
    assert named, "the README names no bench"
    assert named <= set(bench_scripts()), f"not in `make bench`: {sorted(named - set(bench_scripts()))}"


def test_every_file_the_readme_names_as_a_source_exists() -> None:
    # Outside fenced code, as for the figures: a sample of what the program writes names its files.
    named = {path for block in blocks(README) for path in SOURCE.findall(block.text)}
    assert "tests/unit/test_models.py" in named
    for path in named:
        assert (ROOT / path).is_file(), f"the README names {path}, which does not exist"


@pytest.mark.parametrize("phrase", list(SETTINGS))
def test_the_settings_the_readme_quotes_are_the_codes(phrase: str) -> None:
    assert phrase_pattern(phrase).search(README), f"{phrase!r} is not in the README: drop it from SETTINGS"
    assert SETTINGS[phrase](), f"the README says {phrase!r}, the code says otherwise"


def test_the_model_sizes_the_readme_quotes_are_the_pinned_ones() -> None:
    from facilitair_tui import embedded_models

    def shown(size: int) -> str:
        return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"

    table = re.search(r"^\| `local:` name \|.*\n((?:\|.*\n)+)", README, re.MULTILINE)
    assert table, "the README's table of local models is gone"
    rows = table.group(1).splitlines()
    models = (
        embedded_models.QWEN_CODER_05B,
        embedded_models.SMOLLM2,
        embedded_models.QWEN_CODER_15B,
        embedded_models.MINILM,
    )
    for model in models:
        row = next((r for r in rows if model.name in r.lower()), None)
        assert row, f"no row of the README's model table names {model.name}"
        assert f"| {shown(model.size)} |" in row, f"{model.name} is {shown(model.size)}: {row}"
    total = sum(model.size for model in embedded_models.default_models())
    assert phrase_pattern(f"downloads the local models (about {total / 1e6:.0f} MB").search(README)


def test_the_embedder_parity_the_readme_quotes_is_the_bound_the_test_asserts() -> None:
    source = (ROOT / "tests" / "unit" / "test_embedder.py").read_text(encoding="utf-8")
    bound = re.search(r"^PARITY_COSINE = ([\d.]+)$", source, re.MULTILINE)
    assert bound, "tests/unit/test_embedder.py no longer defines PARITY_COSINE"
    quoted = re.search(r"cosine\s+of\s+at\s+least\s+([\d.]+)\s+on\s+(\d+)\s+reference\s+texts", README)
    assert quoted, "the README no longer quotes the embedder's parity bound"
    assert float(quoted.group(1)) == float(bound.group(1))
    reference = json.loads((ROOT / "tests" / "data" / "minilm_reference.json").read_text(encoding="utf-8"))
    assert int(quoted.group(2)) == len(reference["items"])


def test_the_readme_and_the_makefile_say_the_same_about_the_llama_cpp_build_time() -> None:
    duration = re.compile(rf"{_NUMBER}\s?(?:minutes?|min|hours?|s)\b")
    readme = re.search(r"[^.]*builds\s+llama\.cpp\s+once[^.]*\.", README)
    makefile = re.search(r'echo "building llama-cpp-python[^"]*"', MAKEFILE)
    assert readme and makefile
    assert duration.findall(readme.group()) == duration.findall(makefile.group())
