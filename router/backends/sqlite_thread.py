"""Steps 3 and 5 of ``Store.ingest`` on SQLite: the message's conversation (found on its
thread key, reopened, or new) and the backlog item that carries it.

A conversation on a thread key is looked up newest first, open or pending ones before
resolved ones; a resolved one is reopened when the message arrives within the request's
reopen window, else it is named as the new conversation's ``previous_conversation_id``.
A message routed nowhere (``record``: an auto-reply, a bounce) joins the conversation
that lookup finds whatever its state, as one more message and nothing else, or else
creates one already resolved and ``recorded_only``; it has no item. A routed message
that finds a ``recorded_only`` conversation adopts it (``_adopt``): whatever its state,
it becomes what a new conversation would be, under its own id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from router.models import (
    BacklogItem,
    Conversation,
    ConversationState,
    IngestRequest,
    Timer,
)
from router.urgency import PRIORITY_SLOTS, of_decision

from .sqlite_read import decode_conversation, decode_item, encode
from .sqlite_thread_owner import Place, move_on_thread, thread_order_us, thread_place, within_window
from .sqlite_timers import arm

_ON_THREAD = """SELECT c.body, b.score, b.queue, b.body
    FROM conversations c INDEXED BY conversations_customer
    LEFT JOIN backlog b ON b.item_id = c.waiting_item AND b.released = 0
    WHERE c.customer_id = ? AND c.thread_key = ?
    ORDER BY c.state = 'resolved', c.rowid DESC LIMIT 1"""
_NEW_CONVERSATION = """INSERT INTO conversations
    (conversation_id, customer_id, thread_key, state, thread_order_us, waiting_item, body)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
_UPDATE_CONVERSATION = """UPDATE conversations SET waiting_item = ?, body = ?
    WHERE conversation_id = ?"""
_NEW_ITEM = """INSERT INTO backlog (item_id, queue, score, conversation_id, body)
    VALUES (?, ?, ?, ?, ?)"""
_UPDATE_ITEM = "UPDATE backlog SET body = ? WHERE item_id = ?"
_RESCORE_ITEM = "UPDATE backlog SET score = ?, body = ? WHERE item_id = ?"
_COUNT_MESSAGE = "UPDATE conversations SET body = ? WHERE conversation_id = ?"


class Routed:
    """Where the message went: its conversation, its item (None: routed nowhere), and
    what happened (``previous_state``: the conversation's state before the message, None
    if new)."""

    __slots__ = ("conversation", "created", "item", "previous_state", "reopened")

    def __init__(
        self,
        conversation: Conversation,
        item: BacklogItem | None,
        *,
        created: bool,
        reopened: bool,
        previous_state: ConversationState | None = None,
    ) -> None:
        self.conversation = conversation
        self.item = item
        self.created = created
        self.reopened = reopened
        self.previous_state = previous_state


def route(db: sqlite3.Connection, request: IngestRequest, customer_id: str) -> Routed:
    message = request.message
    row = db.execute(_ON_THREAD, (customer_id, message.thread_key)).fetchone()
    if row is None:
        return _new_conversation(db, request, customer_id, previous=None)
    body, old_score, queue, waiting = row
    conversation = decode_conversation(body)
    if conversation.recorded_only:
        return _adopt(db, request, customer_id, conversation)
    was = thread_place(conversation)
    previous_state = conversation.state
    reopened = False
    if conversation.state == "resolved":
        if not within_window(
            conversation.resolved_at, message.received_at, request.reopen_window_s
        ):
            return _new_conversation(db, request, customer_id, conversation.conversation_id)
        conversation.resolved_at = None
        reopened = True
    conversation.customer_id = customer_id
    conversation.state = "open"
    conversation.message_count += 1
    conversation.updated_at = max(conversation.updated_at, message.received_at)
    if waiting is not None:
        item = decode_item(waiting)
        item.queue = queue
        _join_item(db, request, item, old_score)
    elif reopened:  # the conversation keeps its routing; the new item waits in its queue
        item = _new_item(db, request, conversation.conversation_id, conversation.queue)
    else:
        decision = request.decision
        conversation.queue = decision.queue
        conversation.priority = decision.priority
        conversation.deadline = decision.deadline
        item = _new_item(db, request, conversation.conversation_id, decision.queue)
    conversation.item_id = item.item_id
    _save(db, conversation, item.item_id, was)
    return Routed(
        conversation, item, created=False, reopened=reopened, previous_state=previous_state
    )


def record(db: sqlite3.Connection, request: IngestRequest, customer_id: str) -> Routed:
    """Step 3 for a message routed nowhere: its conversation counts one more message and
    changes nothing else (state, item, routing, ``updated_at``)."""
    row = db.execute(_ON_THREAD, (customer_id, request.message.thread_key)).fetchone()
    if row is None:
        return _resolved_conversation(db, request, customer_id)
    conversation = decode_conversation(row[0])
    previous_state = conversation.state
    conversation.customer_id = customer_id
    conversation.message_count += 1
    db.execute(_COUNT_MESSAGE, (encode(conversation), conversation.conversation_id))
    return Routed(conversation, None, created=False, reopened=False, previous_state=previous_state)


