"""STAND-IN until the real matcher lands (branch cache-matcher): serve only near-identical tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class MatchSettings:
    candidate_floor: float = 0.5
    paraphrase_min: float = 0.97


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    task: str
    similarity: float


@dataclass(frozen=True)
class Verdict:
    hit: bool
    kind: str
    reason: str
    entry_id: str | None = None
    similarity: float | None = None


class TaskMatcher:
    def __init__(
        self,
        embed: Callable[[Sequence[str]], npt.NDArray[np.float32]],
        settings: MatchSettings = MatchSettings(),
    ) -> None:
        self.embed = embed
        self.settings = settings

    def choose(self, query: str, candidates: Sequence[Candidate]) -> Verdict:
        if not candidates:
            return Verdict(False, "no_candidate", "no cached task in this context is like it")
        best = candidates[0]
        if best.similarity >= self.settings.paraphrase_min:
            return Verdict(
                True,
                "paraphrase",
                f"same task (cosine {best.similarity:.2f})",
                best.entry_id,
                best.similarity,
            )
        return Verdict(
            False,
            "low_similarity",
            f"nearest task too different (cosine {best.similarity:.2f})",
            best.entry_id,
            best.similarity,
        )
