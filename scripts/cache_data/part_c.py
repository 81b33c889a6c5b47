"""Labelled groups, test-part domains: insurance-claims, event-ticketing."""

from __future__ import annotations

from typing import Any

from scripts.cache_data.part_a import JAVA, JAVA_C, PY, PY_C, TS, TS_C, swap

NET = {
    "language": "c#",
    "frameworks": [".net 8", "entity framework"],
    "team_size": "medium",
    "compliance": ["hipaa"],
}
NET_C = {
    "language": "C#",
    "frameworks": ["Entity Framework", ".NET 8"],
    "team_size": "Medium",
    "compliance": ["HIPAA"],
}

GROUPS: list[tuple[str, dict[str, Any], str, list[tuple[Any, ...]]]] = [
    # ------------------------------------------------------------------ insurance-claims
    ("insurance-claims", JAVA, "Route every claim above $10,000 to a senior adjuster for manual review.", [
        ("paraphrase", "Claims worth more than ten thousand dollars must be reviewed by hand by a senior adjuster."),
        ("cosmetic_context", "Route every claim above $10,000 to a senior adjuster for manual review.", JAVA_C),
        ("trap_number", "Route every claim above $1,000 to a senior adjuster for manual review."),
        ("trap_direction", "Route every claim below $10,000 to a senior adjuster for manual review."),
        ("context_swap", None, swap(JAVA, compliance=["sox", "pci-dss"])),
    ]),
    ("insurance-claims", NET, "Let policyholders upload photos of the damage from their phone when they file a claim.", [
        ("paraphrase", "When filing a claim, customers should be able to attach pictures of the damage straight from their mobile."),
        ("cosmetic_context", "Let policyholders upload photos of the damage from their phone when they file a claim.", NET_C),
        ("trap_scope", "Let policyholders upload photos and videos of the damage from their phone when they file a claim."),
        ("trap_direction", "Let adjusters download the policyholder's damage photos to their phone when they review a claim."),
        ("unrelated", "Let policyholders change their bank details for claim payouts."),
    ]),
    ("insurance-claims", PY, "Flag a claim as possible fraud when the same bank account receives payouts for three different policyholders.", [
        ("paraphrase", "Mark claims as suspicious if one bank account gets paid out for 3 or more distinct policyholders."),
        ("cosmetic_context", "Flag a claim as possible fraud when the same bank account receives payouts for three different policyholders.", PY_C),
        ("trap_number", "Flag a claim as possible fraud when the same bank account receives payouts for two different policyholders."),
        ("trap_entity", "Flag a claim as possible fraud when the same phone number is given by three different policyholders."),
        ("context_swap", None, swap(PY, language="scala")),
    ]),
    ("insurance-claims", TS, "Show the claim's status timeline to the customer, from filed to paid, with the date of each step.", [
        ("paraphrase", "Customers see a dated timeline of their claim's progress, starting at submission and ending at payment."),
        ("cosmetic_context", "Show the claim's status timeline to the customer, from filed to paid, with the date of each step.", TS_C),
        ("trap_negation", "Show the claim's current status to the customer without any timeline or dates."),
        ("trap_direction", "Show the claim's status timeline to the customer, from paid back to filed, newest step first."),
        ("context_swap", None, swap(TS, frameworks=["angular", "node.js"])),
    ]),
    ("insurance-claims", NET, "Pay approved claims by bank transfer within five business days and email the customer a remittance advice.", [
        ("paraphrase", "Once a claim is approved, transfer the money to the customer's bank in at most 5 working days and send them a remittance advice by email."),
        ("cosmetic_context", "Pay approved claims by bank transfer within five business days and email the customer a remittance advice.", NET_C),
        ("trap_number", "Pay approved claims by bank transfer within ten business days and email the customer a remittance advice."),
        ("trap_entity", "Pay approved claims by cheque within five business days and email the customer a remittance advice."),
        ("trap_scope", "Pay approved claims by bank transfer within five business days."),
    ]),
    ("insurance-claims", JAVA, "Compute the deductible for a car claim as 10% of the repair cost, but at least $250.", [
        ("paraphrase", "For vehicle claims the deductible is a tenth of the repair bill, with a minimum of 250 dollars."),
        ("cosmetic_context", "Compute the deductible for a car claim as 10% of the repair cost, but at least $250.", JAVA_C),
        ("trap_number", "Compute the deductible for a car claim as 10% of the repair cost, but at least $500."),
        ("trap_direction", "Compute the deductible for a car claim as 10% of the repair cost, but at most $250."),
        ("context_swap", None, swap(JAVA, team_size="small")),
    ]),
    ("insurance-claims", PY, "Extract the policy number, incident date and amount from scanned claim forms with OCR.", [
        ("paraphrase", "Run OCR on scanned claim forms and pull out the policy number, the date of the incident and the claimed amount."),
        ("cosmetic_context", "Extract the policy number, incident date and amount from scanned claim forms with OCR.", PY_C),
        ("trap_scope", "Extract the policy number from scanned claim forms with OCR."),
        ("trap_entity", "Extract the policy number, incident date and amount from emailed claim forms in PDF text."),
        ("context_swap", None, swap(PY, existing_stack=["mongodb", "docker"])),
    ]),
    ("insurance-claims", TS, "Let an adjuster reopen a closed claim only within 90 days of its closing, with a written reason.", [
        ("paraphrase", "Closed claims may be reopened by an adjuster for up to ninety days after closure, and they must write down why."),
        ("cosmetic_context", "Let an adjuster reopen a closed claim only within 90 days of its closing, with a written reason.", TS_C),
        ("trap_number", "Let an adjuster reopen a closed claim only within 30 days of its closing, with a written reason."),
        ("trap_negation", "Let an adjuster reopen a closed claim at any time, without giving a reason."),
        ("trap_direction", "Let a policyholder reopen a closed claim only within 90 days of its closing, with a written reason."),
    ]),
    # ------------------------------------------------------------------ event-ticketing
    ("event-ticketing", TS, "Show an interactive seat map where buyers pick seats and see each seat's price.", [
        ("paraphrase", "Build a clickable venue map for choosing seats that displays the price of every seat."),
        ("paraphrase", "Buyers choose their seats on an interactive plan of the venue, with prices shown per seat."),
        ("cosmetic_context", "Show an interactive seat map where buyers pick seats and see each seat's price.", TS_C),
        ("trap_negation", "Show a seat map where buyers can't pick seats and seats are assigned automatically."),
        ("context_swap", None, swap(TS, language="javascript")),
    ]),
    ("event-ticketing", PY, "Limit each buyer to 4 tickets per event to stop scalpers.", [
        ("paraphrase", "To keep touts away, nobody can buy more than four tickets for the same event."),
        ("cosmetic_context", "Limit each buyer to 4 tickets per event to stop scalpers.", PY_C),
        ("trap_number", "Limit each buyer to 8 tickets per event to stop scalpers."),
        ("trap_scope", "Limit each buyer to 4 tickets per day across all events to stop scalpers."),
        ("context_swap", None, swap(PY, team_size="large")),
    ]),
    ("event-ticketing", JAVA, "Generate a unique QR code for each ticket and check it at the door so it can be scanned only once.", [
        ("paraphrase", "Every ticket gets its own QR code, validated at the entrance; a second scan of the same code is refused."),
        ("cosmetic_context", "Generate a unique QR code for each ticket and check it at the door so it can be scanned only once.", JAVA_C),
        ("trap_entity", "Generate a unique NFC tag for each ticket and check it at the door so it can be scanned only once."),
        ("trap_negation", "Generate a unique QR code for each ticket and check it at the door, allowing any number of scans."),
        ("context_swap", None, swap(JAVA, language="kotlin", frameworks=["ktor"])),
    ]),
    ("event-ticketing", NET, "Put buyers in a virtual waiting room when more than 5,000 people try to buy at once, and let them in first come, first served.", [
        ("paraphrase", "If over five thousand users hit the sale at the same time, queue them in a virtual waiting room and admit them in arrival order."),
        ("cosmetic_context", "Put buyers in a virtual waiting room when more than 5,000 people try to buy at once, and let them in first come, first served.", NET_C),
        ("trap_number", "Put buyers in a virtual waiting room when more than 50,000 people try to buy at once, and let them in first come, first served."),
        ("trap_entity", "Put buyers in a virtual waiting room when more than 5,000 people try to buy at once, and let them in by random lottery."),
        ("unrelated", "Let organisers set up early-bird prices that end at a given date."),
    ]),
    ("event-ticketing", TS, "Refund the full ticket price automatically when an event is cancelled by the organiser.", [
        ("paraphrase", "If the organiser cancels an event, give every buyer their money back in full without them having to ask."),
        ("cosmetic_context", "Refund the full ticket price automatically when an event is cancelled by the organiser.", TS_C),
        ("trap_scope", "Refund half the ticket price automatically when an event is cancelled by the organiser."),
        ("trap_direction", "Refund the full ticket price automatically when a buyer cancels their ticket."),
        ("context_swap", None, swap(TS, team_size="small")),
    ]),
    ("event-ticketing", PY, "Let ticket holders transfer a ticket to a friend by email, invalidating the original QR code.", [
        ("paraphrase", "A buyer can send their ticket to a friend's email address; the old QR code stops working when they do."),
        ("cosmetic_context", "Let ticket holders transfer a ticket to a friend by email, invalidating the original QR code.", PY_C),
        ("trap_negation", "Let ticket holders transfer a ticket to a friend by email, keeping the original QR code valid."),
        ("trap_direction", "Let ticket holders request a ticket from a friend by email, invalidating the friend's QR code."),
        ("context_swap", None, swap(PY, language="ruby")),
    ]),
    ("event-ticketing", JAVA, "Release unsold held tickets back to general sale 48 hours before the event.", [
        ("paraphrase", "Two days ahead of the event, any held tickets nobody bought go back on public sale."),
        ("cosmetic_context", "Release unsold held tickets back to general sale 48 hours before the event.", JAVA_C),
        ("trap_number", "Release unsold held tickets back to general sale 48 minutes before the event."),
        ("trap_direction", "Move unsold general-sale tickets into the held pool 48 hours before the event."),
        ("context_swap", None, swap(JAVA, compliance=[])),
    ]),
    ("event-ticketing", NET, "Send each buyer a reminder email with the venue address one day before the event.", [
        ("paraphrase", "The day before the show, email every ticket holder a reminder that includes where the venue is."),
        ("cosmetic_context", "Send each buyer a reminder email with the venue address one day before the event.", NET_C),
        ("trap_number", "Send each buyer a reminder email with the venue address one week before the event."),
        ("trap_entity", "Send each buyer a reminder push notification with the venue address one day before the event."),
        ("trap_direction", "Send each buyer a feedback email with a survey one day after the event."),
    ]),
]  # fmt: skip
