"""Claim order as a property: whatever messages arrive, join, escalate and move, the
store hands out items in the order of a plain Python model of ``router.urgency``.

Runs on every implementation through the ``store`` fixture. Hypothesis examples share
one store, so each example works in its own queues and customers (a random salt).

The model's rules (``router/ports.py``, ``router/urgency.py``):

- a new item's score is the decision's: ``urgency.score(deadline, priority)``, or with
  the aging bound ``queued_at`` + ``max_wait_s`` when the decision carries one;
- a message joining a waiting item: deadline part = the smaller of the two, priority =
  the smaller of the two, and the item's ``deadline`` / ``priority`` fields the same;
- an ``ItemChange`` with a priority and/or a deadline: the item takes them and its
  score is ``urgency.rescore`` (the deadline part never moves later);
- a move keeps the score; a claim takes the queue's lowest ``(score, item_id)``.

Ties are generated on purpose (deadlines on a five-minute grid, three priorities): both
stores break them by item id, byte order (Redis ``ZPOPMIN`` orders equal scores by
member, SQLite's claim sorts by ``score, item_id``), and so does the model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import urgency
from router.models import ConversationUpdate, IngestRequest, ItemChange
from router.ports import Store

from .test_store import MINUTE, T0, ingest_one, request, verified

SLOTS = 8
"""Customers per example; each has one conversation (its own thread: a thread key
alone finds an open conversation, so threads are salted like the identities)."""


# --- the model ---------------------------------------------------------------------------


@dataclass
class Item:
    item_id: str
    queue: str
    score: int
    priority: int
    deadline: datetime

    @property
    def key(self) -> tuple[int, str]:
        return (self.score, self.item_id)


@dataclass
class Model:
    items: dict[str, Item] = field(default_factory=dict)
    waiting: dict[int, str] = field(default_factory=dict)
    """Slot -> the item its conversation has waiting."""

    def message(self, slot: int, req: IngestRequest) -> str:
        """The item the message lands on (joined or new)."""
        decision = req.decision
        new_score = decision.score
        if new_score is None:
            new_score = urgency.score(decision.deadline, decision.priority)
        item_id = self.waiting.get(slot)
        if item_id is None:
            item = Item(
                req.new_item_id, decision.queue, new_score, decision.priority, decision.deadline
            )
            self.items[item.item_id] = item
            self.waiting[slot] = item.item_id
            return item.item_id
        item = self.items[item_id]
        part = min(item.score, new_score) // urgency.PRIORITY_SLOTS
        item.priority = min(item.priority, decision.priority)
        item.deadline = min(item.deadline, decision.deadline)
        item.score = part * urgency.PRIORITY_SLOTS + item.priority
        return item_id

    def change(self, slot: int, change: ItemChange) -> None:
        item_id = self.waiting.get(slot)
        if item_id is None:
            return  # nothing waits: the change touches no item
        item = self.items[item_id]
        if change.priority is not None or change.deadline is not None:
            if change.priority is not None:
                item.priority = change.priority
            if change.deadline is not None:
                item.deadline = change.deadline
            item.score = urgency.rescore(item.score, item.deadline, item.priority)
        if change.move_to is not None:
            item.queue = change.move_to

    def claim(self, queue: str, limit: int) -> list[Item]:
        ready = sorted((i for i in self.items.values() if i.queue == queue), key=lambda i: i.key)
        taken = ready[:limit]
        for item in taken:
            del self.items[item.item_id]
        self.waiting = {s: i for s, i in self.waiting.items() if i in self.items}
        return taken


# --- operations ----------------------------------------------------------------------------

deadline_min = st.integers(0, 8).map(lambda n: n * 5)
priority = st.integers(1, 3)
message_op = st.tuples(
    st.just("message"),
    st.integers(0, SLOTS - 1),
    deadline_min,
    priority,
    st.sampled_from([None, 300, 600, 1800]),  # aging bound max_wait_s
    st.booleans(),  # a new item goes to the side queue (moved in later)
)
change_op = st.tuples(
    st.just("change"),
    st.integers(0, SLOTS - 1),
    st.none() | priority,
    st.none() | deadline_min,
)
move_op = st.tuples(st.just("move"), st.integers(0, SLOTS - 1))
claim_op = st.tuples(st.just("claim"), st.integers(1, 3))
operations = st.lists(
    st.one_of(message_op, message_op, message_op, change_op, move_op, claim_op),
    min_size=5,
    max_size=40,
)
Op = tuple[Any, ...]


@dataclass
class Run:
    store: Store
    salt: str
    model: Model = field(default_factory=Model)
    conversations: dict[int, str] = field(default_factory=dict)
    step: int = 0

    @property
    def main(self) -> str:
        return f"main-{self.salt}"

    @property
    def side(self) -> str:
        return f"side-{self.salt}"

    async def message(
        self, slot: int, deadline: int, prio: int, max_wait_s: int | None, side: bool
    ) -> None:
        self.step += 1
        sent_at = T0 + self.step * MINUTE
        req = request(
            f"e{self.step}-{self.salt}",
            verified("email", f"s{slot}-{self.salt}@example.com"),
            thread=f"t{slot}-{self.salt}",
            sent_at=sent_at,
            queue=self.side if side else self.main,
            priority=prio,
            deadline=T0 + deadline * MINUTE,
        )
        if max_wait_s is not None:
            aged = urgency.score(
                req.decision.deadline, prio, queued_at=sent_at, max_wait_s=max_wait_s
            )
            req = msgspec.structs.replace(
                req, decision=msgspec.structs.replace(req.decision, score=aged)
            )
        result = await ingest_one(self.store, req)
        self.conversations[slot] = result.conversation_id
        assert result.item_id == self.model.message(slot, req)

    async def change(self, slot: int, change: ItemChange) -> None:
        conversation_id = self.conversations.get(slot)
        if conversation_id is None:
            return
        current = await self.store.get_conversation(conversation_id)
        assert current is not None
        update = ConversationUpdate(expected_version=current.version, item=change, at=T0)
        await self.store.update_conversation(conversation_id, update)
        self.model.change(slot, change)

    async def claim(self, queue: str, limit: int) -> None:
        claimed = await self.store.claim(queue, limit, now=T0, lease_until=None, history_limit=1)
        expected = self.model.claim(queue, limit)
        got = [(c.item.item_id, c.item.priority, c.item.deadline) for c in claimed]
        assert got == [(i.item_id, i.priority, i.deadline) for i in expected]

    async def apply(self, op: Op) -> None:
        match op:
            case ("message", slot, deadline, prio, max_wait_s, side):
                await self.message(slot, deadline, prio, max_wait_s, side)
            case ("change", slot, new_priority, new_deadline):
                at = None if new_deadline is None else T0 + new_deadline * MINUTE
                await self.change(slot, ItemChange(priority=new_priority, deadline=at))
            case ("move", slot):
                await self.change(slot, ItemChange(move_to=self.main))
            case ("claim", limit):
                await self.claim(self.main, limit)
            case _:
                raise AssertionError(f"unknown operation {op!r}")


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, drain_batch=st.integers(1, 3))
async def test_claims_follow_the_urgency_model(
    store: Store, ops: list[Op], drain_batch: int
) -> None:
    run = Run(store, uuid.uuid4().hex[:8])
    for op in ops:
        await run.apply(op)
    while run.model.items:  # drain both queues in model order
        for queue in (run.main, run.side):
            await run.claim(queue, drain_batch)
    assert await store.claim(run.main, 10, now=T0, lease_until=None, history_limit=0) == []
    assert await store.claim(run.side, 10, now=T0, lease_until=None, history_limit=0) == []
