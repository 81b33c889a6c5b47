"""The cache's second check (``facilitair_tui.cache.matching``): each rule on examples of its own.

The examples are written for these tests, not taken from the development set, and run on the
real embedder (the same model the cache uses): a rule that only worked on the dev set's
sentences would fail here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from facilitair_tui.cache.matching import Candidate, MatchSettings, TaskMatcher, Verdict
from facilitair_tui.native import Embedder


class CountingEmbedder:
    """The real embedder, counting the texts the matcher asks it to embed."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts.extend(texts)
        return self.embedder.encode(list(texts))


@pytest.fixture
def embedder(minilm: Embedder) -> Embedder:
    return minilm


@pytest.fixture
def embed(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def matcher(embed: CountingEmbedder) -> TaskMatcher:
    return TaskMatcher(embed)


def cosine(embedder: Embedder, a: str, b: str) -> float:
    va, vb = embedder.encode([a, b])
    return float(va @ vb)


PHOTOS = "Write a Python script that renames every JPEG in a folder using the date the photo was taken."
PHOTOS_REWRITTEN = (
    "I need a Python tool that goes through a directory and renames each jpg photo"
    " after the date it was taken."
)


def judge(matcher: TaskMatcher, embedder: Embedder, cached: str, query: str) -> Verdict:
    """The verdict on one cached task, with the similarity the index would report."""
    return matcher.choose(query, [Candidate("e1", cached, cosine(embedder, cached, query))])


# --------------------------------------------------------------------------------------- hits


def test_the_same_text_up_to_case_and_spacing_is_identical(
    matcher: TaskMatcher, embedder: Embedder, embed: CountingEmbedder
) -> None:
    verdict = judge(
        matcher,
        embedder,
        "Parse a YAML config file and validate its keys.",
        "parse a yaml  config file and validate its keys",
    )
    assert (verdict.hit, verdict.kind, verdict.entry_id) == (True, "identical", "e1")
    assert verdict.similarity is not None and verdict.similarity > 0.9
    assert embed.texts == [], "nothing more to embed for an identical task"


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        # stop words and punctuation
        ("Write a function that parses ISO 8601 dates.", "Write the function that parses ISO 8601 dates!"),
        # inflection
        ("Add retries to the HTTP client of the mailer.", "Adding retries to the HTTP client of the mailer"),
        # a generic noun after a name says nothing more
        ("Write unit tests for the InvoiceParser class.", "Write unit tests for InvoiceParser."),
        ("Document the load_settings function in the README.", "Document load_settings in the README."),
        # numbers written either way
        ("Build a three-step signup wizard.", "Build a 3-step signup wizard"),
        ("Retry twenty five times.", "Retry 25 times."),
    ],
)  # fmt: skip
def test_wording_that_changes_nothing_is_cosmetic(
    matcher: TaskMatcher, embedder: Embedder, cached: str, query: str
) -> None:
    verdict = judge(matcher, embedder, cached, query)
    assert verdict.hit and verdict.kind == "cosmetic", verdict


def test_the_same_words_in_another_order_are_reordered(matcher: TaskMatcher, embedder: Embedder) -> None:
    verdict = judge(
        matcher,
        embedder,
        "Export the audit log to CSV with a timestamp column.",
        "Export the audit log with a timestamp column to CSV.",
    )
    assert verdict.hit and verdict.kind == "reordered", verdict


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        # a phrase moved to the front keeps its head
        ("Write a CSV parser in Rust.", "In Rust, write a CSV parser."),
        # both ends of a move kept
        ("Copy the backups from the NAS to Backblaze.", "Copy the backups to Backblaze from the NAS."),
    ],
)  # fmt: skip
def test_phrases_that_move_with_their_roles_are_served(
    matcher: TaskMatcher, embedder: Embedder, cached: str, query: str
) -> None:
    verdict = judge(matcher, embedder, cached, query)
    assert verdict.decision == "serve" and verdict.kind == "reordered", verdict


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        # the verb a task opens with: very likely the same, but not a proof
        ("Build a CLI that counts lines of code.", "Write a CLI that counts lines of code."),
        # a synonym: most likely the same, never a proof
        ("Archive the closed tickets every week.", "Archive the resolved tickets every week."),
    ],
)  # fmt: skip
def test_a_likely_but_unproven_edit_is_only_offered(
    matcher: TaskMatcher, embedder: Embedder, cached: str, query: str
) -> None:
    verdict = judge(matcher, embedder, cached, query)
    assert verdict.decision in ("offer", "miss") and not verdict.hit, verdict


