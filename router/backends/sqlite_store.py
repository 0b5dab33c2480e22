"""``SqliteStore``: the embedded ``Store`` on one SQLite file (stdlib ``sqlite3``).

One connection, owned by one worker thread (a single-thread executor), so the event loop
never blocks and every call is serialized. WAL journal with ``synchronous=FULL``: a
commit is on disk when ``ingest`` returns. A batch passed to ``ingest`` is one
transaction (one fsync) with a SAVEPOINT per message, so one message that cannot be
stored is rolled back alone. Records are msgspec JSON in ``body`` columns; the columns
beside them are what the queries look up, and where a column and the body could
disagree (``customer_id`` after a merge) the column is the truth.

Tables::

    schema_version  version                       one row: the layout of this file
    customers       customer_id PK, merged_into,  body = Customer
    identities      key PK ("kind:value"), customer_id
                    verified identities of live customers only; a merge moves them
    conversations   conversation_id PK, customer_id, thread_key (source NUL thread),
                    state, waiting_item (the backlog item waiting for it, if any),
                    body = Conversation
    messages        message_id PK, (source, external_id) UNIQUE (the dedupe key),
                    customer_id, conversation_id, sent_ms, body = StoredMessage
    backlog         item_id PK, queue, score (router.urgency), conversation_id,
                    released (0 waiting, 1 claimed), lease_until_ms, body = BacklogItem
    merges          seq PK (order of merging), winner, loser, body = MergeRecord

Indexes: identities by customer, conversations by (customer, thread key) and by
thread key, messages by (customer, sent_ms, message_id) for history pages, backlog by
(queue, released, score) for claims and by lease (released items only),
merges by winner and by loser. Writes leave an indexed column alone unless it changes,
so a message dirties few pages.

Readings of the protocol: a message without a thread never attaches through the thread
key; a waiting item takes the more urgent deadline and, separately, the more urgent
priority. A message of a batch that cannot be stored (its text cannot be encoded, an id
drawn twice) is rolled back alone, the rest commit, and ``ingest`` then raises
``InvalidMessage`` naming its position: retrying the batch returns the stored ones as
duplicates. History cursors are ``<sent_ms>:<message_id>``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from router.clock import to_ms
from router.errors import BackendUnavailable, Conflict, InputError, InvalidMessage, NotFound
from router.models import (
    BacklogItem,
    BacklogStats,
    ClaimedItem,
    Conversation,
    Customer,
    HistoryPage,
    Identity,
    IngestRequest,
    IngestResult,
    MergeRecord,
    StoredMessage,
    SuggestedLink,
)
from router.urgency import deadline_of, score

T = TypeVar("T")

SCHEMA_VERSION = 1
_MAX_MERGE_HOPS = 64
_NO_CURSOR = (2**62, "")

_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS customers (
        customer_id TEXT PRIMARY KEY, merged_into TEXT, body BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS identities (
        key TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS identities_customer ON identities (customer_id)",
    """CREATE TABLE IF NOT EXISTS conversations (
        conversation_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,
        thread_key TEXT NOT NULL, state TEXT NOT NULL, waiting_item TEXT,
        body BLOB NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS conversations_customer
        ON conversations (customer_id, thread_key)""",
    "CREATE INDEX IF NOT EXISTS conversations_thread ON conversations (thread_key)",
    """CREATE TABLE IF NOT EXISTS messages (
        message_id TEXT PRIMARY KEY, source TEXT NOT NULL, external_id TEXT NOT NULL,
        customer_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        sent_ms INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (source, external_id))""",
    "CREATE INDEX IF NOT EXISTS messages_history ON messages (customer_id, sent_ms, message_id)",
    """CREATE TABLE IF NOT EXISTS backlog (
        item_id TEXT PRIMARY KEY, queue TEXT NOT NULL, score INTEGER NOT NULL,
        conversation_id TEXT NOT NULL, released INTEGER NOT NULL DEFAULT 0,
        lease_until_ms INTEGER, body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS backlog_urgency ON backlog (queue, released, score, item_id)",
    """CREATE INDEX IF NOT EXISTS backlog_leases ON backlog (lease_until_ms)
        WHERE released = 1""",
    """CREATE TABLE IF NOT EXISTS merges (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, winner TEXT NOT NULL, loser TEXT NOT NULL,
        body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS merges_winner ON merges (winner)",
    "CREATE INDEX IF NOT EXISTS merges_loser ON merges (loser)",
)

# --- statements (constant text, so sqlite3's statement cache keeps them prepared) ------

_DUPLICATE = """SELECT m.message_id, m.customer_id, c.conversation_id, c.body
    FROM messages m JOIN conversations c ON c.conversation_id = m.conversation_id
    WHERE m.source = ? AND m.external_id = ?"""
_OWNER = "SELECT customer_id FROM identities WHERE key = ?"
_OWN_IDENTITY = "INSERT OR REPLACE INTO identities (key, customer_id) VALUES (?, ?)"
_CUSTOMER = "SELECT body FROM customers WHERE customer_id = ?"
_MERGED_INTO = "SELECT merged_into FROM customers WHERE customer_id = ?"
_PUT_CUSTOMER = """INSERT INTO customers (customer_id, merged_into, body) VALUES (?, ?, ?)
    ON CONFLICT (customer_id) DO UPDATE SET merged_into = excluded.merged_into,
    body = excluded.body"""
_THREAD_OWNER = """SELECT customer_id FROM conversations
    WHERE thread_key = ? AND state != 'resolved' ORDER BY rowid DESC LIMIT 1"""
_OPEN_CONVERSATION = """SELECT body, waiting_item FROM conversations
    WHERE customer_id = ? AND thread_key = ? AND state != 'resolved'
    ORDER BY rowid DESC LIMIT 1"""
_CONVERSATION = "SELECT customer_id, body FROM conversations WHERE conversation_id = ?"
_NEW_CONVERSATION = """INSERT INTO conversations
    (conversation_id, customer_id, thread_key, state, waiting_item, body)
    VALUES (?, ?, ?, ?, ?, ?)"""
_UPDATE_CONVERSATION = """UPDATE conversations SET state = ?, waiting_item = ?, body = ?
    WHERE conversation_id = ?"""
_PUT_MESSAGE = """INSERT INTO messages
    (message_id, source, external_id, customer_id, conversation_id, sent_ms, body)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
_MESSAGE = "SELECT customer_id, body FROM messages WHERE message_id = ?"
_HISTORY = """SELECT customer_id, body, sent_ms, message_id FROM messages
    WHERE customer_id = ? AND (sent_ms, message_id) < (?, ?)
    ORDER BY sent_ms DESC, message_id DESC LIMIT ?"""
_ITEM = "SELECT body FROM backlog WHERE item_id = ?"
_NEW_ITEM = """INSERT INTO backlog (item_id, queue, score, conversation_id, body)
    VALUES (?, ?, ?, ?, ?)"""
_UPDATE_ITEM = "UPDATE backlog SET body = ? WHERE item_id = ?"
_RESCORE_ITEM = "UPDATE backlog SET score = ?, body = ? WHERE item_id = ?"
_WAITING = """SELECT body FROM backlog WHERE queue = ? AND released = 0
    ORDER BY score, item_id LIMIT ?"""
_RELEASE = "UPDATE backlog SET released = 1, lease_until_ms = ? WHERE item_id = ?"
_CLEAR_WAITING = """UPDATE conversations SET waiting_item = NULL
    WHERE conversation_id = ? AND waiting_item = ?"""
_RESTORE_WAITING = """UPDATE conversations SET waiting_item = ?
    WHERE conversation_id = ? AND waiting_item IS NULL"""
_SETTLE = "DELETE FROM backlog WHERE item_id = ? AND released = 1"
_REQUEUE_EXPIRED = """UPDATE backlog SET released = 0, lease_until_ms = NULL
    WHERE released = 1 AND lease_until_ms <= ? RETURNING item_id, conversation_id"""
_REQUEUE_ALL = """UPDATE backlog SET released = 0, lease_until_ms = NULL
    WHERE released = 1 RETURNING item_id, conversation_id"""
_STATS = """SELECT queue, SUM(released = 0), MIN(CASE WHEN released = 0 THEN score END),
    SUM(released) FROM backlog GROUP BY queue"""
_PUT_MERGE = "INSERT INTO merges (winner, loser, body) VALUES (?, ?, ?)"
_MERGES = "SELECT body FROM merges WHERE winner = ? OR loser = ? ORDER BY seq"
_MOVE_TO_WINNER = (
    "UPDATE identities SET customer_id = ? WHERE customer_id = ?",
    "UPDATE conversations SET customer_id = ? WHERE customer_id = ?",
    "UPDATE messages SET customer_id = ? WHERE customer_id = ?",
)

# Errors that spoil one message of a batch (bad data, an id drawn twice), not the file.
_MESSAGE_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    ValueError,
    OverflowError,
    msgspec.EncodeError,
)

_encode = msgspec.json.Encoder().encode
_customer = msgspec.json.Decoder(Customer).decode
_conversation = msgspec.json.Decoder(Conversation).decode
_message = msgspec.json.Decoder(StoredMessage).decode
_item = msgspec.json.Decoder(BacklogItem).decode
_merge_record = msgspec.json.Decoder(MergeRecord).decode


class SqliteStore:
    """The embedded ``Store``: durable in one file, one process."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: _Database | None = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omniroute-sqlite")
        self._executor = executor
        try:
            self._db = await self._submit(executor, lambda: _Database.connect(self._path))
        except BaseException:
            executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        executor, db = self._executor, self._db
        self._executor = self._db = None
        if executor is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.close)
        executor.shutdown(wait=True)  # the queue is empty: the idle thread exits at once

    async def ping(self) -> None:
        await self._call(lambda db: db.ping())

    async def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        if not requests:
            return []
        return await self._call(lambda db: db.ingest(requests))

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self._call(lambda db: db.get_customer(customer_id))

    async def resolve_customer(self, customer_id: str) -> str | None:
        return await self._call(lambda db: db.resolve(customer_id))

    async def find_customer(self, identity_key: str) -> str | None:
        return await self._call(lambda db: db.find_customer(identity_key))

    async def history(
        self, customer_id: str, *, limit: int, before: str | None = None
    ) -> HistoryPage:
        cursor = _parse_cursor(before)
        if limit < 1:
            raise InputError("history limit must be at least 1")
        return await self._call(lambda db: db.history(customer_id, limit, cursor))

    async def merge(
        self, winner_id: str, loser_id: str, *, at: datetime, reason: str
    ) -> MergeRecord:
        return await self._call(lambda db: db.merge(winner_id, loser_id, at, reason))

    async def merges(self, customer_id: str) -> list[MergeRecord]:
        return await self._call(lambda db: db.merges(customer_id))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return await self._call(lambda db: db.get_conversation(conversation_id))

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
        return await self._call(lambda db: db.requeue(_REQUEUE_EXPIRED, (to_ms(now),)))

    async def requeue_released(self) -> int:
        return await self._call(lambda db: db.requeue(_REQUEUE_ALL, ()))

    async def backlog_stats(self) -> dict[str, BacklogStats]:
        return await self._call(lambda db: db.backlog_stats())

    # --- the worker thread ------------------------------------------------------------

    async def _call(self, operation: Callable[[_Database], T]) -> T:
        db, executor = self._db, self._executor
        if db is None or executor is None:
            raise BackendUnavailable("the SQLite store is not open")
        return await self._submit(executor, lambda: operation(db))

    async def _submit(self, executor: ThreadPoolExecutor, operation: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, _translated, operation, self._path)


def _translated(operation: Callable[[], T], path: Path) -> T:
    """Run on the worker thread; sqlite3's (and the file system's) errors leave as
    ``BackendUnavailable``."""
    try:
        return operation()
    except (sqlite3.Error, OSError) as exc:
        raise BackendUnavailable(f"SQLite store {path.name}: {exc}") from exc


def _parse_cursor(before: str | None) -> tuple[int, str]:
    if before is None:
        return _NO_CURSOR
    sent_ms, sep, message_id = before.partition(":")
    if not sep or not message_id or not sent_ms.removeprefix("-").isdigit() or len(sent_ms) > 18:
        raise InputError("history cursor is malformed; use a page's next_before as given")
    return int(sent_ms), message_id


def _cursor(sent_ms: int, message_id: str) -> str:
    return f"{sent_ms}:{message_id}"


class _Database:
    """The synchronous half: every method runs on the store's worker thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    def connect(cls, path: Path) -> _Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, cached_statements=256)
        try:
            for pragma in (
                "journal_mode = WAL",
                "synchronous = FULL",
                "busy_timeout = 5000",
                "cache_size = -65536",
                "wal_autocheckpoint = 10000",  # fewer, larger checkpoints: fewer page copies
                "journal_size_limit = 67108864",
            ):
                connection.execute(f"PRAGMA {pragma}")
            database = cls(connection)
            database.create_schema()
        except BaseException:
            connection.close()
            raise
        return database

    def create_schema(self) -> None:
        with self.transaction():
            for statement in _DDL:
                self.db.execute(statement)
            row = self.db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is None:
                self.db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"the SQLite file has schema version {row[0]}; this omniroute "
                    f"reads up to {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        self.db.execute("SELECT 1").fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # --- ingest -------------------------------------------------------------------------

    def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        results: list[IngestResult] = []
        failed: list[str] = []
        with self.transaction():
            for index, request in enumerate(requests):
                self.db.execute("SAVEPOINT message")
                try:
                    results.append(_Ingest(self, request).run())
                except _MESSAGE_ERRORS as exc:
                    self.db.execute("ROLLBACK TO message")
                    failed.append(f"#{index} ({type(exc).__name__})")
                self.db.execute("RELEASE message")
        if failed:
            raise InvalidMessage(
                f"message {', '.join(failed)} of a batch of {len(requests)} could not be "
                "stored; the others were stored (a retry returns them as duplicates)"
            )
        return results

    # --- reads --------------------------------------------------------------------------

    def load_customer(self, customer_id: str) -> tuple[Customer, bytes] | None:
        row = self.db.execute(_CUSTOMER, (customer_id,)).fetchone()
        return None if row is None else (_customer(row[0]), row[0])

    def get_customer(self, customer_id: str) -> Customer | None:
        loaded = self.load_customer(customer_id)
        return None if loaded is None else loaded[0]

    def resolve(self, customer_id: str) -> str | None:
        current = customer_id
        for _ in range(_MAX_MERGE_HOPS):
            row = self.db.execute(_MERGED_INTO, (current,)).fetchone()
            if row is None:
                return None
            if row[0] is None:
                return current
            current = row[0]
        raise BackendUnavailable(f"merge chain of {customer_id} does not end")

    def find_customer(self, identity_key: str) -> str | None:
        row = self.db.execute(_OWNER, (identity_key,)).fetchone()
        return None if row is None else str(row[0])

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = self.db.execute(_CONVERSATION, (conversation_id,)).fetchone()
        if row is None:
            return None
        return msgspec.structs.replace(_conversation(row[1]), customer_id=row[0])

    def get_message(self, message_id: str) -> StoredMessage:
        customer_id, body = self.db.execute(_MESSAGE, (message_id,)).fetchone()
        return msgspec.structs.replace(_message(body), customer_id=customer_id)

    def history(self, customer_id: str, limit: int, before: tuple[int, str]) -> HistoryPage:
        live = self.resolve(customer_id)
        if live is None:
            raise NotFound(f"customer {customer_id} is not known")
        messages, next_before = self.history_rows(live, limit, before)
        return HistoryPage(messages=messages, next_before=next_before)

    def history_rows(
        self, customer_id: str, limit: int, before: tuple[int, str] = _NO_CURSOR
    ) -> tuple[list[StoredMessage], str | None]:
        if limit < 1:
            return [], None
        rows = self.db.execute(_HISTORY, (customer_id, *before, limit + 1)).fetchall()
        messages = [
            msgspec.structs.replace(_message(body), customer_id=owner)
            for owner, body, _, _ in rows[:limit]
        ]
        if len(rows) <= limit:
            return messages, None
        _, _, sent_ms, message_id = rows[limit - 1]
        return messages, _cursor(sent_ms, message_id)

    def merges(self, customer_id: str) -> list[MergeRecord]:
        rows = self.db.execute(_MERGES, (customer_id, customer_id)).fetchall()
        return [_merge_record(body) for (body,) in rows]

    # --- writes shared by ingest and the API ----------------------------------------------

    def put_customer(self, customer: Customer) -> None:
        self.db.execute(
            _PUT_CUSTOMER, (customer.customer_id, customer.merged_into, _encode(customer))
        )

    def move(self, winner: Customer, loser: Customer, at: datetime, reason: str) -> MergeRecord:
        """Merge ``loser`` into ``winner`` in the tables; the caller writes ``winner``."""
        _merge_profiles(winner, loser)
        for statement in _MOVE_TO_WINNER:
            self.db.execute(statement, (winner.customer_id, loser.customer_id))
        self.put_customer(loser)
        record = MergeRecord(
            winner=winner.customer_id, loser=loser.customer_id, at=at, reason=reason
        )
        self.db.execute(_PUT_MERGE, (record.winner, record.loser, _encode(record)))
        return record

    def merge(self, winner_id: str, loser_id: str, at: datetime, reason: str) -> MergeRecord:
        with self.transaction():
            winner = self._mergeable(winner_id)
            loser = self._mergeable(loser_id)
            if winner_id == loser_id:
                raise Conflict("a customer cannot be merged into itself")
            record = self.move(winner, loser, at, reason)
            self.put_customer(winner)
        return record

    def _mergeable(self, customer_id: str) -> Customer:
        customer = self.get_customer(customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} is not known")
        if customer.merged_into is not None:
            raise Conflict(f"customer {customer_id} is already merged into another")
        return customer

    # --- backlog ------------------------------------------------------------------------

    def new_item(self, item: BacklogItem) -> None:
        urgency = score(item.deadline, item.priority)
        self.db.execute(
            _NEW_ITEM, (item.item_id, item.queue, urgency, item.conversation_id, _encode(item))
        )

    def update_item(self, item: BacklogItem, old_score: int) -> None:
        """Only a changed score touches the urgency index."""
        urgency = score(item.deadline, item.priority)
        if urgency == old_score:
            self.db.execute(_UPDATE_ITEM, (_encode(item), item.item_id))
        else:
            self.db.execute(_RESCORE_ITEM, (urgency, _encode(item), item.item_id))

    def load_item(self, item_id: str) -> BacklogItem:
        (body,) = self.db.execute(_ITEM, (item_id,)).fetchone()
        return _item(body)

    def claim(
        self, queue: str, limit: int, lease_ms: int | None, history_limit: int
    ) -> list[ClaimedItem]:
        with self.transaction():
            items = [_item(body) for (body,) in self.db.execute(_WAITING, (queue, limit))]
            self.db.executemany(_RELEASE, [(lease_ms, item.item_id) for item in items])
            self.db.executemany(
                _CLEAR_WAITING, [(item.conversation_id, item.item_id) for item in items]
            )
            return [self._claimed(item, history_limit) for item in items]

    def _claimed(self, item: BacklogItem, history_limit: int) -> ClaimedItem:
        conversation = self.get_conversation(item.conversation_id)
        if conversation is None:
            raise BackendUnavailable(f"backlog item {item.item_id} has no conversation")
        customer = self.get_customer(conversation.customer_id)
        if customer is None:
            raise BackendUnavailable(f"conversation {item.conversation_id} has no customer")
        history, _ = self.history_rows(customer.customer_id, history_limit)
        return ClaimedItem(
            item=item,
            conversation=conversation,
            customer=customer,
            message=self.get_message(item.message_id),
            history=history,
        )

    def settle(self, item_ids: Sequence[str]) -> None:
        with self.transaction():
            self.db.executemany(_SETTLE, [(item_id,) for item_id in item_ids])

    def requeue(self, statement: str, parameters: tuple[Any, ...]) -> int:
        """Back to the backlog; a conversation with no item waiting waits for it again."""
        with self.transaction():
            rows = self.db.execute(statement, parameters).fetchall()
            self.db.executemany(_RESTORE_WAITING, rows)
        return len(rows)

    def backlog_stats(self) -> dict[str, BacklogStats]:
        return {
            queue: BacklogStats(
                depth=waiting,
                oldest_deadline=None if best is None else deadline_of(best),
                released=released,
            )
            for queue, waiting, best, released in self.db.execute(_STATS)
        }


