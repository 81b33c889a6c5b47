"""Screens of the Textual front end: the main workspace and its modals."""