def test_a_replaced_span_that_means_the_same_is_a_synonym(
    matcher: TaskMatcher, embedder: Embedder, embed: CountingEmbedder
) -> None:
    verdict = judge(
        matcher,
        embedder,
        "Remove the expired exchange rates from SQLite every day.",
        "Delete the expired exchange rates from SQLite every day.",
    )
    assert verdict.decision == "offer" and verdict.kind == "synonym", verdict
    assert "Delete" in verdict.reason
    assert len(embed.texts) == 2, "only the replaced spans are embedded"


def test_a_rewrite_of_the_same_task_is_a_paraphrase(matcher: TaskMatcher, embedder: Embedder) -> None:
    cached, query = PHOTOS, PHOTOS_REWRITTEN
    verdict = judge(matcher, embedder, cached, query)
    assert verdict.decision == "offer" and verdict.kind == "paraphrase", verdict
    assert f"{verdict.similarity:.2f}" in verdict.reason


# ------------------------------------------------------------------------------------- vetoes


@pytest.mark.parametrize(
    ("cached", "query", "kind", "said"),
    [
        (
            "Retry failed webhook deliveries 3 times with exponential backoff.",
            "Retry failed webhook deliveries 10 times with exponential backoff.",
            "number", "3 vs 10",
        ),
        (
            "Bump the Node base image to node:20-alpine.",
            "Bump the Node base image to node:18-alpine.",
            "number", "20 vs 18",
        ),
        (
            "Keep the last seven nightly backups of the database.",
            "Keep the last thirty nightly backups of the database.",
            "number", "7 vs 30",
        ),
        (
            "Resize uploaded avatars while keeping the aspect ratio.",
            "Resize uploaded avatars without keeping the aspect ratio.",
            "negation", "keep",
        ),
        (
            "Log the full request body of every failed call.",
            "Never log the request body of a failed call.",
            "negation", "log",
        ),
        (
            "Compress the log files before uploading them to the archive bucket.",
            "Decompress the log files after downloading them from the archive bucket.",
            "direction", "download",
        ),
        (
            "Convert the YAML settings file into TOML.",
            "Convert the TOML settings file into YAML.",
            "direction", "swapped",
        ),
        (
            "Sort the leaderboard by score in ascending order.",
            "Sort the leaderboard by score in descending order.",
            "direction", "descending",
        ),
        (
            "Send error reports from the Flask app to Sentry.",
            "Send error reports from the Flask app to Rollbar.",
            "entity", "Rollbar",
        ),
        (
            "Store uploaded files in MinIO and serve them through a signed URL.",
            "Store uploaded files in Azure Blob Storage and serve them through a signed URL.",
            "entity", "",
        ),
        (
            "Add a CSV export button to the reports page.",
            "Add a CSV export button to the reports page, plus PDF export and scheduled email delivery.",
            "scope", "more",
        ),
        (
            "Build a settings page with profile editing, password change and notification preferences.",
            "Build a settings page with profile editing.",
            "scope", "less",
        ),
    ],
)  # fmt: skip
def test_a_trap_is_refused_with_its_reason(
    matcher: TaskMatcher, embedder: Embedder, cached: str, query: str, kind: str, said: str
) -> None:
    verdict = judge(matcher, embedder, cached, query)
    assert not verdict.hit, verdict
    assert verdict.kind == kind, verdict
    assert said.lower() in verdict.reason.lower(), verdict.reason
    assert verdict.entry_id == "e1", "a miss names the entry it refused"


