"""Urgency order of waiting items: earliest deadline first, priority breaks ties, and
an aging bound so no item waits longer than its priority's ``max_wait``.

The score is an integer that both stores sort on (a Redis sorted-set score is a
double: exact up to 2**53, and ``deadline_ms * 8`` stays below that until year 37,000).
The deadline part is ``min(SLA deadline, queued_at + max_wait)``: an item whose SLA
deadline is far away (low priority, long target) still reaches the front once it has
waited ``max_wait``, so a stream of urgent work can delay it but never starve it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from router.clock import from_ms, to_ms
from router.models import Decision

PRIORITY_SLOTS = 8


def score(
    deadline: datetime,
    priority: int,
    *,
    queued_at: datetime | None = None,
    max_wait_s: float | None = None,
) -> int:
    """Lower is more urgent."""
    if queued_at is not None and max_wait_s is not None:
        deadline = min(deadline, queued_at + timedelta(seconds=max_wait_s))
    return to_ms(deadline) * PRIORITY_SLOTS + priority


def of_decision(decision: Decision) -> int:
    """The backlog score a routing decision asks for: its own (which may carry the
    aging bound), else the plain deadline-then-priority score."""
    if decision.score is not None:
        return decision.score
    return score(decision.deadline, decision.priority)


def rescore(current: int, deadline: datetime, priority: int) -> int:
    """An item's score after an escalation or a change of priority: never less urgent
    than it was (the stores apply the same rule in ``ItemChange``)."""
    return min(current // PRIORITY_SLOTS, to_ms(deadline)) * PRIORITY_SLOTS + priority


def deadline_of(score_value: int) -> datetime:
    return from_ms(score_value // PRIORITY_SLOTS)
