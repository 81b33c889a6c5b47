"""Labelled groups, dev-part domains: messaging-chat, travel-booking, social-media."""

from __future__ import annotations

from typing import Any

from scripts.cache_data.part_a import swap

EX = {"language": "elixir", "frameworks": ["phoenix"], "team_size": "small", "existing_stack": ["postgresql"]}
EX_C = {
    "language": "Elixir",
    "frameworks": ["Phoenix"],
    "team_size": "small",
    "existing_stack": ["PostgreSQL"],
}
GO = {
    "language": "go",
    "team_size": "medium",
    "existing_stack": ["redis", "kubernetes"],
    "security_level": "high",
}
GO_C = {
    "language": "Go",
    "team_size": "Medium",
    "existing_stack": ["Kubernetes", "Redis"],
    "security_level": "High",
}
KT = {"language": "kotlin", "frameworks": ["jetpack compose"], "team_size": "small"}
KT_C = {"language": "Kotlin", "frameworks": ["Jetpack Compose"], "team_size": "Small"}
PHP = {"language": "php", "frameworks": ["laravel"], "team_size": "medium", "compliance": ["gdpr"]}
PHP_C = {"language": "PHP", "frameworks": ["Laravel"], "team_size": "medium", "compliance": ["GDPR"]}

GROUPS: list[tuple[str, dict[str, Any], str, list[tuple[Any, ...]]]] = [
    # ------------------------------------------------------------------ messaging-chat
    ("messaging-chat", EX, "Show a typing indicator in a chat room while another member is writing a message.", [
        ("paraphrase", "When someone in the room is composing a message, display a 'typing…' hint to the others."),
        ("cosmetic_context", "Show a typing indicator in a chat room while another member is writing a message.", EX_C),
        ("trap_negation", "Show a chat room without any typing indicator while another member is writing a message."),
        ("context_swap", None, swap(EX, language="javascript", frameworks=["socket.io"])),
        ("unrelated", "Let members pin up to three messages at the top of a chat room."),
    ]),
    ("messaging-chat", GO, "Deliver messages to offline users when they reconnect, in the order they were sent.", [
        ("paraphrase", "Queue messages for users who are offline and hand them over in sending order once they come back online."),
        ("cosmetic_context", "Deliver messages to offline users when they reconnect, in the order they were sent.", GO_C),
        ("trap_direction", "Deliver messages to offline users when they reconnect, newest first."),
        ("trap_negation", "Drop messages sent to offline users instead of delivering them when they reconnect."),
        ("context_swap", None, swap(GO, security_level="standard")),
    ]),
    ("messaging-chat", KT, "Encrypt chat messages end to end with the Signal protocol so the server only relays ciphertext.", [
        ("paraphrase", "Add end-to-end encryption based on the Signal protocol; our backend must only ever see encrypted payloads."),
        ("cosmetic_context", "Encrypt chat messages end to end with the Signal protocol so the server only relays ciphertext.", KT_C),
        ("trap_entity", "Encrypt chat messages end to end with the MLS protocol so the server only relays ciphertext."),
        ("trap_scope", "Encrypt chat messages in transit with TLS."),
        ("context_swap", None, swap(KT, language="swift", frameworks=["swiftui"])),
    ]),
    ("messaging-chat", EX, "Rate-limit each user to 10 messages per 5 seconds and mute them for a minute if they exceed it.", [
        ("paraphrase", "A user who sends more than ten messages within five seconds gets muted for 60 seconds."),
        ("cosmetic_context", "Rate-limit each user to 10 messages per 5 seconds and mute them for a minute if they exceed it.", EX_C),
        ("trap_number", "Rate-limit each user to 10 messages per 5 seconds and mute them for an hour if they exceed it."),
        ("trap_number", "Rate-limit each user to 5 messages per 10 seconds and mute them for a minute if they exceed it."),
        ("context_swap", None, swap(EX, team_size="large")),
    ]),
    ("messaging-chat", GO, "Let users edit a sent message within 15 minutes and mark it as edited.", [
        ("paraphrase", "Messages can be changed by their author for a quarter of an hour after sending, and then show an 'edited' label."),
        ("cosmetic_context", "Let users edit a sent message within 15 minutes and mark it as edited.", GO_C),
        ("trap_number", "Let users edit a sent message within 15 seconds and mark it as edited."),
        ("trap_negation", "Let users edit a sent message within 15 minutes without marking it as edited."),
        ("trap_direction", "Let moderators edit any user's sent message within 15 minutes and mark it as edited."),
    ]),
    ("messaging-chat", KT, "Show unread message counts per conversation and clear them when the conversation is opened.", [
        ("paraphrase", "Each conversation in the list displays how many messages are unread; opening it resets the count to zero."),
        ("cosmetic_context", "Show unread message counts per conversation and clear them when the conversation is opened.", KT_C),
        ("trap_scope", "Show one total unread message count and clear it when the app is opened."),
        ("context_swap", None, swap(KT, team_size="large")),
    ]),
    ("messaging-chat", PHP, "Delete a user's chat history from the servers within 30 days of their account deletion request.", [
        ("paraphrase", "When someone asks to delete their account, erase all their chat messages from our servers no later than thirty days afterwards."),
        ("cosmetic_context", "Delete a user's chat history from the servers within 30 days of their account deletion request.", PHP_C),
        ("trap_number", "Delete a user's chat history from the servers within 90 days of their account deletion request."),
        ("trap_direction", "Export a user's chat history from the servers within 30 days of their data access request."),
        ("context_swap", None, swap(PHP, compliance=["ccpa"])),
    ]),
    # ------------------------------------------------------------------ travel-booking
    ("travel-booking", PHP, "Hold a selected seat for 10 minutes while the traveller completes payment, then release it.", [
        ("paraphrase", "Reserve the chosen seat for ten minutes during checkout and free it again if payment isn't finished."),
        ("cosmetic_context", "Hold a selected seat for 10 minutes while the traveller completes payment, then release it.", PHP_C),
        ("trap_number", "Hold a selected seat for 30 minutes while the traveller completes payment, then release it."),
        ("trap_negation", "Never hold a selected seat while the traveller completes payment."),
        ("context_swap", None, swap(PHP, frameworks=["symfony"])),
    ]),
    ("travel-booking", GO, "Search flights from one airport to another and sort the results by total price including taxes.", [
        ("paraphrase", "Find flights between two airports and order them by the full fare with taxes included, cheapest first."),
        ("cosmetic_context", "Search flights from one airport to another and sort the results by total price including taxes.", GO_C),
        ("trap_scope", "Search flights from one airport to another and sort the results by total price including taxes, then by number of stops."),
        ("trap_entity", "Search trains from one station to another and sort the results by total price including taxes."),
        ("trap_negation", "Search flights from one airport to another and sort the results by base fare excluding taxes."),
    ]),
    ("travel-booking", KT, "Let travellers cancel a hotel booking for free up to 48 hours before check-in.", [
        ("paraphrase", "Hotel reservations can be cancelled at no charge until two days before the check-in date."),
        ("cosmetic_context", "Let travellers cancel a hotel booking for free up to 48 hours before check-in.", KT_C),
        ("trap_number", "Let travellers cancel a hotel booking for free up to 24 hours before check-in."),
        ("trap_direction", "Let hotels cancel a traveller's booking for free up to 48 hours before check-in."),
        ("context_swap", None, swap(KT, frameworks=["android views"])),
    ]),
    ("travel-booking", EX, "Convert all displayed prices to the user's currency using rates refreshed every hour.", [
        ("paraphrase", "Show every price in the visitor's own currency, with exchange rates updated hourly."),
        ("cosmetic_context", "Convert all displayed prices to the user's currency using rates refreshed every hour.", EX_C),
        ("trap_number", "Convert all displayed prices to the user's currency using rates refreshed every day."),
        ("trap_direction", "Convert all prices the user enters from their currency to euros using rates refreshed every hour."),
        ("unrelated", "Show the weather forecast for the destination on the booking confirmation page."),
    ]),
    ("travel-booking", PHP, "Send the e-ticket as a PDF attachment and add the trip to the traveller's calendar with an .ics file.", [
        ("paraphrase", "Email the ticket as a PDF and include an iCalendar file so the journey lands in the traveller's calendar."),
        ("cosmetic_context", "Send the e-ticket as a PDF attachment and add the trip to the traveller's calendar with an .ics file.", PHP_C),
        ("trap_scope", "Send the e-ticket as a PDF attachment."),
        ("trap_entity", "Send the e-ticket as an Apple Wallet pass and add the trip to the traveller's calendar with an .ics file."),
        ("context_swap", None, swap(PHP, team_size="small")),
    ]),
    ("travel-booking", GO, "Overbook each flight by at most 3% based on the historical no-show rate of the route.", [
        ("paraphrase", "Allow selling up to three percent more seats than the plane has, depending on how many passengers usually don't show up on that route."),
        ("cosmetic_context", "Overbook each flight by at most 3% based on the historical no-show rate of the route.", GO_C),
        ("trap_number", "Overbook each flight by at most 10% based on the historical no-show rate of the route."),
        ("trap_negation", "Never overbook a flight, whatever the historical no-show rate of the route."),
        ("context_swap", None, swap(GO, existing_stack=["memcached", "kubernetes"])),
    ]),
    # ------------------------------------------------------------------ social-media
    ("social-media", PHP, "Let users block another account so its posts no longer appear in their feed.", [
        ("paraphrase", "Add a block feature: once you block someone, none of their posts show up in your timeline."),
        ("cosmetic_context", "Let users block another account so its posts no longer appear in their feed.", PHP_C),
        ("trap_direction", "Let users unblock another account so its posts appear in their feed again."),
        ("trap_entity", "Let users mute another account so its posts no longer appear in their feed."),
        ("context_swap", None, swap(PHP, compliance=[])),
    ]),
    ("social-media", KT, "Compress uploaded photos to at most 2 MB before sending them to the server.", [
        ("paraphrase", "Shrink photos on the phone so no upload is bigger than two megabytes."),
        ("cosmetic_context", "Compress uploaded photos to at most 2 MB before sending them to the server.", KT_C),
        ("trap_number", "Compress uploaded photos to at most 200 KB before sending them to the server."),
        ("trap_direction", "Compress photos on the server after they are uploaded, to at most 2 MB."),
        ("trap_scope", "Compress uploaded photos and videos to at most 2 MB before sending them to the server."),
    ]),
    ("social-media", GO, "Rank the home feed by recency, but boost posts from accounts the user interacts with most.", [
        ("paraphrase", "Order the home timeline newest first while lifting posts from the people the user engages with the most."),
        ("cosmetic_context", "Rank the home feed by recency, but boost posts from accounts the user interacts with most.", GO_C),
        ("trap_direction", "Rank the home feed by recency, but demote posts from accounts the user interacts with most."),
        ("trap_negation", "Rank the home feed by recency only, with no boost for any account."),
        ("context_swap", None, swap(GO, language="rust")),
    ]),
    ("social-media", EX, "Detect hashtags in a post and link each one to the page of posts that use it.", [
        ("paraphrase", "Turn every #tag in a post into a link to the list of posts with that tag."),
        ("cosmetic_context", "Detect hashtags in a post and link each one to the page of posts that use it.", EX_C),
        ("trap_entity", "Detect @mentions in a post and link each one to the mentioned user's profile."),
        ("trap_scope", "Detect hashtags in a post."),
        ("unrelated", "Let users schedule a post to be published at a later time."),
    ]),
    ("social-media", PHP, "Let users download an archive of all their posts and photos as a ZIP file.", [
        ("paraphrase", "Provide a data export: a zip containing every post and picture the user has uploaded."),
        ("cosmetic_context", "Let users download an archive of all their posts and photos as a ZIP file.", PHP_C),
        ("trap_direction", "Let users upload an archive of posts and photos as a ZIP file to import them."),
        ("trap_scope", "Let users download an archive of their photos as a ZIP file."),
        ("context_swap", None, swap(PHP, language="python", frameworks=["django"])),
    ]),
    ("social-media", KT, "Hide a comment automatically when five different users report it, until a moderator reviews it.", [
        ("paraphrase", "Once 5 distinct people have reported a comment, hide it pending moderator review."),
        ("cosmetic_context", "Hide a comment automatically when five different users report it, until a moderator reviews it.", KT_C),
        ("trap_number", "Hide a comment automatically when fifty different users report it, until a moderator reviews it."),
        ("trap_negation", "Never hide a reported comment automatically; wait until a moderator reviews it."),
        ("context_swap", None, swap(KT, team_size="medium")),
    ]),
    ("social-media", GO, "Notify a user when someone replies to their comment, batching replies that arrive within 10 minutes into one notification.", [
        ("paraphrase", "Tell people when their comment gets a reply, but roll replies that come in within ten minutes of each other into a single notification."),
        ("cosmetic_context", "Notify a user when someone replies to their comment, batching replies that arrive within 10 minutes into one notification.", GO_C),
        ("trap_number", "Notify a user when someone replies to their comment, batching replies that arrive within 10 seconds into one notification."),
        ("trap_negation", "Notify a user when someone replies to their comment, sending one notification per reply without batching."),
        ("context_swap", None, swap(GO, team_size="small")),
    ]),
    ("social-media", EX, "Let users set their profile to private so only approved followers can see their posts.", [
        ("paraphrase", "Add a private account option: posts become visible only to followers the user has accepted."),
        ("cosmetic_context", "Let users set their profile to private so only approved followers can see their posts.", EX_C),
        ("trap_direction", "Let users set their profile to public so anyone can see their posts."),
        ("trap_direction", "Let users see the posts of private profiles they follow only after the owner approves them."),
        ("context_swap", None, swap(EX, existing_stack=["mysql"])),
    ]),
]  # fmt: skip