def _resolved_conversation(
    db: sqlite3.Connection, request: IngestRequest, customer_id: str
) -> Routed:
    """A conversation for a message routed nowhere: resolved as it is created, with the
    decision's routing and no item, sla or timers."""
    message = request.message
    conversation = msgspec.structs.replace(
        _opened(request, customer_id, request.new_conversation_id, None),
        state="resolved",
        resolved_at=message.received_at,
        item_id=None,
        sla=None,
        awaiting_response=False,
        recorded_only=True,
    )
    _insert(db, conversation, message.thread_key, None)
    return Routed(conversation, None, created=True, reopened=False)


def _new_conversation(
    db: sqlite3.Connection, request: IngestRequest, customer_id: str, previous: str | None
) -> Routed:
    conversation = _opened(request, customer_id, request.new_conversation_id, previous)
    item = _new_item(db, request, conversation.conversation_id, request.decision.queue)
    _insert(db, conversation, request.message.thread_key, item.item_id)
    arm(db, request.decision.timers)
    return Routed(conversation, item, created=True, reopened=False)


def _adopt(
    db: sqlite3.Connection, request: IngestRequest, customer_id: str, recorded: Conversation
) -> Routed:
    """The first routed message on a conversation only recorded messages made: it becomes
    what a new conversation would be, keeping its id, channel, creation, link to a
    previous conversation and earlier messages; its version moves on."""
    opened = _opened(
        request, customer_id, recorded.conversation_id, recorded.previous_conversation_id
    )
    conversation = msgspec.structs.replace(
        opened,
        channel=recorded.channel,
        message_count=recorded.message_count + 1,
        created_at=recorded.created_at,
        updated_at=max(recorded.updated_at, opened.updated_at),
        version=recorded.version + 1,
    )
    item = _new_item(db, request, conversation.conversation_id, request.decision.queue)
    _save(db, conversation, item.item_id, thread_place(recorded))
    arm(db, _rekeyed(request.decision.timers, conversation.conversation_id))
    return Routed(conversation, item, created=True, reopened=False)


def _insert(
    db: sqlite3.Connection, conversation: Conversation, thread_key: str, waiting: str | None
) -> None:
    row = (conversation.conversation_id, conversation.customer_id, thread_key)
    columns = (conversation.state, thread_order_us(conversation), waiting, encode(conversation))
    db.execute(_NEW_CONVERSATION, row + columns)


def _save(db: sqlite3.Connection, conversation: Conversation, waiting: str, was: Place) -> None:
    """Write the conversation, last ``was`` (its place before) on its thread."""
    db.execute(_UPDATE_CONVERSATION, (waiting, encode(conversation), conversation.conversation_id))
    move_on_thread(db, conversation, was)


def _rekeyed(timers: Sequence[Timer], conversation_id: str) -> list[Timer]:
    """The decision's timers (computed for the request's ``new_conversation_id``) for
    the conversation that actually opened."""
    return [msgspec.structs.replace(t, conversation_id=conversation_id) for t in timers]


def _opened(
    request: IngestRequest, customer_id: str, conversation_id: str, previous: str | None
) -> Conversation:
    """The conversation a routed message opens: open, with the decision's routing, sla
    and skills, waiting on the request's new item."""
    message, decision = request.message, request.decision
    return Conversation(
        conversation_id=conversation_id,
        customer_id=customer_id,
        channel=message.channel,
        source=message.source,
        thread=message.thread,
        queue=decision.queue,
        priority=decision.priority,
        deadline=decision.deadline,
        message_count=1,
        created_at=message.received_at,
        updated_at=message.received_at,
        version=1,
        item_id=request.new_item_id,
        previous_conversation_id=previous,
        skills=list(decision.skills),
        tags=list(decision.tags),
        sla=decision.sla,
        awaiting_response=decision.sla is not None and decision.sla.awaiting_response,
    )


def _new_item(
    db: sqlite3.Connection, request: IngestRequest, conversation_id: str, queue: str
) -> BacklogItem:
    decision = request.decision
    item = BacklogItem(
        item_id=request.new_item_id,
        conversation_id=conversation_id,
        queue=queue,
        priority=decision.priority,
        deadline=decision.deadline,
        message_id=request.message_id,
        reasons=list(decision.reasons),
        created_at=request.message.received_at,
    )
    urgency = of_decision(decision)
    db.execute(_NEW_ITEM, (item.item_id, item.queue, urgency, item.conversation_id, encode(item)))
    return item


def _join_item(
    db: sqlite3.Connection, request: IngestRequest, item: BacklogItem, old_score: int
) -> None:
    """The waiting item carries this message, at the more urgent deadline part and
    priority; only a changed score touches the urgency index."""
    decision = request.decision
    new_score = of_decision(decision)
    item.message_id = request.message_id
    item.deadline = min(item.deadline, decision.deadline)
    item.priority = min(item.priority, decision.priority)
    item.reasons = item.reasons + [r for r in decision.reasons if r not in item.reasons]
    part = min(old_score // PRIORITY_SLOTS, new_score // PRIORITY_SLOTS)
    urgency = part * PRIORITY_SLOTS + item.priority
    if urgency == old_score:
        db.execute(_UPDATE_ITEM, (encode(item), item.item_id))
    else:
        db.execute(_RESCORE_ITEM, (urgency, encode(item), item.item_id))
