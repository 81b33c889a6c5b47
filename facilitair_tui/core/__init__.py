"""The engine: events, workflows, the orchestrator. No UI and no provider SDK may be imported here."""