def _merge_profiles(winner: Customer, loser: Customer) -> None:
    """Everything the loser owned goes to the winner; the loser keeps a redirect."""
    owned = {i.key for i in winner.identities}
    winner.identities = winner.identities + [i for i in loser.identities if i.key not in owned]
    winner.suggested = _suggestions(winner.suggested + loser.suggested, winner.identities)
    winner.attributes = {**loser.attributes, **winner.attributes}
    winner.name = winner.name or loser.name
    winner.merged_from = [*winner.merged_from, loser.customer_id]
    loser.identities, loser.suggested = [], []
    loser.merged_into = winner.customer_id


def _suggestions(links: list[SuggestedLink], verified: list[Identity]) -> list[SuggestedLink]:
    """One link per identifier, none for an identifier the customer owns verified."""
    seen = {i.key for i in verified}
    kept: list[SuggestedLink] = []
    for link in links:
        if link.identity.key not in seen:
            seen.add(link.identity.key)
            kept.append(link)
    return kept


class _Ingest:
    """One message of ``Store.ingest``, inside the batch's transaction."""

    def __init__(self, database: _Database, request: IngestRequest) -> None:
        self.database = database
        self.db = database.db
        self.request = request
        self.message = request.message

    def run(self) -> IngestResult:
        duplicate = self.duplicate()
        if duplicate is not None:
            return duplicate
        owners = self.owners()
        customer, original, merged = self.identify(owners)
        self.update_profile(customer, owners)
        if original is None or _encode(customer) != original:
            self.database.put_customer(customer)
        conversation, item = self.route(customer.customer_id)
        self.put_message(customer.customer_id, conversation.conversation_id)
        return IngestResult(
            message_id=self.request.message_id,
            customer_id=customer.customer_id,
            conversation_id=conversation.conversation_id,
            queue=item.queue,
            priority=item.priority,
            deadline=item.deadline,
            item_id=item.item_id,
            new_customer=original is None,
            merged=merged,
        )

    def owners(self) -> dict[str, str]:
        """The verified owner of each of the message's identifiers, where there is one."""
        owners: dict[str, str] = {}
        for identity in self.message.identities:
            owner = self.database.find_customer(identity.key)
            if owner is not None:
                owners[identity.key] = owner
        return owners

    def duplicate(self) -> IngestResult | None:
        row = self.db.execute(
            _DUPLICATE, (self.message.source, self.message.external_id)
        ).fetchone()
        if row is None:
            return None
        message_id, customer_id, conversation_id, body = row
        conversation = _conversation(body)
        return IngestResult(
            message_id=message_id,
            customer_id=customer_id,
            conversation_id=conversation_id,
            queue=conversation.queue,
            priority=conversation.priority,
            deadline=conversation.deadline,
            duplicate=True,
        )

    # --- step 2: who is it ----------------------------------------------------------------

    def identify(self, owners: dict[str, str]) -> tuple[Customer, bytes | None, list[str]]:
        """The customer (merging verified owners), its stored body (None: new), losers."""
        by_owner: dict[str, str] = {}
        for identity in self.message.verified:
            if identity.key in owners:
                by_owner.setdefault(owners[identity.key], identity.key)
        if by_owner:
            return self.merge_owners(by_owner)
        customer_id = self.thread_owner()
        loaded = None if customer_id is None else self.database.load_customer(customer_id)
        if loaded is not None:
            return loaded[0], loaded[1], []
        created = Customer(
            customer_id=self.request.new_customer_id, created_at=self.message.received_at
        )
        return created, None, []

    def merge_owners(self, by_owner: dict[str, str]) -> tuple[Customer, bytes, list[str]]:
        loaded = [self.database.load_customer(customer_id) for customer_id in by_owner]
        present = [pair for pair in loaded if pair is not None]
        winner, original = min(present, key=lambda pair: (pair[0].created_at, pair[0].customer_id))
        merged: list[str] = []
        for loser, _ in present:
            if loser is winner:
                continue
            reason = f"identity:{by_owner[loser.customer_id]}"
            self.database.move(winner, loser, self.message.received_at, reason)
            merged.append(loser.customer_id)
        return winner, original, merged

    def thread_owner(self) -> str | None:
        if self.message.thread is None:
            return None  # without a thread, the thread key would join strangers
        row = self.db.execute(_THREAD_OWNER, (self.message.thread_key,)).fetchone()
        return None if row is None else str(row[0])

    def update_profile(self, customer: Customer, owners: dict[str, str]) -> None:
        owned = {i.key for i in customer.identities}
        fresh = [i for i in self.message.verified if i.key not in owned]
        if fresh:
            customer.identities = customer.identities + fresh
            self.db.executemany(_OWN_IDENTITY, [(i.key, customer.customer_id) for i in fresh])
        typed = [
            SuggestedLink(
                identity=identity,
                other_customer_id=owners.get(identity.key),
                message_id=self.request.message_id,
                at=self.message.received_at,
            )
            for identity in self.message.unverified
        ]
        customer.suggested = _suggestions(customer.suggested + typed, customer.identities)
        customer.name = customer.name or self.message.sender_name
        if self.message.customer_attributes:
            customer.attributes = {**customer.attributes, **self.message.customer_attributes}

    # --- steps 3 to 5: conversation, history, backlog -----------------------------------

    def route(self, customer_id: str) -> tuple[Conversation, BacklogItem]:
        row = self.db.execute(_OPEN_CONVERSATION, (customer_id, self.message.thread_key)).fetchone()
        if row is None:
            return self.open_conversation(customer_id)
        conversation, waiting = _conversation(row[0]), row[1]
        self.continue_conversation(conversation, customer_id, waiting_item=waiting)
        item = self.new_item(conversation) if waiting is None else self.join_item(waiting)
        self.db.execute(
            _UPDATE_CONVERSATION,
            (conversation.state, item.item_id, _encode(conversation), conversation.conversation_id),
        )
        return conversation, item

    def open_conversation(self, customer_id: str) -> tuple[Conversation, BacklogItem]:
        conversation = self.new_conversation(customer_id)
        item = self.new_item(conversation)
        self.db.execute(
            _NEW_CONVERSATION,
            (
                conversation.conversation_id,
                customer_id,
                self.message.thread_key,
                conversation.state,
                item.item_id,
                _encode(conversation),
            ),
        )
        return conversation, item

    def new_conversation(self, customer_id: str) -> Conversation:
        decision, message = self.request.decision, self.message
        return Conversation(
            conversation_id=self.request.new_conversation_id,
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
        )

    def continue_conversation(
        self, conversation: Conversation, customer_id: str, *, waiting_item: str | None
    ) -> None:
        conversation.customer_id = customer_id
        conversation.state = "open"
        conversation.message_count += 1
        conversation.updated_at = max(conversation.updated_at, self.message.received_at)
        if waiting_item is None:
            decision = self.request.decision
            conversation.queue = decision.queue
            conversation.priority = decision.priority
            conversation.deadline = decision.deadline

    def new_item(self, conversation: Conversation) -> BacklogItem:
        decision = self.request.decision
        item = BacklogItem(
            item_id=self.request.new_item_id,
            conversation_id=conversation.conversation_id,
            queue=decision.queue,
            priority=decision.priority,
            deadline=decision.deadline,
            message_id=self.request.message_id,
            reasons=list(decision.reasons),
            created_at=self.message.received_at,
        )
        self.database.new_item(item)
        return item

    def join_item(self, item_id: str) -> BacklogItem:
        """The waiting item carries this message, at the more urgent deadline and priority."""
        item = self.database.load_item(item_id)
        old_score = score(item.deadline, item.priority)
        decision = self.request.decision
        item.message_id = self.request.message_id
        item.deadline = min(item.deadline, decision.deadline)
        item.priority = min(item.priority, decision.priority)
        item.reasons = item.reasons + [r for r in decision.reasons if r not in item.reasons]
        self.database.update_item(item, old_score)
        return item

    def put_message(self, customer_id: str, conversation_id: str) -> None:
        message, request = self.message, self.request
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
        )
        self.db.execute(
            _PUT_MESSAGE,
            (
                request.message_id,
                message.source,
                message.external_id,
                customer_id,
                conversation_id,
                to_ms(message.sent_at),
                _encode(stored),
            ),
        )
