"""``Store.update_conversation`` and ``Store.contexts`` on SQLite.

An update is one transaction: the compare-and-set on the conversation's ``version`` (in
its body), the fields, the item change, timers and the served-by record. The item change
works on the conversation's waiting item (``waiting_item`` while that row is not
released) and the ``offers`` rows that list the other queues it is offered in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

import msgspec

from router.errors import Conflict, NotFound
from router.models import (
    BacklogItem,
    Conversation,
    ConversationUpdate,
    Customer,
    ItemChange,
    NormalizedMessage,
    RoutingContext,
)
from router.urgency import rescore, score

from .sqlite_read import decode_conversation, decode_item, encode, find_customer, get_customer
from .sqlite_thread_owner import move_on_thread, thread_owner, thread_place
from .sqlite_timers import arm, disarm, from_us, to_us

_CONVERSATION = """SELECT c.customer_id, c.body, b.score, b.queue, b.body
    FROM conversations c LEFT JOIN backlog b ON b.item_id = c.waiting_item AND b.released = 0
    WHERE c.conversation_id = ?"""
_PUT_CONVERSATION = """UPDATE conversations SET waiting_item = ?, body = ?
    WHERE conversation_id = ?"""
_PUT_ITEM = "UPDATE backlog SET queue = ?, score = ?, body = ? WHERE item_id = ?"
_NEW_ITEM = """INSERT INTO backlog (item_id, queue, score, conversation_id, body)
    VALUES (?, ?, ?, ?, ?)"""
_WITHDRAW = "DELETE FROM backlog WHERE item_id = ? AND released = 0"
_DROP_OFFERS = "DELETE FROM offers WHERE item_id = ?"
_OFFER = "INSERT OR IGNORE INTO offers (item_id, queue) VALUES (?, ?)"
# The newest message an agent answers: not an auto-reply or a bounce (bodies stored
# before messages had a kind are messages).
_NEWEST_MESSAGE = """SELECT message_id FROM messages WHERE customer_id = ? AND conversation_id = ?
    AND coalesce(json_extract(body, '$.kind'), 'message') = 'message'
    ORDER BY sent_ms DESC, message_id DESC LIMIT 1"""
_SERVED_BY = """INSERT INTO served_by (customer_id, at_us, agent) VALUES (?, ?, ?)
    ON CONFLICT (customer_id) DO UPDATE SET at_us = excluded.at_us, agent = excluded.agent"""

_RECENT = """SELECT json_extract(body, '$.sent_at') FROM messages
    WHERE customer_id = ? AND sent_ms >= ? ORDER BY sent_ms DESC, message_id DESC LIMIT ?"""
_LAST_AGENT = "SELECT agent, at_us FROM served_by WHERE customer_id = ?"

_FIELDS = ("state", "queue", "priority", "deadline", "assignee", "resolved_at", "sla")


# --- update_conversation ----------------------------------------------------------------


def update_conversation(
    db: sqlite3.Connection, conversation_id: str, update: ConversationUpdate
) -> Conversation:
    """Apply ``update`` (the caller holds the write transaction)."""
    row = db.execute(_CONVERSATION, (conversation_id,)).fetchone()
    if row is None:
        raise NotFound(f"conversation {conversation_id} is not known")
    customer_id, body, item_score, item_queue, item_body = row
    conversation = decode_conversation(body)
    conversation.customer_id = customer_id
    if conversation.version != update.expected_version:
        raise Conflict(
            f"conversation {conversation_id} is at version {conversation.version}, "
            f"not {update.expected_version}"
        )
    was = thread_place(conversation)
    for field in _FIELDS:
        value = getattr(update, field)
        if value is not msgspec.UNSET:
            setattr(conversation, field, value)
    if not isinstance(update.sla, msgspec.UnsetType):  # the hint follows every write of sla
        conversation.awaiting_response = update.sla is not None and update.sla.awaiting_response
    if update.at is not None:
        conversation.updated_at = update.at
    waiting: str | None = None
    if item_body is not None:
        item = decode_item(item_body)
        item.queue = item_queue
        waiting = item.item_id
        if update.item is not None:
            waiting = _change_item(db, item, item_score, update.item)
    elif update.item is not None and update.item.create_item_id is not None:
        waiting = _create_item(db, conversation, update.item.create_item_id, update)
    disarm(db, update.disarm)
    arm(db, update.arm)
    if update.served_by is not None:
        at = update.at or conversation.updated_at
        db.execute(_SERVED_BY, (customer_id, to_us(at), update.served_by))
    conversation.version += 1
    conversation.item_id = waiting
    db.execute(_PUT_CONVERSATION, (waiting, encode(conversation), conversation_id))
    move_on_thread(db, conversation, was)
    return conversation


def _change_item(
    db: sqlite3.Connection, item: BacklogItem, item_score: int, change: ItemChange
) -> str | None:
    """Apply ``change`` to the waiting item; the item id still waiting (None: withdrawn)."""
    if change.withdraw:
        db.execute(_WITHDRAW, (item.item_id,))
        db.execute(_DROP_OFFERS, (item.item_id,))
        return None
    if change.priority is not None or change.deadline is not None:
        item.priority = change.priority if change.priority is not None else item.priority
        item.deadline = change.deadline if change.deadline is not None else item.deadline
        item_score = rescore(item_score, item.deadline, item.priority)
    if change.move_to is not None:
        db.execute(_DROP_OFFERS, (item.item_id,))
        item.queue = change.move_to
    _offer(db, item, change.also_offer)
    item.reasons = item.reasons + change.reasons
    db.execute(_PUT_ITEM, (item.queue, item_score, encode(item), item.item_id))
    return item.item_id


def _create_item(
    db: sqlite3.Connection, conversation: Conversation, item_id: str, update: ConversationUpdate
) -> str | None:
    """No item waits: queue a new one carrying the conversation's newest message, at the
    conversation's (updated) priority and deadline."""
    change = update.item or ItemChange()
    found = db.execute(
        _NEWEST_MESSAGE, (conversation.customer_id, conversation.conversation_id)
    ).fetchone()
    if found is None:
        return None
    item = BacklogItem(
        item_id=item_id,
        conversation_id=conversation.conversation_id,
        queue=change.move_to or conversation.queue,
        priority=conversation.priority,
        deadline=conversation.deadline,
        message_id=found[0],
        reasons=list(change.reasons),
        created_at=update.at or conversation.updated_at,
    )
    urgency = score(item.deadline, item.priority)
    db.execute(_NEW_ITEM, (item.item_id, item.queue, urgency, item.conversation_id, encode(item)))
    _offer(db, item, change.also_offer)
    return item.item_id


