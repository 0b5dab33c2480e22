"""The customer a thread key gives a message with no verified identity (``Store.ingest``
step 2 and ``Store.contexts``), on SQLite.

A thread key can be shared (a business number, a group chat), so it finds *the thread's
conversation*, whoever's it is: the newest open or pending one (``created_at``, then the
greatest id), else the one resolved last (``resolved_at``, then the greatest id). The
``thread_order_us`` column keeps that order in the ``conversations_on_thread`` index;
``move_on_thread`` writes it with the state, and only when either moved, so the index
entry of an open conversation is not rewritten by every message.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from router.models import Conversation, NormalizedMessage

from .sqlite_read import decode_conversation
from .sqlite_timers import to_us

_THREAD_CONVERSATION = """SELECT customer_id, state, body FROM conversations
    WHERE thread_key = ?
    ORDER BY state = 'resolved', thread_order_us DESC, conversation_id DESC LIMIT 1"""
_MOVE = "UPDATE conversations SET state = ?, thread_order_us = ? WHERE conversation_id = ?"

Place = tuple[str, int]  # the indexed columns: state, thread_order_us


def thread_order_us(conversation: Conversation) -> int:
    """The ``thread_order_us`` column: ``created_at`` while the conversation is open or
    pending, ``resolved_at`` once it is resolved (0 without one), in µs."""
    if conversation.state != "resolved":
        return to_us(conversation.created_at)
    return 0 if conversation.resolved_at is None else to_us(conversation.resolved_at)


def thread_place(conversation: Conversation) -> Place:
    return conversation.state, thread_order_us(conversation)


def move_on_thread(db: sqlite3.Connection, conversation: Conversation, was: Place) -> None:
    """Write the conversation's state and ``thread_order_us`` if they are not ``was``."""
    place = thread_place(conversation)
    if place != was:
        db.execute(_MOVE, (*place, conversation.conversation_id))


def within_window(resolved_at: datetime | None, received_at: datetime, window_s: float) -> bool:
    """A message received at most ``window_s`` after the resolution reopens."""
    if resolved_at is None or window_s <= 0:
        return False
    return received_at - resolved_at <= timedelta(seconds=window_s)


def thread_owner(db: sqlite3.Connection, message: NormalizedMessage, window_s: float) -> str | None:
    """Step 2 when no verified identity is owned. Only a message with no verified
    identity at all takes the customer on its thread (one with a verified identity is a
    new customer: two people on a shared thread never become one); none without a thread
    (the thread key would join strangers). That customer is the one of the thread's
    conversation when it is open or pending, or resolved and the message would reopen it
    (within ``window_s``) or adopt it (``recorded_only``); for a message routed nowhere,
    in any state."""
    if message.verified or message.thread is None:
        return None
    row = db.execute(_THREAD_CONVERSATION, (message.thread_key,)).fetchone()
    if row is None:
        return None
    customer_id, state, body = row
    if state == "resolved" and message.routed:
        conversation = decode_conversation(body)
        reopens = within_window(conversation.resolved_at, message.received_at, window_s)
        if not (reopens or conversation.recorded_only):
            return None
    return str(customer_id)
