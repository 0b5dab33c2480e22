"""Urgency order of waiting items: earliest deadline first, priority breaks ties.

The score is an integer that both stores sort on (a Redis sorted-set score is a
double: exact up to 2**53, and ``deadline_ms * 8`` stays below that until year 37,000).
"""

from __future__ import annotations

from datetime import datetime

from router.clock import from_ms, to_ms

PRIORITY_SLOTS = 8


def score(deadline: datetime, priority: int) -> int:
    """Lower is more urgent."""
    return to_ms(deadline) * PRIORITY_SLOTS + priority


def deadline_of(score_value: int) -> datetime:
    return from_ms(score_value // PRIORITY_SLOTS)
