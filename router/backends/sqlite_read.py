"""Reads of the SQLite store: records by id, history pages and what a claim returns.

Functions of one connection, run on the store's worker thread. A record is decoded
once from its stored JSON, by decoders built once; where its column is the truth
(``customer_id``) the fresh object is corrected in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from router.errors import BackendUnavailable
from router.models import (
    BacklogItem,
    ClaimedItem,
    Conversation,
    Customer,
    MergeRecord,
    StoredMessage,
)

MAX_MERGE_HOPS = 64
NO_CURSOR = (2**62, "")

encode = msgspec.json.Encoder().encode
decode_customer = msgspec.json.Decoder(Customer).decode
decode_conversation = msgspec.json.Decoder(Conversation).decode
decode_message = msgspec.json.Decoder(StoredMessage).decode
decode_item = msgspec.json.Decoder(BacklogItem).decode
decode_merge = msgspec.json.Decoder(MergeRecord).decode

_OWNER = "SELECT customer_id FROM identities WHERE key = ?"
_CUSTOMER = "SELECT body FROM customers WHERE customer_id = ?"
_MERGED_INTO = "SELECT merged_into FROM customers WHERE customer_id = ?"
# A conversation's item_id is its waiting_item while that item is not claimed.
_CONVERSATION = """SELECT c.customer_id, c.body, b.item_id FROM conversations c
    LEFT JOIN backlog b ON b.item_id = c.waiting_item AND b.released = 0
    WHERE c.conversation_id = ?"""
_MESSAGE = "SELECT customer_id, body FROM messages WHERE message_id = ?"
_HISTORY_PAGE = """SELECT customer_id, body, sent_ms, message_id FROM messages
    WHERE customer_id = ? AND (sent_ms, message_id) < (?, ?)
    ORDER BY sent_ms DESC, message_id DESC LIMIT ?"""
_RECENT = """SELECT body FROM messages WHERE customer_id = ?
    ORDER BY sent_ms DESC, message_id DESC LIMIT ?"""
_MERGES = "SELECT body FROM merges WHERE winner = ? OR loser = ? ORDER BY seq"
_THREADS = """SELECT m.external_id, c.thread_key FROM messages m
    JOIN conversations c ON c.conversation_id = m.conversation_id
    WHERE m.source = ? AND m.external_id IN (SELECT value FROM json_each(?))"""
_BY_EXTERNAL_ID = "SELECT customer_id, body FROM messages WHERE source = ? AND external_id = ?"
_CLAIM_CONTEXT = """SELECT c.conversation_id, c.customer_id, c.body, b.item_id, u.body
    FROM conversations c JOIN customers u ON u.customer_id = c.customer_id
    LEFT JOIN backlog b ON b.item_id = c.waiting_item AND b.released = 0
    WHERE c.conversation_id IN (SELECT value FROM json_each(?))"""


def find_customer(db: sqlite3.Connection, identity_key: str) -> str | None:
    row = db.execute(_OWNER, (identity_key,)).fetchone()
    return None if row is None else str(row[0])


def load_customer(db: sqlite3.Connection, customer_id: str) -> tuple[Customer, bytes] | None:
    """The customer and its stored body (to tell whether a change needs a write)."""
    row = db.execute(_CUSTOMER, (customer_id,)).fetchone()
    return None if row is None else (decode_customer(row[0]), row[0])


def get_customer(db: sqlite3.Connection, customer_id: str) -> Customer | None:
    row = db.execute(_CUSTOMER, (customer_id,)).fetchone()
    return None if row is None else decode_customer(row[0])


def resolve(db: sqlite3.Connection, customer_id: str) -> str | None:
    current = customer_id
    for _ in range(MAX_MERGE_HOPS):
        row = db.execute(_MERGED_INTO, (current,)).fetchone()
        if row is None:
            return None
        if row[0] is None:
            return current
        current = row[0]
    raise BackendUnavailable(f"merge chain of {customer_id} does not end")


def get_conversation(db: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = db.execute(_CONVERSATION, (conversation_id,)).fetchone()
    return None if row is None else _owned_conversation(*row)


def get_message(db: sqlite3.Connection, message_id: str) -> StoredMessage:
    customer_id, body = db.execute(_MESSAGE, (message_id,)).fetchone()
    return _owned_message(customer_id, body)


def find_thread(db: sqlite3.Connection, source: str, external_ids: Sequence[str]) -> str | None:
    """The thread of the first of ``external_ids`` stored; a conversation's thread key is
    its source (the messages' source), NUL, its thread ('' for none)."""
    found = dict(db.execute(_THREADS, (source, encode(list(external_ids)))).fetchall())
    for external_id in external_ids:
        if external_id in found:
            return str(found[external_id])[len(source) + 1 :] or None
    return None


def message_by_external_id(
    db: sqlite3.Connection, source: str, external_id: str
) -> StoredMessage | None:
    row = db.execute(_BY_EXTERNAL_ID, (source, external_id)).fetchone()
    return None if row is None else _owned_message(*row)


def history_page(
    db: sqlite3.Connection, customer_id: str, limit: int, before: tuple[int, str]
) -> tuple[list[StoredMessage], str | None]:
    """Up to ``limit`` messages older than ``before``, and the cursor of the next page."""
    rows = db.execute(_HISTORY_PAGE, (customer_id, *before, limit + 1)).fetchall()
    messages = [_owned_message(owner, body) for owner, body, _, _ in rows[:limit]]
    if len(rows) <= limit:
        return messages, None
    _, _, sent_ms, message_id = rows[limit - 1]
    return messages, f"{sent_ms}:{message_id}"


def merges(db: sqlite3.Connection, customer_id: str) -> list[MergeRecord]:
    rows = db.execute(_MERGES, (customer_id, customer_id)).fetchall()
    return [decode_merge(body) for (body,) in rows]


def claimed_items(
    db: sqlite3.Connection, items: Sequence[BacklogItem], history_limit: int
) -> list[ClaimedItem]:
    """Conversation, customer, message and recent history of each claimed item: one
    statement for the conversations and customers, one per item for the history (its
    newest message is, nearly always, the item's message)."""
    context = {
        conversation_id: (customer_id, conversation, waiting, customer)
        for conversation_id, customer_id, conversation, waiting, customer in db.execute(
            _CLAIM_CONTEXT, (encode([item.conversation_id for item in items]),)
        )
    }
    claimed: list[ClaimedItem] = []
    for item in items:
        found = context.get(item.conversation_id)
        if found is None:
            raise BackendUnavailable(f"backlog item {item.item_id} has no conversation or customer")
        customer_id, conversation, waiting, customer = found
        history: list[StoredMessage] = []
        message = None
        if history_limit > 0:
            for (body,) in db.execute(_RECENT, (customer_id, history_limit)):
                stored = _owned_message(customer_id, body)  # the column is the parameter
                history.append(stored)
                if stored.message_id == item.message_id:
                    message = _owned_message(customer_id, body)  # its own copy, as before
        claimed.append(
            ClaimedItem(
                item=item,
                conversation=_owned_conversation(customer_id, conversation, waiting),
                customer=decode_customer(customer),
                message=message or get_message(db, item.message_id),
                history=history,
            )
        )
    return claimed


def _owned_conversation(customer_id: str, body: bytes, waiting: str | None) -> Conversation:
    """The body with the columns that are the truth: owner and waiting item."""
    conversation = decode_conversation(body)
    if conversation.customer_id != customer_id:
        conversation.customer_id = customer_id
    if conversation.item_id != waiting:
        conversation.item_id = waiting
    return conversation


def _owned_message(customer_id: str, body: bytes) -> StoredMessage:
    message = decode_message(body)
    if message.customer_id != customer_id:
        message.customer_id = customer_id
    return message
