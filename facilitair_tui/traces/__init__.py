"""Where a session's time and money went: its timeline (``timeline``, what the waterfall draws)
and its OpenTelemetry spans (``export``, sent only when the user configures a collector).

``timeline`` knows only the events; ``export`` alone imports OpenTelemetry, so the TUI's
waterfall can draw a session without loading the SDK.
"""
