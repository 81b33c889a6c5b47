"""The context-aware semantic cache: a past solution is served again only when the task means
the same and the context is the same, and it always says why (see ``store.py``, ``matching.py``)."""

from .matching import Candidate, MatchSettings, TaskMatcher, Verdict
from .profile import Profile, profile_of
from .store import CacheDamaged, CacheError, CacheSettings, CacheStats, Decision, Match, SemanticCache

__all__ = [
    "CacheDamaged",
    "CacheError",
    "CacheSettings",
    "CacheStats",
    "Candidate",
    "Decision",
    "Match",
    "MatchSettings",
    "Profile",
    "SemanticCache",
    "TaskMatcher",
    "Verdict",
    "profile_of",
]
