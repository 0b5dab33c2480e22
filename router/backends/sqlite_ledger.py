"""``SqliteLedger``: the embedded ``Ledger`` (``router/ledger.py``) in its own SQLite
file (stdlib ``sqlite3``), beside the store's.

One connection, owned by one worker thread, as in ``SqliteStore``: the event loop only
hands calls over. WAL journal, ``synchronous=FULL``: a write is on disk when its call
returns. Every write is one ``BEGIN IMMEDIATE`` transaction, which takes the file's
write lock first, so two processes that claim one nonce at once are serialized and
exactly one of them inserts it. Records are msgspec JSON in ``body`` columns::

    deliveries  (source, external_id, status) PK, body = DeliveryReport
    quarantine  quarantine_id PK, position (``ledger_codec.position``) indexed,
                body = QuarantineEntry
    nonces      (scope, nonce) PK, fingerprint, expires_us (µs since the epoch) indexed;
                a claim first deletes every nonce expired by its ``now``
    cursors     key PK, value

The layout's version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from router.backends.sqlite_worker import SqliteWorker
from router.errors import BackendUnavailable
from router.ledger import DeliveryReport, QuarantineEntry, QuarantinePage

from . import ledger_codec as codec

T = TypeVar("T")

SCHEMA_VERSION: Final = 1

_PRAGMAS: Final = ("journal_mode = WAL", "synchronous = FULL", "busy_timeout = 5000")
_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS deliveries (
        source TEXT NOT NULL, external_id TEXT NOT NULL, status TEXT NOT NULL,
        body BLOB NOT NULL, PRIMARY KEY (source, external_id, status)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        quarantine_id TEXT PRIMARY KEY, position TEXT NOT NULL, body BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS quarantine_position ON quarantine (position)",
    """CREATE TABLE IF NOT EXISTS nonces (
        scope TEXT NOT NULL, nonce TEXT NOT NULL, fingerprint TEXT NOT NULL,
        expires_us INTEGER NOT NULL, PRIMARY KEY (scope, nonce)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_us)",
    """CREATE TABLE IF NOT EXISTS cursors (
        key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID""",
)

_RECORD = """INSERT INTO deliveries (source, external_id, status, body) VALUES (?, ?, ?, ?)
    ON CONFLICT DO NOTHING"""
_DELIVERIES = "SELECT body FROM deliveries WHERE source = ? AND external_id = ?"
_QUARANTINE = """INSERT INTO quarantine (quarantine_id, position, body) VALUES (?, ?, ?)
    ON CONFLICT (quarantine_id) DO UPDATE SET position = excluded.position,
    body = excluded.body"""
_PAGE = "SELECT position, body FROM quarantine WHERE position < ? ORDER BY position DESC LIMIT ?"
_GET_QUARANTINED = "SELECT body FROM quarantine WHERE quarantine_id = ?"
_DROP_QUARANTINED = "DELETE FROM quarantine WHERE quarantine_id = ?"
_FORGET_EXPIRED = "DELETE FROM nonces WHERE expires_us <= ?"
_CLAIM = """INSERT INTO nonces (scope, nonce, fingerprint, expires_us) VALUES (?, ?, ?, ?)
    ON CONFLICT DO NOTHING"""
_CLAIMED_BY = "SELECT fingerprint FROM nonces WHERE scope = ? AND nonce = ?"
_GET_CURSOR = "SELECT value FROM cursors WHERE key = ?"
_SET_CURSOR = """INSERT INTO cursors (key, value) VALUES (?, ?)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value"""
_AFTER_ALL: Final = "\U0010ffff"  # above every position: the first page's bound


class SqliteLedger:
    """The embedded ``Ledger``: durable in one file; any number of processes may share it."""

    def __init__(self, path: Path) -> None:
        self._worker: SqliteWorker[sqlite3.Connection] = SqliteWorker(
            path,
            what="SQLite ledger",
            thread_name="omniroute-ledger",
            opener=_connect,
            closer=sqlite3.Connection.close,
        )

    async def open(self) -> None:
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()

    async def record_delivery(self, report: DeliveryReport) -> bool:
        row = (report.source, report.external_id, report.status, codec.encode(report))
        return await self._call(lambda db: _written(db, _RECORD, row) == 1)

    async def deliveries(self, source: str, external_id: str) -> list[DeliveryReport]:
        rows = await self._call(
            lambda db: db.execute(_DELIVERIES, (source, external_id)).fetchall()
        )
        return codec.in_order(codec.decode_report(body) for (body,) in rows)

    async def quarantine(self, entry: QuarantineEntry) -> None:
        row = (entry.quarantine_id, codec.position(entry), codec.encode(entry))
        await self._call(lambda db: _written(db, _QUARANTINE, row))

    async def quarantined(self, *, limit: int, before: str | None = None) -> QuarantinePage:
        size = codec.page_size(limit)
        bound = codec.checked_cursor(before) or _AFTER_ALL
        rows = await self._call(lambda db: db.execute(_PAGE, (bound, size + 1)).fetchall())
        page = rows[:size]
        return QuarantinePage(
            entries=[codec.decode_entry(body) for _, body in page],
            next_before=page[-1][0] if len(rows) > size else None,
        )

    async def get_quarantined(self, quarantine_id: str) -> QuarantineEntry | None:
        row = await self._call(lambda db: db.execute(_GET_QUARANTINED, (quarantine_id,)).fetchone())
        return None if row is None else codec.decode_entry(row[0])

    async def drop_quarantined(self, quarantine_id: str) -> bool:
        return await self._call(lambda db: _written(db, _DROP_QUARANTINED, (quarantine_id,)) == 1)

    async def claim_nonce(
        self, scope: str, nonce: str, *, fingerprint: str, expires_at: datetime, now: datetime
    ) -> bool:
        expires_us, now_us = codec.to_us(expires_at), codec.to_us(now)
        return await self._call(
            lambda db: _claim(db, (scope, nonce, fingerprint, expires_us), now_us)
        )

    async def get_cursor(self, key: str) -> str | None:
        row = await self._call(lambda db: db.execute(_GET_CURSOR, (key,)).fetchone())
        return None if row is None else str(row[0])

    async def set_cursor(self, key: str, value: str) -> None:
        await self._call(lambda db: _written(db, _SET_CURSOR, (key, value)))

    async def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._worker.call(operation)


# --- on the worker thread ---------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the file; autocommit mode, transactions by hand."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    try:
        for pragma in _PRAGMAS:
            db.execute(f"PRAGMA {pragma}")
        with _transaction(db):
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"the ledger file has schema version {version}; this omniroute reads "
                    f"up to {SCHEMA_VERSION}"
                )
            for statement in _TABLES:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _written(db: sqlite3.Connection, statement: str, row: tuple[str | bytes, ...]) -> int:
    """One statement in its own transaction; the number of rows it changed."""
    with _transaction(db):
        return db.execute(statement, row).rowcount


def _claim(db: sqlite3.Connection, claim: tuple[str, str, str, int], now_us: int) -> bool:
    scope, nonce, fingerprint, _ = claim
    with _transaction(db):
        db.execute(_FORGET_EXPIRED, (now_us,))
        if db.execute(_CLAIM, claim).rowcount == 1:
            return True
        (holder,) = db.execute(_CLAIMED_BY, (scope, nonce)).fetchone()
        return bool(holder == fingerprint)
