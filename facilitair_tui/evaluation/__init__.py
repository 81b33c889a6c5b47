"""``facilitair eval``: does the team beat one call to the same model? Problems (HumanEval, or a
user's own JSONL), the two ways of answering them, the official check (run only after the answer
is final, never shown to any agent), and runs kept in the session store so they resume."""
