"""The synchronous half of ``SqliteStore``: transactions on its one connection.

Every method runs on the store's worker thread. Durability per transaction kind:

- ``ingest``, ``merge`` and ``update_conversation`` commit with ``synchronous=FULL``:
  the WAL is fsynced before the call returns, so an accepted message survives a process
  crash and a power loss.
- ``claim``, ``settle``, ``requeue`` and ``fire_timers`` commit with
  ``synchronous=NORMAL``: their WAL frames reach the operating system at once (a process
  crash loses nothing) and the disk at the next FULL commit or checkpoint, whose fsync
  covers every frame before it.
  A power loss can therefore undo only a suffix of them, never an accepted message, and
  the WAL checksums make what survives a consistent prefix of transactions. An undone
  claim leaves the items waiting and an undone settle leaves them released (requeued by
  ``requeue_released`` or when their lease ends): the items are delivered again, which
  at-least-once delivery allows; nothing is lost. An undone fire arms the timers again:
  they fire again. Each saves an fsync per call.

A batch of ``ingest`` is one transaction, without savepoints: a savepoint makes SQLite
copy every page before its first change in it (the sub-journal), which cost more than
the statements themselves. If a message cannot be stored (bad data, an id drawn twice)
the whole transaction rolls back and the batch runs again in a new one with a
SAVEPOINT per message, so that message is rolled back alone, the others commit and
``InvalidMessage`` names its position (a retry returns the stored ones as duplicates).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from router.errors import Conflict, InvalidMessage, NotFound
from router.models import (
    BacklogStats,
    ClaimedItem,
    Conversation,
    ConversationUpdate,
    Customer,
    IngestRequest,
    IngestResult,
    MergeRecord,
    StoredMessage,
    Timer,
)
from router.urgency import deadline_of

from . import sqlite_read as read
from . import sqlite_routing as routing
from . import sqlite_timers as timers
from .edits import apply_edit
from .sqlite_ingest import ingest_one
from .sqlite_merge import move, put_customer
from .sqlite_schema import connect

# Errors that spoil one message of a batch (bad data, an id drawn twice), not the file.
_MESSAGE_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    ValueError,
    OverflowError,
    msgspec.EncodeError,
)

# The queue's own waiting items and those also offered in it, each side cut to the limit
# (the first by the urgency index: a deep backlog is not sorted) and then merged; a
# claimed item is released in the queue it was claimed from and leaves its other offers.
_CLAIM = """UPDATE backlog SET released = 1, lease_until_ms = ?1, queue = ?2
    WHERE item_id IN (SELECT item_id FROM (
        SELECT * FROM (SELECT score, item_id FROM backlog WHERE queue = ?2 AND released = 0
            ORDER BY score, item_id LIMIT ?3)
        UNION ALL
        SELECT * FROM (SELECT b.score, b.item_id FROM offers o
            JOIN backlog b ON b.item_id = o.item_id AND b.released = 0 WHERE o.queue = ?2
            ORDER BY b.score, b.item_id LIMIT ?3))
        ORDER BY score, item_id LIMIT ?3)
    RETURNING score, item_id, body"""
_DROP_OFFERS = "DELETE FROM offers WHERE item_id IN (SELECT value FROM json_each(?))"
_SETTLE = "DELETE FROM backlog WHERE item_id = ? AND released = 1"
REQUEUE_EXPIRED = """UPDATE backlog SET released = 0, lease_until_ms = NULL
    WHERE released = 1 AND lease_until_ms <= ? RETURNING item_id, conversation_id"""
REQUEUE_ALL = """UPDATE backlog SET released = 0, lease_until_ms = NULL
    WHERE released = 1 RETURNING item_id, conversation_id"""
# The conversation waits for a requeued item unless another item waits for it already.
_RESTORE_WAITING = """UPDATE conversations SET waiting_item = ?1 WHERE conversation_id = ?2
    AND (waiting_item IS NULL OR NOT EXISTS (SELECT 1 FROM backlog
        WHERE item_id = conversations.waiting_item AND released = 0))"""
_EDIT = "UPDATE messages SET body = ? WHERE message_id = ?"
_STATS = """SELECT queue, SUM(released = 0), MIN(CASE WHEN released = 0 THEN score END),
    SUM(released), SUM(released = 0 AND score <= ?) FROM backlog GROUP BY queue"""


class Database:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    def open(cls, path: Path) -> Database:
        return cls(connect(path))

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        self.db.execute("SELECT 1").fetchone()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """``durable=False``: commit without waiting for the disk (see the module doc)."""
        db = self.db
        if not durable:
            db.execute("PRAGMA synchronous = NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                db.execute("PRAGMA synchronous = FULL")

    # --- ingest ---------------------------------------------------------------------------

    def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        db = self.db
        try:
            with self.transaction():
                return [ingest_one(db, request) for request in requests]
        except _MESSAGE_ERRORS:
            pass  # rolled back: nothing of the batch is stored; again, one by one
        with self.transaction():
            results, failed = self._ingest_one_by_one(requests)
        if not failed:
            return results
        raise InvalidMessage(
            f"message {', '.join(failed)} of a batch of {len(requests)} could not be "
            f"stored; the {len(results)} others were stored (a retry returns them as "
            "duplicates)"
        )

    def _ingest_one_by_one(
        self, requests: Sequence[IngestRequest]
    ) -> tuple[list[IngestResult], list[str]]:
        db = self.db
        results: list[IngestResult] = []
        failed: list[str] = []
        for index, request in enumerate(requests):
            db.execute("SAVEPOINT message")
            try:
                results.append(ingest_one(db, request))
            except _MESSAGE_ERRORS as exc:
                db.execute("ROLLBACK TO message")
                failed.append(f"#{index} ({type(exc).__name__})")
            db.execute("RELEASE message")
        return results, failed

    def edit_message(
        self, source: str, external_id: str, text: str, edited_at: datetime
    ) -> StoredMessage | None:
        with self.transaction():
            message = read.message_by_external_id(self.db, source, external_id)
            if message is not None and apply_edit(message, text, edited_at):
                self.db.execute(_EDIT, (read.encode(message), message.message_id))
        return message

    # --- customers --------------------------------------------------------------------------

    def merge(self, winner_id: str, loser_id: str, at: datetime, reason: str) -> MergeRecord:
        with self.transaction():
            winner = self._mergeable(winner_id)
            loser = self._mergeable(loser_id)
            if winner_id == loser_id:
                raise Conflict("a customer cannot be merged into itself")
            record = move(self.db, winner, loser, at, reason)
            put_customer(self.db, winner)
        return record

    def _mergeable(self, customer_id: str) -> Customer:
        customer = read.get_customer(self.db, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} is not known")
        if customer.merged_into is not None:
            raise Conflict(f"customer {customer_id} is already merged into another")
        return customer

    # --- conversations and timers -----------------------------------------------------------

    def update_conversation(self, conversation_id: str, update: ConversationUpdate) -> Conversation:
        with self.transaction():
            return routing.update_conversation(self.db, conversation_id, update)

    def fire_timers(self, now: datetime, limit: int) -> list[Timer]:
        """Not waiting for the disk (see the module doc): a fire a power loss undoes
        fires again; the caller's durable ``update_conversation`` commits it for good."""
        with self.transaction(durable=False):
            return timers.fire(self.db, now, limit)

    # --- backlog ----------------------------------------------------------------------------

    def claim(
        self, queue: str, limit: int, lease_ms: int | None, history_limit: int
    ) -> list[ClaimedItem]:
        with self.transaction(durable=False):
            rows = self.db.execute(_CLAIM, (lease_ms, queue, limit)).fetchall()
            if not rows:
                return []
            rows.sort(key=lambda row: (row[0], row[1]))
            items = [read.decode_item(body) for _, _, body in rows]
            for item in items:
                item.queue = queue
            self.db.execute(_DROP_OFFERS, (read.encode([item.item_id for item in items]),))
            return read.claimed_items(self.db, items, history_limit)

    def settle(self, item_ids: Sequence[str]) -> None:
        with self.transaction(durable=False):
            self.db.executemany(_SETTLE, [(item_id,) for item_id in item_ids])

    def requeue(self, statement: str, parameters: tuple[Any, ...]) -> int:
        """Back to the backlog; a conversation with no item waiting waits for it again."""
        with self.transaction(durable=False):
            rows = self.db.execute(statement, parameters).fetchall()
            self.db.executemany(_RESTORE_WAITING, rows)
        return len(rows)

    def backlog_stats(self, at_risk_bound: int | None) -> dict[str, BacklogStats]:
        """``at_risk_bound``: the highest score that counts as at risk (None: none)."""
        bound = -1 if at_risk_bound is None else at_risk_bound
        return {
            queue: BacklogStats(
                depth=waiting,
                oldest_deadline=None if best is None else deadline_of(best),
                released=released,
                at_risk=at_risk or 0,
            )
            for queue, waiting, best, released, at_risk in self.db.execute(_STATS, (bound,))
        }
