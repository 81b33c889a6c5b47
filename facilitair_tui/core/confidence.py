"""How far a synthesis can be trusted, computed from what can be measured; never asked of a model.

A small model asked for its confidence writes a number that means nothing ("8/10", "0.95"
whatever it merged). So a synthesis's confidence is the weighted mean of the parts that could
be measured, each in [0, 1]:

- **agreement** (weight 1): how far the agents' outputs for the stage say the same thing, the
  mean cosine similarity of every pair of their embeddings (the native MiniLM embedder),
  clipped to [0, 1]. Needs two outputs or more and an embedder;
- **settled** (weight 1): the share of the synthesis's points that are agreed rather than
  debated, ``agreed / (agreed + debated)``. Needs a synthesis that followed the format and has
  points;
- **tests** (weight 2, the strongest evidence): the share of the tests that passed,
  ``passed / (passed + failed)``, where the stage's code ran.

With none of them measurable the confidence is None ("not measured"), never a guess.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from itertools import combinations

from .events import ConfidenceParts

# Text -> one embedding vector per text (the native embedder's ``encode``).
Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]

WEIGHTS = {"agreement": 1.0, "settled": 1.0, "tests": 2.0}
# The start of each output that is compared (the embedder reads a few hundred tokens anyway).
MAX_COMPARED_CHARS = 2000


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def agreement(vectors: Sequence[Sequence[float]]) -> float | None:
    """The mean pairwise cosine similarity, clipped to [0, 1]; None for fewer than two."""
    pairs = list(combinations(vectors, 2))
    if not pairs:
        return None
    mean = sum(_cosine(a, b) for a, b in pairs) / len(pairs)
    return min(1.0, max(0.0, mean))


def settled(parts: ConfidenceParts) -> float | None:
    points = parts.agreed + parts.debated
    return parts.agreed / points if points else None


def tests_passed(parts: ConfidenceParts) -> float | None:
    ran = parts.passed + parts.failed
    return parts.passed / ran if ran else None


def measured(parts: ConfidenceParts) -> dict[str, float]:
    """The parts that could be measured, by name."""
    values = {"agreement": parts.agreement, "settled": settled(parts), "tests": tests_passed(parts)}
    return {name: value for name, value in values.items() if value is not None}


def confidence(parts: ConfidenceParts) -> float | None:
    """The weighted mean of the measured parts (the module's formula); None when there are none."""
    values = measured(parts)
    if not values:
        return None
    total = sum(WEIGHTS[name] for name in values)
    return sum(WEIGHTS[name] * value for name, value in values.items()) / total


async def measure_agreement(embed: Embed | None, outputs: Sequence[str]) -> float | None:
    """The agreement of ``outputs`` (the non-empty ones), embedded off the event loop; None
    without an embedder, with fewer than two outputs, or when embedding fails (a confidence
    part is never worth failing a session for)."""
    texts = [text.strip()[:MAX_COMPARED_CHARS] for text in outputs if text.strip()]
    if embed is None or len(texts) < 2:
        return None
    try:
        vectors = await asyncio.to_thread(embed, texts)
    except Exception:
        return None
    return agreement([list(map(float, v)) for v in vectors])
