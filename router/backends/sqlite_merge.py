"""Merging customers, as the ingest step does for verified identifiers of several
customers and the API does when an agent confirms a link: everything the loser owned
moves to the winner in the tables and in the profile; the loser keeps a redirect."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from router.models import Customer, Identity, MergeRecord, SuggestedLink

from .sqlite_read import encode

_PUT_CUSTOMER = """INSERT INTO customers (customer_id, merged_into, body) VALUES (?, ?, ?)
    ON CONFLICT (customer_id) DO UPDATE SET merged_into = excluded.merged_into,
    body = excluded.body"""
_PUT_MERGE = "INSERT INTO merges (winner, loser, body) VALUES (?, ?, ?)"
_MOVE_TO_WINNER = (
    "UPDATE identities SET customer_id = ?1 WHERE customer_id = ?2",
    "UPDATE conversations SET customer_id = ?1 WHERE customer_id = ?2",
    "UPDATE messages SET customer_id = ?1 WHERE customer_id = ?2",
    # the winner keeps the newer served-by record of the two
    """INSERT INTO served_by (customer_id, at_us, agent)
        SELECT ?1, at_us, agent FROM served_by WHERE customer_id = ?2
        ON CONFLICT (customer_id) DO UPDATE SET at_us = excluded.at_us, agent = excluded.agent
        WHERE excluded.at_us > served_by.at_us""",
    "DELETE FROM served_by WHERE customer_id = ?2",
)


def put_customer(db: sqlite3.Connection, customer: Customer) -> None:
    db.execute(_PUT_CUSTOMER, (customer.customer_id, customer.merged_into, encode(customer)))


def move(
    db: sqlite3.Connection, winner: Customer, loser: Customer, at: datetime, reason: str
) -> MergeRecord:
    """Merge ``loser`` into ``winner`` in the tables; the caller writes ``winner``."""
    owned = {i.key for i in winner.identities}
    winner.identities = winner.identities + [i for i in loser.identities if i.key not in owned]
    winner.suggested = suggestions(winner.suggested + loser.suggested, winner.identities)
    winner.attributes = {**loser.attributes, **winner.attributes}
    winner.name = winner.name or loser.name
    winner.merged_from = [*winner.merged_from, loser.customer_id]
    loser.identities, loser.suggested = [], []
    loser.merged_into = winner.customer_id
    for statement in _MOVE_TO_WINNER:
        db.execute(statement, (winner.customer_id, loser.customer_id))
    put_customer(db, loser)
    record = MergeRecord(winner=winner.customer_id, loser=loser.customer_id, at=at, reason=reason)
    db.execute(_PUT_MERGE, (record.winner, record.loser, encode(record)))
    return record


def suggestions(links: list[SuggestedLink], verified: list[Identity]) -> list[SuggestedLink]:
    """One link per identifier, none for an identifier the customer owns verified."""
    seen = {i.key for i in verified}
    kept: list[SuggestedLink] = []
    for link in links:
        if link.identity.key not in seen:
            seen.add(link.identity.key)
            kept.append(link)
    return kept
