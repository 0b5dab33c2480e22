"""``SqliteStore``: the embedded ``Store`` on one SQLite file (stdlib ``sqlite3``).

One connection, owned by one worker thread (a single-thread executor), so the event loop
never blocks and every call is serialized; the loop only hands a call over and gets its
result. WAL journal: an ingest commits with ``synchronous=FULL``, so a message is on
disk when ``ingest`` returns; why claims and settles may commit with ``NORMAL`` is in
``sqlite_database``. The layout of the file is in ``sqlite_schema``, the per-message
ingest step in ``sqlite_ingest``, the reads in ``sqlite_read``.

Readings of the protocol: a message without a thread never attaches through the thread
key; a waiting item takes the more urgent deadline and, separately, the more urgent
priority. A message of a batch that cannot be stored (its text cannot be encoded, an id
drawn twice) is rolled back alone, the rest commit, and ``ingest`` then raises
``InvalidMessage`` naming its position: retrying the batch returns the stored ones as
duplicates. History cursors are ``<sent_ms>:<message_id>``. The routing half
(``update_conversation``, timers, contexts) is in ``sqlite_routing`` and
``sqlite_timers``; the readings both stores share are pinned in
``tests/contract/test_store_routing.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from router.backends.sqlite_worker import SqliteWorker
from router.clock import to_ms
from router.errors import InputError, NotFound
from router.models import (
    BacklogStats,
    ClaimedItem,
    Conversation,
    ConversationUpdate,
    Customer,
    HistoryPage,
    IngestRequest,
    IngestResult,
    MergeRecord,
    NormalizedMessage,
    RoutingContext,
    StoredMessage,
    Timer,
)
from router.urgency import PRIORITY_SLOTS, score

from . import sqlite_read as read
from . import sqlite_routing as routing
from . import sqlite_timers as timers
from .sqlite_database import REQUEUE_ALL, REQUEUE_EXPIRED, Database
from .sqlite_schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

T = TypeVar("T")


class SqliteStore:
    """The embedded ``Store``: durable in one file, one process."""

    def __init__(self, path: Path) -> None:
        self._worker: SqliteWorker[Database] = SqliteWorker(
            path,
            what="SQLite store",
            thread_name="omniroute-sqlite",
            opener=Database.open,
            closer=Database.close,
        )

    async def open(self) -> None:
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()

    async def ping(self) -> None:
        await self._call(lambda db: db.ping())

    async def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        if not requests:
            return []
        return await self._call(lambda db: db.ingest(requests))

    async def find_thread(self, source: str, external_ids: Sequence[str]) -> str | None:
        if not external_ids:
            return None
        return await self._call(lambda db: read.find_thread(db.db, source, external_ids))

    async def edit_message(
        self, source: str, external_id: str, *, text: str, edited_at: datetime
    ) -> StoredMessage | None:
        return await self._call(lambda db: db.edit_message(source, external_id, text, edited_at))

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self._call(lambda db: read.get_customer(db.db, customer_id))

    async def resolve_customer(self, customer_id: str) -> str | None:
        return await self._call(lambda db: read.resolve(db.db, customer_id))

    async def find_customer(self, identity_key: str) -> str | None:
        return await self._call(lambda db: read.find_customer(db.db, identity_key))

    async def history(
        self, customer_id: str, *, limit: int, before: str | None = None
    ) -> HistoryPage:
        cursor = _parse_cursor(before)
        if limit < 1:
            raise InputError("history limit must be at least 1")
        return await self._call(lambda db: _history(db, customer_id, limit, cursor))

    async def merge(
        self, winner_id: str, loser_id: str, *, at: datetime, reason: str
    ) -> MergeRecord:
        return await self._call(lambda db: db.merge(winner_id, loser_id, at, reason))

    async def merges(self, customer_id: str) -> list[MergeRecord]:
        return await self._call(lambda db: read.merges(db.db, customer_id))

    async def contexts(
        self,
        messages: Sequence[NormalizedMessage],
        *,
        since: datetime,
        limit: int,
        reopen_window_s: float = 0.0,
    ) -> list[RoutingContext]:
        if not messages:
            return []
        return await self._call(
            lambda db: routing.contexts(db.db, messages, since, limit, reopen_window_s)
        )

    async def update_conversation(
        self, conversation_id: str, update: ConversationUpdate
    ) -> Conversation:
        return await self._call(lambda db: db.update_conversation(conversation_id, update))

    async def fire_timers(self, now: datetime, limit: int) -> list[Timer]:
        if limit < 1:
            return []
        return await self._call(lambda db: db.fire_timers(now, limit))

    async def next_timer(self) -> datetime | None:
        return await self._call(lambda db: timers.next_due(db.db))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return await self._call(lambda db: read.get_conversation(db.db, conversation_id))

    async def claim(
        self,
        queue: str,
        limit: int,
        *,
        now: datetime,
        lease_until: datetime | None,
        history_limit: int,
    ) -> list[ClaimedItem]:
        if limit < 1:
            return []
        lease_ms = None if lease_until is None else to_ms(lease_until)
        return await self._call(lambda db: db.claim(queue, limit, lease_ms, history_limit))

    async def settle(self, item_ids: Sequence[str]) -> None:
        if item_ids:
            await self._call(lambda db: db.settle(item_ids))

    async def requeue_expired(self, now: datetime) -> int:
        return await self._call(lambda db: db.requeue(REQUEUE_EXPIRED, (to_ms(now),)))

    async def requeue_released(self) -> int:
        return await self._call(lambda db: db.requeue(REQUEUE_ALL, ()))

    async def backlog_stats(
        self, *, at_risk_before: datetime | None = None
    ) -> dict[str, BacklogStats]:
        bound = None if at_risk_before is None else score(at_risk_before, PRIORITY_SLOTS)
        return await self._call(lambda db: db.backlog_stats(bound))

    async def _call(self, operation: Callable[[Database], T]) -> T:
        return await self._worker.call(operation)


def _parse_cursor(before: str | None) -> tuple[int, str]:
    if before is None:
        return read.NO_CURSOR
    sent_ms, sep, message_id = before.partition(":")
    if not sep or not message_id or not sent_ms.removeprefix("-").isdigit() or len(sent_ms) > 18:
        raise InputError("history cursor is malformed; use a page's next_before as given")
    return int(sent_ms), message_id


def _history(db: Database, customer_id: str, limit: int, before: tuple[int, str]) -> HistoryPage:
    live = read.resolve(db.db, customer_id)
    if live is None:
        raise NotFound(f"customer {customer_id} is not known")
    messages, next_before = read.history_page(db.db, live, limit, before)
    return HistoryPage(messages=messages, next_before=next_before)
