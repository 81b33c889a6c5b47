"""The computed confidence: its formula, part by part (core.confidence documents it)."""

from __future__ import annotations

import pytest

from facilitair_tui.core.confidence import agreement, confidence, measure_agreement
from facilitair_tui.core.events import ConfidenceParts


def test_agreement_is_the_mean_pairwise_cosine_clipped_to_0_1() -> None:
    assert agreement([[1.0, 0.0], [1.0, 0.0]]) == pytest.approx(1.0)
    assert agreement([[1.0, 0.0], [0.0, 1.0]]) == pytest.approx(0.0)
    # Three outputs: pairs (a,b)=1, (a,c)=0, (b,c)=0.
    assert agreement([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]) == pytest.approx(1 / 3)
    assert agreement([[1.0, 0.0], [-1.0, 0.0]]) == 0.0  # opposite: clipped, never negative
    assert agreement([[1.0, 0.0]]) is None
    assert agreement([[0.0, 0.0], [1.0, 0.0]]) == 0.0


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (ConfidenceParts(), None),  # nothing measured: no number
        (ConfidenceParts(agreement=0.8), 0.8),
        (ConfidenceParts(agreed=3, debated=1), 0.75),
        (ConfidenceParts(agreement=0.8, agreed=3, debated=1), (0.8 + 0.75) / 2),
        # Tests weigh twice: (0.8 + 0.75 + 2 * 0.5) / 4
        (ConfidenceParts(agreement=0.8, agreed=3, debated=1, passed=1, failed=1), 0.6375),
        (ConfidenceParts(passed=4), 1.0),
    ],
)
def test_confidence_is_the_weighted_mean_of_the_measured_parts(
    parts: ConfidenceParts, expected: float | None
) -> None:
    assert confidence(parts) == (None if expected is None else pytest.approx(expected))


async def test_agreement_needs_two_outputs_and_an_embedder() -> None:
    def embed(texts: object) -> list[list[float]]:
        return [[1.0, 0.0], [1.0, 0.1]]

    assert await measure_agreement(None, ["a", "b"]) is None
    assert await measure_agreement(embed, ["a", "  "]) is None  # one real output
    value = await measure_agreement(embed, ["a", "b"])
    assert value is not None and 0.99 < value <= 1.0
