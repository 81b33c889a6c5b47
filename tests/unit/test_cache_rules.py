"""The general rules that keep the cache from serving a different task (issue 18), each on
sentences written for it here, run through the real embedder and matcher.

For every trap the query must never be served; the rules are meant to refuse it outright (a
miss, with the reason), so the user is not even asked. For every harmless edit the query is
served. None of these sentences is in the cache's labelled sets.
"""

from __future__ import annotations

import pytest

from facilitair_tui.cache.matching import Candidate, TaskMatcher, Verdict
from facilitair_tui.cache.proof import normal_tokens, proven_same
from facilitair_tui.cache.quantities import quantities
from facilitair_tui.native import Embedder


@pytest.fixture
def matcher(minilm: Embedder) -> TaskMatcher:
    return TaskMatcher(lambda texts: minilm.encode(list(texts)))


def judge(matcher: TaskMatcher, minilm: Embedder, cached: str, query: str) -> Verdict:
    va, vb = minilm.encode([cached, query])
    return matcher.choose(query, [Candidate("e1", cached, float(va @ vb))])


TRAPS = {
    "number": [
        # numbers written as words and in compounds
        (
            "Design a four-stage approval workflow for expense claims.",
            "Design a six-stage approval workflow for expense claims.",
        ),
        ("Split the import into a dozen parallel batches.", "Split the import into 20 parallel batches."),
        (
            "Require two-factor sign-in for the billing console.",
            "Require three-factor sign-in for the billing console.",
        ),
        # durations and units
        (
            "Poll the shipping API every hour and update the order status.",
            "Poll the shipping API every 10 minutes and update the order status.",
        ),
        ("Rotate the access logs daily.", "Rotate the access logs weekly."),
        ("Reject uploads larger than 25 MB.", "Reject uploads larger than 25 GB."),
        ("Expire idle sessions after 30 seconds.", "Expire idle sessions after 30 minutes."),
    ],
    "entity": [
        # a name that grows a prefix names another thing
        (
            "Implement Jaro similarity between two product names.",
            "Implement Jaro-Winkler similarity between two product names.",
        ),
        (
            "Sign the export files with SHA-256 checksums.",
            "Sign the export files with HMAC-SHA256 checksums.",
        ),
    ],
    "negation": [
        (
            "Show a summary of the changes before asking the user to confirm the merge.",
            "Ask the user to confirm the merge without any summary of the changes.",
        ),
        ("Cache the avatar images on the CDN.", "Never cache the avatar images on the CDN."),
        ("Send a receipt email after each payment.", "Send no receipt email after a payment."),
    ],
    "direction": [
        # prepositions and particles
        (
            "Sync the product photos to Google Cloud Storage.",
            "Sync the product photos from Google Cloud Storage.",
        ),
        (
            "Page the on-call engineer when disk usage is over 90%.",
            "Page the on-call engineer when disk usage is under 90%.",
        ),
        ("Add a button that signs the user in.", "Add a button that signs the user out."),
        (
            "Scale the worker pool up when the queue grows.",
            "Scale the worker pool down when the queue grows.",
        ),
        ("Move the archived invoices into cold storage.", "Move the archived invoices out of cold storage."),
        # swapped roles around "only X can Y"
        (
            "Write a firewall rule so only the build agents can reach the artifact registry.",
            "Write a firewall rule so the artifact registry can only reach the build agents.",
        ),
        # opposite actions
        ("Promote the staging release to production.", "Roll production back to the previous release."),
    ],
}


@pytest.mark.parametrize(
    ("rule", "cached", "query"),
    [(rule, cached, query) for rule, pairs in TRAPS.items() for cached, query in pairs],
)
def test_a_trap_is_never_served_and_is_refused_with_its_reason(
    matcher: TaskMatcher, minilm: Embedder, rule: str, cached: str, query: str
) -> None:
    verdict = judge(matcher, minilm, cached, query)
    assert not verdict.hit, verdict
    assert verdict.decision == "miss", verdict
    if rule != "direction" or "only" not in cached:
        assert verdict.kind in (rule, "scope", "edit", "low_similarity"), verdict


HARMLESS = [
    ("Poll the shipping API every hour.", "Poll the shipping API hourly."),
    ("Keep the logs for a day.", "Keep the logs for 24 hours."),
    ("Build a four-stage approval workflow.", "Build a 4-stage approval workflow!"),
    (
        "Sync the product photos to GCS in the nightly job.",
        "In the nightly job, sync the product photos to GCS.",
    ),
    ("Migrated the cron jobs to Kubernetes.", "Migrating the cron jobs to Kubernetes."),
]


@pytest.mark.parametrize(("cached", "query"), HARMLESS)
def test_a_harmless_edit_is_served(matcher: TaskMatcher, minilm: Embedder, cached: str, query: str) -> None:
    verdict = judge(matcher, minilm, cached, query)
    if verdict.decision != "serve":  # two ways of writing one quantity are equal, but not a proof
        assert verdict.decision == "offer" and quantities(cached) == quantities(query), verdict


def test_quantities_are_compared_in_one_unit() -> None:
    assert quantities("every hour") == quantities("hourly") == quantities("every 60 minutes")
    assert quantities("a day") == quantities("24 hours") == quantities("daily")
    assert quantities("every hour") != quantities("every 15 minutes")
    assert (
        quantities("a three-step wizard") == quantities("a 3-step wizard") != quantities("a five-step wizard")
    )
    assert quantities("10 MB") != quantities("10 GB")
    assert quantities("a dozen retries") == quantities("12 retries")
    assert quantities("over 80%") == quantities("over 80 percent")


def test_a_proof_keeps_prepositions_negations_and_order_of_heads() -> None:
    assert normal_tokens("Copy the reports to S3.") != normal_tokens("Copy the reports from S3.")
    assert proven_same("Log the user in.", "Log the user out.") is None
    assert proven_same("Only A can call B.", "B can only call A.") is None
    # a stated sequence fixes the order of its steps
    assert proven_same("Sort by name, then by age.", "Sort by age, then by name.") is None
    moved = "Send the invoice from the billing address to the client."
    assert proven_same("Send the invoice to the client from the billing address.", moved) == "reordered"


def test_a_bound_is_not_a_negation_and_a_negation_ends_at_its_phrase(
    matcher: TaskMatcher, minilm: Embedder
) -> None:
    # "no later than" bounds a time; it negates nothing
    verdict = judge(
        matcher,
        minilm,
        "Archive closed tickets within 14 days.",
        "Archive closed tickets no later than 14 days after.",
    )
    assert verdict.kind != "negation", verdict
    # "don't ship on that route" negates the shipping, not the route named after it
    verdict = judge(
        matcher,
        minilm,
        "Estimate the late-delivery rate of each route.",
        "Estimate how often parcels don't arrive on time on each route.",
    )
    assert verdict.kind != "negation", verdict


def test_quantities_written_as_shares_and_one_as_a_pronoun() -> None:
    assert quantities("a quarter of an hour") == quantities("15 minutes")
    assert quantities("half an hour") == quantities("30 minutes")
    assert quantities("from one warehouse to another") == quantities("between two warehouses") - quantities(
        "two"
    )


def test_a_word_governed_by_opposite_prepositions_is_a_reversal(
    matcher: TaskMatcher, minilm: Embedder
) -> None:
    verdict = judge(
        matcher,
        minilm,
        "Every night, copy the audit logs to the cold bucket.",
        "Each night, restore the audit logs from the cold bucket.",
    )
    assert verdict.decision == "miss" and verdict.kind == "direction", verdict
