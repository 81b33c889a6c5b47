"""Facilitair: a terminal workspace where several LLM agents work on a software task together."""

__version__ = "0.1.0"
