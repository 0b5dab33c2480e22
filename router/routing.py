"""The routing seam: a ``Policy`` decides queue, priority and deadline for a message.

``router.policy.RoutingPolicy`` (rules, SLA clocks, calendars, sticky routing) is the
daemon's. ``DefaultPolicy`` is the simplest one that fits: one queue, one priority, a
deadline from one first-response target (benchmarks and tests use it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from router.models import Decision, NormalizedMessage, Reason, RoutingContext


class Policy(Protocol):
    @property
    def context_window_s(self) -> float:
        """How far back ``RoutingContext.recent`` must reach for this policy's rules."""
        ...

    @property
    def needs_context(self) -> bool:
        """False: ``decide`` ignores the context, so the pipeline does not read it."""
        ...

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
    ) -> Decision:
        """Where a message opening a new conversation ``conversation_id`` (its backlog
        item ``item_id``) goes; for a message joining a conversation, what it adds."""
        ...


class DefaultPolicy:
    context_window_s = 0.0
    needs_context = False

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

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
    ) -> Decision:
        return Decision(
            queue=self._queue,
            priority=self._priority,
            deadline=message.received_at + self._target,
            reasons=self._reasons,
        )
