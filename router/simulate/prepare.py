"""From traffic records to arrivals: normalize each message and let the real policy
decide it once, with the routing context the store would give (the customer's stored
attributes and recent contacts). Every ordering then replays the same arrivals, so the
comparison differs only in the order agents take work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from router import urgency
from router.errors import InvalidMessage
from router.models import Conversation, Decision, NormalizedMessage, RoutingContext
from router.pipeline import normalize
from router.simulate.adapter import SimRouter
from router.simulate.traffic import TrafficRecord

RECENT_WINDOW = timedelta(days=7)
RECENT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Arrival:
    seq: int
    at: datetime
    at_s: float
    thread: str
    """Customer and thread: a message joins the waiting item of the same thread."""
    customer_id: str
    message: NormalizedMessage
    decision: Decision
    score: int
    due_s: float
    """When the first response is due: the SLA clock's ``due``, else the deadline."""
    handle_s: float

    @property
    def conversation_id(self) -> str:
        return f"con_{self.seq}"

    @property
    def item_id(self) -> str:
        return f"itm_{self.seq}"

    def conversation(self) -> Conversation:
        """The conversation the store would create for this message (version 1)."""
        d, m = self.decision, self.message
        return Conversation(
            conversation_id=self.conversation_id,
            customer_id=self.customer_id,
            channel=m.channel,
            source=m.source,
            thread=m.thread,
            queue=d.queue,
            priority=d.priority,
            deadline=d.deadline,
            message_count=1,
            created_at=self.at,
            updated_at=self.at,
            version=1,
            item_id=self.item_id,
            skills=list(d.skills),
            tags=list(d.tags),
            sla=d.sla,
        )


@dataclass
class _Customer:
    customer_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    recent: list[datetime] = field(default_factory=list)
    """``sent_at`` of its messages, oldest first."""


@dataclass
class Prepared:
    arrivals: list[Arrival]
    rejected: list[str]
    """Records that did not normalize, with why (the daemon would answer 422)."""


def prepare(
    records: list[TrafficRecord],
    handle_s: list[float],
    router: SimRouter,
    *,
    on_record: Callable[[], None] = lambda: None,
) -> Prepared:
    customers: dict[str, _Customer] = {}
    arrivals: list[Arrival] = []
    rejected: list[str] = []
    for seq, (record, handle) in enumerate(zip(records, handle_s, strict=True)):
        on_record()
        try:
            message = normalize(
                record.message, received_at=record.at, default_region=router.default_region
            )
        except InvalidMessage as exc:
            rejected.append(f"{record.message.external_id}: {exc.message}")
            continue
        customer = _customer_of(message, customers)
        context = _context(customer, record.at)
        decision = router.decide(
            message, context, conversation_id=f"con_{seq}", item_id=f"itm_{seq}", now=record.at
        )
        arrivals.append(
            _arrival(
                seq,
                at=record.at,
                message=message,
                customer=customer,
                decision=decision,
                handle_s=handle,
            )
        )
        customer.attributes.update(message.customer_attributes)
        customer.recent.append(message.sent_at)
    return Prepared(arrivals, rejected)


def _customer_of(message: NormalizedMessage, customers: dict[str, _Customer]) -> _Customer:
    keys = [i.key for i in message.verified] or [i.key for i in message.identities]
    key = keys[0] if keys else f"thread:{message.thread_key}"
    if key not in customers:
        customers[key] = _Customer(customer_id=f"cus_{len(customers)}")
    return customers[key]


def _context(customer: _Customer, now: datetime) -> RoutingContext:
    since = now - RECENT_WINDOW
    recent = [t for t in reversed(customer.recent[-RECENT_LIMIT:]) if t >= since]
    return RoutingContext(
        customer_id=customer.customer_id, attributes=dict(customer.attributes), recent=recent
    )


def _arrival(
    seq: int,
    *,
    at: datetime,
    message: NormalizedMessage,
    customer: _Customer,
    decision: Decision,
    handle_s: float,
) -> Arrival:
    score = decision.score
    if score is None:
        score = urgency.score(decision.deadline, decision.priority)
    return Arrival(
        seq=seq,
        at=at,
        at_s=at.timestamp(),
        thread=f"{customer.customer_id}\x00{message.thread_key}",
        customer_id=customer.customer_id,
        message=message,
        decision=decision,
        score=score,
        due_s=_first_response_due(decision).timestamp(),
        handle_s=handle_s,
    )


def _first_response_due(decision: Decision) -> datetime:
    if decision.sla is not None:
        for clock in decision.sla.clocks:
            if clock.kind == "first_response" and clock.due is not None:
                return clock.due
    return decision.deadline
