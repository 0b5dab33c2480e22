"""The routing seam: a ``Policy`` decides queue, priority and deadline for a message.

This is the spine's policy: every message goes to one queue with one priority and a
deadline from one first-response target. The rules and SLA engine plugs in here by
implementing the same protocol.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from router.models import Decision, NormalizedMessage, Reason


class Policy(Protocol):
    def decide(self, message: NormalizedMessage) -> Decision: ...


class DefaultPolicy:
    def __init__(self, *, queue: str, priority: int, first_response_s: int) -> None:
        self._queue = queue
        self._priority = priority
        self._target = timedelta(seconds=first_response_s)
        self._reasons = [
            Reason(kind="default", name="default-queue", decided={"queue": queue}),
            Reason(kind="default", name="default-priority", decided={"priority": priority}),
            Reason(
                kind="sla",
                name="first-response",
                decided={"target_s": first_response_s, "calendar": "24x7"},
            ),
        ]

    def decide(self, message: NormalizedMessage) -> Decision:
        return Decision(
            queue=self._queue,
            priority=self._priority,
            deadline=message.received_at + self._target,
            reasons=self._reasons,
        )
