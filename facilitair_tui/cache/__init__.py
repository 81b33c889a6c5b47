"""The context-aware semantic cache (issue 6)."""
