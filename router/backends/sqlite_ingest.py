"""One message of ``Store.ingest``, inside the batch's transaction.

Per new message: one lookup statement (the dedupe key and the owner of each
identifier), the customer's row, the open conversation together with its waiting
item, then three writes (backlog item, conversation, message) and a customer write
only when the profile changed. Steps 3 and 5 (conversation and backlog item) are in
``sqlite_thread``, and so is where a message routed nowhere goes (``record``).
"""

from __future__ import annotations

import sqlite3

from router.clock import to_ms
from router.models import (
    Customer,
    IngestRequest,
    IngestResult,
    StoredMessage,
    SuggestedLink,
)

from .sqlite_merge import move, put_customer, suggestions
from .sqlite_read import decode_conversation, encode, load_customer
from .sqlite_thread import record, route
from .sqlite_thread_owner import thread_owner

_DEDUPE = "SELECT (SELECT message_id FROM messages WHERE source = ? AND external_id = ?)"
_OWNER = ", (SELECT customer_id FROM identities WHERE key = ?)"
_LOOKUPS = [_DEDUPE + _OWNER * count for count in range(8)]
_DUPLICATE = """SELECT m.message_id, m.customer_id, c.conversation_id, c.body
    FROM messages m JOIN conversations c ON c.conversation_id = m.conversation_id
    WHERE m.source = ? AND m.external_id = ?"""
_OWN_IDENTITY = "INSERT OR REPLACE INTO identities (key, customer_id) VALUES (?, ?)"
_PUT_MESSAGE = """INSERT INTO messages
    (message_id, source, external_id, customer_id, conversation_id, sent_ms, body)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""


def ingest_one(db: sqlite3.Connection, request: IngestRequest) -> IngestResult:
    """Store one message (the caller holds the transaction and rolls back on error)."""
    message = request.message
    keys = [identity.key for identity in message.identities]
    lookup = _LOOKUPS[len(keys)] if len(keys) < len(_LOOKUPS) else _DEDUPE + _OWNER * len(keys)
    first, *owned_by = db.execute(lookup, (message.source, message.external_id, *keys)).fetchone()
    if first is not None:
        return _duplicate(db, request)
    owners = {key: owner for key, owner in zip(keys, owned_by, strict=True) if owner is not None}
    customer, original, merged = _identify(db, request, owners)
    _update_profile(db, request, customer, owners)
    if original is None or encode(customer) != original:
        put_customer(db, customer)
    place = route if message.routed else record
    routed = place(db, request, customer.customer_id)
    _put_message(db, request, customer.customer_id, routed.conversation.conversation_id)
    item = routed.item
    where = routed.conversation if item is None else item  # no item: the conversation's routing
    return IngestResult(
        message_id=request.message_id,
        customer_id=customer.customer_id,
        conversation_id=routed.conversation.conversation_id,
        queue=where.queue,
        priority=where.priority,
        deadline=where.deadline,
        item_id=None if item is None else item.item_id,
        new_customer=original is None,
        merged=merged,
        conversation_created=routed.created,
        reopened=routed.reopened,
        previous_state=routed.previous_state,
        awaiting_response=routed.conversation.awaiting_response,
        routed=message.routed,
    )


def _duplicate(db: sqlite3.Connection, request: IngestRequest) -> IngestResult:
    message = request.message
    row = db.execute(_DUPLICATE, (message.source, message.external_id)).fetchone()
    message_id, customer_id, conversation_id, body = row
    conversation = decode_conversation(body)
    return IngestResult(
        message_id=message_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        queue=conversation.queue,
        priority=conversation.priority,
        deadline=conversation.deadline,
        duplicate=True,
        routed=message.routed,  # the repeat's kind: a provider re-delivers the same kind
    )


# --- step 2: who is it ------------------------------------------------------------------


def _identify(
    db: sqlite3.Connection, request: IngestRequest, owners: dict[str, str]
) -> tuple[Customer, bytes | None, list[str]]:
    """The customer (merging verified owners), its stored body (None: new), losers."""
    message = request.message
    by_owner: dict[str, str] = {}
    for identity in message.identities:
        if identity.verified and identity.key in owners:
            by_owner.setdefault(owners[identity.key], identity.key)
    if by_owner:
        return _merge_owners(db, request, by_owner)
    owner = thread_owner(db, message, request.reopen_window_s)
    loaded = None if owner is None else load_customer(db, owner)
    if loaded is not None:
        return loaded[0], loaded[1], []
    created = Customer(customer_id=request.new_customer_id, created_at=message.received_at)
    return created, None, []


def _merge_owners(
    db: sqlite3.Connection, request: IngestRequest, by_owner: dict[str, str]
) -> tuple[Customer, bytes, list[str]]:
    loaded = [load_customer(db, customer_id) for customer_id in by_owner]
    present = [pair for pair in loaded if pair is not None]
    winner, original = min(present, key=lambda pair: (pair[0].created_at, pair[0].customer_id))
    merged: list[str] = []
    for loser, _ in present:
        if loser is not winner:
            reason = f"identity:{by_owner[loser.customer_id]}"
            move(db, winner, loser, request.message.received_at, reason)
            merged.append(loser.customer_id)
    return winner, original, merged


def _update_profile(
    db: sqlite3.Connection, request: IngestRequest, customer: Customer, owners: dict[str, str]
) -> None:
    message = request.message
    owned = {i.key for i in customer.identities}
    fresh = [i for i in message.identities if i.verified and i.key not in owned]
    if fresh:
        customer.identities = customer.identities + fresh
        db.executemany(_OWN_IDENTITY, [(i.key, customer.customer_id) for i in fresh])
    typed = [
        SuggestedLink(
            identity=identity,
            other_customer_id=owners.get(identity.key),
            message_id=request.message_id,
            at=message.received_at,
        )
        for identity in message.identities
        if not identity.verified
    ]
    if typed or customer.suggested:
        customer.suggested = suggestions(customer.suggested + typed, customer.identities)
    customer.name = customer.name or message.sender_name
    if message.customer_attributes:
        customer.attributes = {**customer.attributes, **message.customer_attributes}


# --- step 4: history ---------------------------------------------------------------------


def _put_message(
    db: sqlite3.Connection, request: IngestRequest, customer_id: str, conversation_id: str
) -> None:
    message = request.message
    stored = StoredMessage(
        message_id=request.message_id,
        conversation_id=conversation_id,
        customer_id=customer_id,
        channel=message.channel,
        source=message.source,
        external_id=message.external_id,
        sender_name=message.sender_name,
        identities=list(message.identities),
        subject=message.subject,
        text=message.text,
        sent_at=message.sent_at,
        received_at=message.received_at,
        attachments=list(message.attachments),
        attributes=message.attributes,
        kind=message.kind,
    )
    db.execute(
        _PUT_MESSAGE,
        (
            request.message_id,
            message.source,
            message.external_id,
            customer_id,
            conversation_id,
            to_ms(message.sent_at),
            encode(stored),
        ),
    )