def test_a_rewrite_that_names_another_technology_is_refused(matcher: TaskMatcher, embedder: Embedder) -> None:
    cached = "Set up a GitLab CI pipeline that runs the test suite on every merge request."
    query = "Create a Jenkins job which executes our tests whenever someone opens a pull request."
    verdict = judge(matcher, embedder, cached, query)
    assert not verdict.hit and verdict.kind in ("entity", "low_similarity"), verdict


def test_a_much_shorter_rewrite_leaves_part_of_the_task_out(matcher: TaskMatcher, embedder: Embedder) -> None:
    cached = (
        "Harden the SSH server: disable password logins, allow only key authentication, "
        "move it off port 22 and rate-limit connection attempts."
    )
    query = "Make the SSH server stop accepting passwords."
    verdict = judge(matcher, embedder, cached, query)
    assert not verdict.hit and verdict.kind in ("scope", "number"), verdict


def test_initials_and_numeronyms_name_the_same_thing(matcher: TaskMatcher, embedder: Embedder) -> None:
    # "JSON Web Tokens" is JWT and "k8s" is Kubernetes: no entity veto.
    verdict = judge(
        matcher,
        embedder,
        "Deploy the billing API to Kubernetes with JWT authentication in front of it.",
        "Put the billing API on k8s, with authentication by JSON Web Tokens in front of it.",
    )
    assert verdict.kind != "entity", verdict


# ------------------------------------------------------------------------ choosing a candidate


def test_only_the_nearest_candidate_may_be_served_as_a_rewrite(
    matcher: TaskMatcher, embedder: Embedder
) -> None:
    query, farther = PHOTOS_REWRITTEN, PHOTOS
    nearest = "Write a Go program that renames every JPEG in a folder using the date the photo was taken."
    candidates = [Candidate("near", nearest, 0.86), Candidate("far", farther, 0.84)]
    verdict = matcher.choose(query, candidates)
    assert not verdict.hit, verdict
    assert (verdict.entry_id, verdict.kind) == ("near", "entity"), "the miss explains the nearest's refusal"
    # Alone, the farther one is served as a paraphrase.
    assert matcher.choose(query, [Candidate("far", farther, 0.84)]).kind == "paraphrase"


def test_a_farther_candidate_is_served_when_it_is_an_edit_of_the_query(matcher: TaskMatcher) -> None:
    query = "Limit the upload endpoint to 20 requests per minute per user."
    candidates = [
        Candidate("other", "Limit the upload endpoint to 200 requests per minute per user.", 0.97),
        Candidate("same", "Limit the upload endpoint to 20 requests per minute per user", 0.96),
    ]
    verdict = matcher.choose(query, candidates)
    assert (verdict.hit, verdict.entry_id, verdict.kind) == (True, "same", "identical")


def test_without_candidates_the_answer_is_no_candidate(matcher: TaskMatcher) -> None:
    assert matcher.choose("Anything at all", []) == Verdict(
        "miss", "no_candidate", "no cached task in this context is similar enough"
    )


def test_candidates_below_the_floor_are_not_considered(embed: CountingEmbedder) -> None:
    matcher = TaskMatcher(embed, MatchSettings(candidate_floor=0.7))
    verdict = matcher.choose(
        "Write a haiku about Rust.", [Candidate("e1", "Write a haiku about Rust.", 0.69)]
    )
    assert verdict.kind == "no_candidate"


def test_the_paraphrase_threshold_is_a_setting(embed: CountingEmbedder) -> None:
    cached, query = PHOTOS, PHOTOS_REWRITTEN
    strict = TaskMatcher(embed, MatchSettings(paraphrase_min=0.99))
    verdict = strict.choose(query, [Candidate("e1", cached, 0.8)])
    assert (verdict.decision, verdict.kind) == ("miss", "low_similarity")
    lenient = TaskMatcher(embed, MatchSettings(paraphrase_min=0.79))
    assert lenient.choose(query, [Candidate("e1", cached, 0.8)]).decision == "offer"