def _offer(db: sqlite3.Connection, item: BacklogItem, queue: str | None) -> None:
    if queue is not None and queue != item.queue:
        db.execute(_OFFER, (item.item_id, queue))


# --- contexts -----------------------------------------------------------------------------


def contexts(
    db: sqlite3.Connection,
    messages: Sequence[NormalizedMessage],
    since: datetime,
    limit: int,
    reopen_window_s: float,
) -> list[RoutingContext]:
    return [_context(db, message, since, limit, reopen_window_s) for message in messages]


def _context(
    db: sqlite3.Connection,
    message: NormalizedMessage,
    since: datetime,
    limit: int,
    reopen_window_s: float,
) -> RoutingContext:
    customer = _sender(db, message, reopen_window_s)
    if customer is None:
        return RoutingContext()
    customer_id = customer.customer_id
    recent = [
        stamp
        for (text,) in db.execute(_RECENT, (customer_id, to_us(since) // 1000, limit))
        if (stamp := datetime.fromisoformat(text)) >= since
    ]
    context = RoutingContext(customer_id=customer_id, attributes=customer.attributes, recent=recent)
    served = db.execute(_LAST_AGENT, (customer_id,)).fetchone()
    if served is not None:
        context.last_agent, context.last_agent_at = served[0], from_us(served[1])
    return context


def _sender(
    db: sqlite3.Connection, message: NormalizedMessage, reopen_window_s: float
) -> Customer | None:
    """The customer ``Store.ingest`` step 2 picks, without merging: the oldest live owner
    of the verified identities (the others would merge into it), else ``thread_owner``'s
    (the caller's reopen window standing in for the ingest request's)."""
    owners = {owner for i in message.verified if (owner := find_customer(db, i.key)) is not None}
    if not owners:
        owner = thread_owner(db, message, reopen_window_s)
        owners = set() if owner is None else {owner}
    customers = [c for owner in owners if (c := get_customer(db, owner)) is not None]
    return min(customers, key=lambda c: (c.created_at, c.customer_id), default=None)
