"""The layout of the SQLite file: tables, indexes, pragmas and migrations.

Records are msgspec JSON in ``body`` columns; the columns beside them are what the
queries look up, and where a column and the body could disagree (``customer_id`` after
a merge) the column is the truth.

Tables::

    schema_version  version                       one row: the layout of this file
    customers       customer_id PK, merged_into,  body = Customer
    identities      key PK ("kind:value"), customer_id
                    verified identities of live customers only; a merge moves them
    conversations   conversation_id PK, customer_id, thread_key (source NUL thread),
                    state, thread_order_us (created_at while open or pending, resolved_at
                    once resolved, 0 without one: see ``sqlite_thread_owner``),
                    waiting_item (the last backlog item opened for it: it is the
                    item waiting for it only while that row has released = 0),
                    body = Conversation
    messages        message_id PK, (source, external_id) UNIQUE (the dedupe key),
                    customer_id, conversation_id, sent_ms, body = StoredMessage
    backlog         item_id PK, queue, score (router.urgency), conversation_id,
                    released (0 waiting, 1 claimed), lease_until_ms, body = BacklogItem
    merges          seq PK (order of merging), winner, loser, body = MergeRecord
    offers          (item_id, queue) PK: the other queues a waiting backlog item is
                    also offered in (``ItemChange.also_offer``); a claim deletes them
    timers          key PK (``Timer.key``), at_us (due, µs since the epoch), body = Timer
    served_by       customer_id PK, at_us, agent: the customer's newest served-by record

Indexes: identities by customer, conversations by (customer, thread key) and by (thread
key, resolved or not, thread_order_us, id), messages by (customer, sent_ms, message_id)
for history pages, waiting backlog items by (queue, score) (a partial index: a claim
removes its entries, a settle has nothing left there to remove), released items by
lease, merges by winner and by loser, offers by (queue, item_id), timers by (at_us,
key). Writes leave an indexed column alone unless it changes, so a message dirties few
pages; a claim writes no conversation (``waiting_item`` is read together with the item's
``released``, and so is a conversation's ``item_id`` whenever one is read).

Versions: 1 indexed every backlog item by (queue, released, score, item_id) and
cleared ``waiting_item`` on claim; 2 has the partial index; 3 adds ``offers``,
``timers`` and ``served_by`` (conversation bodies gained optional fields, which older
bodies decode to their defaults: version 0, no sla, awaiting_response False). An older
file is migrated in place when opened (its ``waiting_item`` values stay correct under
the version-2 reading). Message bodies later gained ``kind``, ``edited_at`` and
``revisions`` within version 3: an older body decodes to a message never edited, and
queries read its kind as ``message``; an edit rewrites the body only. Conversation
bodies gained ``recorded_only`` the same way (an older body: False). 4 adds
``thread_order_us``, computed from each stored body, and orders the thread-key index by it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from router.errors import BackendUnavailable

from .sqlite_read import decode_conversation
from .sqlite_thread_owner import thread_order_us

SCHEMA_VERSION = 4

PRAGMAS = (
    "journal_mode = WAL",
    "synchronous = FULL",
    "busy_timeout = 5000",
    "cache_size = -65536",  # 64 MiB of page cache
    "temp_store = MEMORY",
    "wal_autocheckpoint = 10000",  # fewer, larger checkpoints: fewer page copies
    "journal_size_limit = 67108864",
)

_TABLES = (
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
    """CREATE TABLE IF NOT EXISTS messages (
        message_id TEXT PRIMARY KEY, source TEXT NOT NULL, external_id TEXT NOT NULL,
        customer_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        sent_ms INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (source, external_id))""",
    "CREATE INDEX IF NOT EXISTS messages_history ON messages (customer_id, sent_ms, message_id)",
    """CREATE TABLE IF NOT EXISTS backlog (
        item_id TEXT PRIMARY KEY, queue TEXT NOT NULL, score INTEGER NOT NULL,
        conversation_id TEXT NOT NULL, released INTEGER NOT NULL DEFAULT 0,
        lease_until_ms INTEGER, body BLOB NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS backlog_leases ON backlog (lease_until_ms)
        WHERE released = 1""",
    """CREATE TABLE IF NOT EXISTS merges (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, winner TEXT NOT NULL, loser TEXT NOT NULL,
        body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS merges_winner ON merges (winner)",
    "CREATE INDEX IF NOT EXISTS merges_loser ON merges (loser)",
    """CREATE TABLE IF NOT EXISTS offers (
        item_id TEXT NOT NULL, queue TEXT NOT NULL, PRIMARY KEY (item_id, queue))
        WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS offers_queue ON offers (queue, item_id)",
    """CREATE TABLE IF NOT EXISTS timers (
        key TEXT PRIMARY KEY, at_us INTEGER NOT NULL, body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS timers_due ON timers (at_us, key)",
    """CREATE TABLE IF NOT EXISTS served_by (
        customer_id TEXT PRIMARY KEY, at_us INTEGER NOT NULL, agent TEXT NOT NULL)
        WITHOUT ROWID""",
)


def _order_threads(db: sqlite3.Connection) -> None:
    """Version 4's ``thread_order_us`` of every stored conversation, from its body."""
    rows = db.execute("SELECT conversation_id, body FROM conversations").fetchall()
    db.executemany(
        "UPDATE conversations SET thread_order_us = ? WHERE conversation_id = ?",
        [(thread_order_us(decode_conversation(body)), cid) for cid, body in rows],
    )


# From version - 1 to version: statements (or functions of the connection) run in the
# opening transaction. A new file runs them all, after ``_TABLES``.
_MIGRATIONS: dict[int, tuple[str | Callable[[sqlite3.Connection], None], ...]] = {
    2: (
        "DROP INDEX IF EXISTS backlog_urgency",
        """CREATE INDEX IF NOT EXISTS backlog_waiting ON backlog (queue, score, item_id)
            WHERE released = 0""",
    ),
    3: (),  # new tables only: ``_TABLES`` creates them
    4: (
        "ALTER TABLE conversations ADD COLUMN thread_order_us INTEGER NOT NULL DEFAULT 0",
        _order_threads,
        "DROP INDEX IF EXISTS conversations_thread",
        """CREATE INDEX conversations_on_thread ON conversations
            (thread_key, state = 'resolved', thread_order_us DESC, conversation_id DESC)""",
    ),
}


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the file; autocommit mode, transactions by hand."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        path, isolation_level=None, cached_statements=512, check_same_thread=True
    )
    try:
        for pragma in PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        _create_schema(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _create_schema(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _TABLES:
            db.execute(statement)
        (version,) = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version is not None and version > SCHEMA_VERSION:
            raise BackendUnavailable(
                f"the SQLite file has schema version {version}; this omniroute "
                f"reads up to {SCHEMA_VERSION}"
            )
        for step in range(2 if version is None else version + 1, SCHEMA_VERSION + 1):
            for migration in _MIGRATIONS[step]:
                if isinstance(migration, str):
                    db.execute(migration)
                else:
                    migration(db)
        if version is None:
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
