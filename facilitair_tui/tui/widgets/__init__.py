"""Reusable widgets of the Textual front end. They draw state; they never run the session."""
