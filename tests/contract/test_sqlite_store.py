"""What only the embedded store promises: its file layout migrates, the waiting item of a
conversation is read together with the item's state, and the connection is left at
``synchronous=FULL`` after every kind of transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.backends.sqlite_schema import SCHEMA_VERSION
from router.backends.sqlite_store import SqliteStore
from router.errors import InvalidMessage

from .test_store import HOUR, MARIA_EMAIL, T0, claim, depth, ingest_one, request, verified

_V1_DDL = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    """CREATE TABLE backlog (
        item_id TEXT PRIMARY KEY, queue TEXT NOT NULL, score INTEGER NOT NULL,
        conversation_id TEXT NOT NULL, released INTEGER NOT NULL DEFAULT 0,
        lease_until_ms INTEGER, body BLOB NOT NULL)""",
    "CREATE INDEX backlog_urgency ON backlog (queue, released, score, item_id)",
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    impl = SqliteStore(tmp_path / "omniroute.sqlite3")
    await impl.open()
    yield impl
    await impl.close()


async def _pragma(store: SqliteStore, name: str) -> object:
    """Read on the store's own thread (the connection is bound to it)."""
    return await store._call(lambda db: db.db.execute(f"PRAGMA {name}").fetchone()[0])


async def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        for statement in _V1_DDL:
            old.execute(statement)
    old.close()

    store = SqliteStore(path)
    await store.open()
    try:
        result = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
        assert await claim(store) == [result.item_id]
    finally:
        await store.close()

    with sqlite3.connect(path) as reopened:
        indexes = {row[0] for row in reopened.execute("SELECT name FROM sqlite_master")}
        (version,) = reopened.execute("SELECT version FROM schema_version").fetchone()
    reopened.close()
    assert version == SCHEMA_VERSION
    assert "backlog_urgency" not in indexes
    assert "backlog_waiting" in indexes


async def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as newer:
        newer.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        newer.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    newer.close()
    store = SqliteStore(path)
    with pytest.raises(Exception, match="schema version"):
        await store.open()
    await store.close()


async def test_requeued_item_waits_again_unless_a_newer_one_waits(store: SqliteStore) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t"))
    assert await claim(store) == [first.item_id]
    assert await store.requeue_released() == 1
    joined = await ingest_one(store, request("e2", verified("email", MARIA_EMAIL), thread="t"))
    assert joined.item_id == first.item_id  # the requeued item waits for it again

    assert await claim(store) == [first.item_id]
    newer = await ingest_one(store, request("e3", verified("email", MARIA_EMAIL), thread="t"))
    assert newer.item_id != first.item_id
    assert await store.requeue_released() == 1
    assert await depth(store) == 2
    last = await ingest_one(store, request("e4", verified("email", MARIA_EMAIL), thread="t"))
    assert last.item_id == newer.item_id  # the newer item keeps the conversation


async def test_settled_item_is_not_joined(store: SqliteStore) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t"))
    assert await claim(store) == [first.item_id]
    await store.settle([first.item_id])
    second = await ingest_one(
        store, request("e2", verified("email", MARIA_EMAIL), thread="t", deadline=T0 + 2 * HOUR)
    )
    assert second.item_id != first.item_id
    assert second.deadline == T0 + 2 * HOUR  # no item waited: the new decision applies
    assert await depth(store) == 1


async def test_every_transaction_leaves_the_connection_durable(store: SqliteStore) -> None:
    assert await _pragma(store, "journal_mode") == "wal"
    result = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    assert await _pragma(store, "synchronous") == 2  # FULL
    await store.claim("default", 10, now=T0, lease_until=T0 + HOUR, history_limit=3)
    assert await _pragma(store, "synchronous") == 2
    await store.requeue_expired(T0 + 2 * HOUR)
    assert await _pragma(store, "synchronous") == 2
    assert await claim(store) == [result.item_id]
    await store.settle([result.item_id])
    assert await _pragma(store, "synchronous") == 2


async def test_a_bad_message_in_a_large_batch_fails_alone(store: SqliteStore) -> None:
    good = [request(f"e{n}", verified("email", f"c{n}@example.com")) for n in range(40)]
    bad = request("bad\ud800")
    with pytest.raises(InvalidMessage, match="#20"):
        await store.ingest([*good[:20], bad, *good[20:]])
    assert await depth(store) == 40
    retried = await store.ingest(good)
    assert all(r.duplicate for r in retried)


async def test_claimed_message_and_history_come_from_the_customers_rows(
    store: SqliteStore,
) -> None:
    older = request("e0", verified("email", MARIA_EMAIL), thread="old", sent_at=T0 - HOUR)
    results = [await ingest_one(store, older)]
    for n in range(1, 4):
        req = request(f"e{n}", verified("email", MARIA_EMAIL), thread="t", sent_at=T0 + n * HOUR)
        results.append(await ingest_one(store, req))
    claimed = await store.claim("default", 10, now=T0, lease_until=None, history_limit=2)
    by_item = {c.item.item_id: c for c in claimed}
    late = by_item[results[-1].item_id]
    assert late.message.message_id == results[-1].message_id
    assert [m.message_id for m in late.history] == [results[3].message_id, results[2].message_id]
    early = by_item[results[0].item_id]  # its message is older than the history shown
    assert early.message.message_id == results[0].message_id
    assert early.message is not early.history[0]
