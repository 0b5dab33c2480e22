"""What only the embedded store promises: its file layout migrates, the waiting item of a
conversation is read together with the item's state, and the connection is left at
``synchronous=FULL`` after every kind of transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from router.backends.sqlite_schema import SCHEMA_VERSION
from router.backends.sqlite_store import SqliteStore
from router.errors import InvalidMessage
from router.models import (
    ConversationUpdate,
    IngestRequest,
    ItemChange,
    NormalizedMessage,
    Revision,
    Timer,
)

from .test_store import (
    HOUR,
    JOSE_PHONE,
    MARIA_EMAIL,
    MARIA_PHONE,
    T0,
    claim,
    depth,
    ingest_one,
    request,
    typed,
    verified,
)

_V1_DDL = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    """CREATE TABLE backlog (
        item_id TEXT PRIMARY KEY, queue TEXT NOT NULL, score INTEGER NOT NULL,
        conversation_id TEXT NOT NULL, released INTEGER NOT NULL DEFAULT 0,
        lease_until_ms INTEGER, body BLOB NOT NULL)""",
    "CREATE INDEX backlog_urgency ON backlog (queue, released, score, item_id)",
)


# A version-2 file as the version-2 code wrote it: its tables and the records of one
# message (bodies without the fields version 3 added).
_V2_FILE = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (2)",
    "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, merged_into TEXT, body BLOB NOT NULL)",
    "CREATE TABLE identities (key TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX identities_customer ON identities (customer_id)",
    """CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL, thread_key TEXT NOT NULL, state TEXT NOT NULL,
        waiting_item TEXT, body BLOB NOT NULL)""",
    "CREATE INDEX conversations_customer ON conversations (customer_id, thread_key)",
    "CREATE INDEX conversations_thread ON conversations (thread_key)",
    """CREATE TABLE messages (message_id TEXT PRIMARY KEY, source TEXT NOT NULL,
        external_id TEXT NOT NULL, customer_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        sent_ms INTEGER NOT NULL, body BLOB NOT NULL, UNIQUE (source, external_id))""",
    "CREATE INDEX messages_history ON messages (customer_id, sent_ms, message_id)",
    """CREATE TABLE backlog (item_id TEXT PRIMARY KEY, queue TEXT NOT NULL,
        score INTEGER NOT NULL, conversation_id TEXT NOT NULL,
        released INTEGER NOT NULL DEFAULT 0, lease_until_ms INTEGER, body BLOB NOT NULL)""",
    "CREATE INDEX backlog_leases ON backlog (lease_until_ms) WHERE released = 1",
    """CREATE TABLE merges (seq INTEGER PRIMARY KEY AUTOINCREMENT, winner TEXT NOT NULL,
        loser TEXT NOT NULL, body BLOB NOT NULL)""",
    "CREATE INDEX merges_winner ON merges (winner)",
    "CREATE INDEX merges_loser ON merges (loser)",
    """CREATE INDEX backlog_waiting ON backlog (queue, score, item_id)
        WHERE released = 0""",
    """INSERT INTO customers VALUES ('cus_old', NULL, '{"customer_id":"cus_old",
        "name":null,"identities":[{"kind":"email","value":"maria@example.com",
        "verified":true}],"suggested":[],"attributes":{},
        "created_at":"2026-01-05T09:00:01Z","merged_into":null,"merged_from":[]}')""",
    "INSERT INTO identities VALUES ('email:maria@example.com', 'cus_old')",
    """INSERT INTO conversations VALUES ('cnv_old', 'cus_old', 'webchat' || char(0) || 't',
        'open', 'itm_old', '{"conversation_id":"cnv_old","customer_id":"cus_old",
        "channel":"chat","source":"webchat","thread":"t","state":"open",
        "queue":"default","priority":3,"deadline":"2026-01-05T10:00:00Z",
        "message_count":1,"created_at":"2026-01-05T09:00:01Z",
        "updated_at":"2026-01-05T09:00:01Z"}')""",
    """INSERT INTO messages VALUES ('msg_old', 'webchat', 'e0', 'cus_old', 'cnv_old',
        1767603600000, '{"message_id":"msg_old","conversation_id":"cnv_old",
        "customer_id":"cus_old","channel":"chat","source":"webchat","external_id":"e0",
        "text":"hello","sent_at":"2026-01-05T09:00:00Z",
        "received_at":"2026-01-05T09:00:01Z"}')""",
    """INSERT INTO backlog VALUES ('itm_old', 'default', 14140857600003, 'cnv_old', 0,
        NULL, '{"item_id":"itm_old","conversation_id":"cnv_old","queue":"default",
        "priority":3,"deadline":"2026-01-05T10:00:00Z","message_id":"msg_old",
        "reasons":[],"created_at":"2026-01-05T09:00:01Z"}')""",
)


def _v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "v2.sqlite3"
    with sqlite3.connect(path) as old:
        for statement in _V2_FILE:
            old.execute(statement)
    old.close()
    return path


async def test_a_version_2_file_is_migrated_and_its_records_read(tmp_path: Path) -> None:
    path = _v2_file(tmp_path)

    store = SqliteStore(path)
    await store.open()
    try:
        conversation = await store.get_conversation("cnv_old")
        assert conversation is not None
        assert (conversation.version, conversation.item_id, conversation.sla) == (
            0,
            "itm_old",
            None,
        )
        joined = await ingest_one(
            store, request("e1", verified("email", MARIA_EMAIL), thread="t", sent_at=T0)
        )
        assert (joined.conversation_id, joined.item_id) == ("cnv_old", "itm_old")
        assert not joined.conversation_created
        breach = Timer(conversation_id="cnv_old", kind="breach", ref="resolution", at=T0 + HOUR)
        after = await store.update_conversation(
            "cnv_old",
            ConversationUpdate(expected_version=0, arm=[breach], served_by="agent-7", at=T0),
        )
        assert after.version == 1
        assert await store.next_timer() == T0 + HOUR
        [context] = await store.contexts([joined_message()], since=T0, limit=5)
        assert (context.customer_id, context.last_agent) == ("cus_old", "agent-7")
        assert await claim(store) == ["itm_old"]
    finally:
        await store.close()

    with sqlite3.connect(path) as reopened:
        tables = {row[0] for row in reopened.execute("SELECT name FROM sqlite_master")}
        (version,) = reopened.execute("SELECT version FROM schema_version").fetchone()
    reopened.close()
    assert version == SCHEMA_VERSION == 4
    assert {"offers", "timers", "served_by", "timers_due", "offers_queue"} <= tables
    assert "conversations_on_thread" in tables
    assert "conversations_thread" not in tables


def _as_version_3(path: Path) -> None:
    """Undo what version 4 added to a file."""
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX conversations_on_thread")
        db.execute("ALTER TABLE conversations DROP COLUMN thread_order_us")
        db.execute("CREATE INDEX conversations_thread ON conversations (thread_key)")
        db.execute("UPDATE schema_version SET version = 3")
    db.close()


async def test_a_version_3_file_orders_the_conversations_on_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        # the ids run against the creation times, so only created_at picks the newer
        await ingest_one(store, on_thread("e1", MARIA_PHONE, "cnv_z", T0))
        newer = await ingest_one(store, on_thread("e2", JOSE_PHONE, "cnv_a", T0 + HOUR))
    finally:
        await store.close()
    _as_version_3(path)

    store = SqliteStore(path)
    await store.open()
    try:
        anonymous = request("e3", typed("email", "x@example.com"), thread="t", sent_at=T0 + HOUR)
        result = await ingest_one(store, anonymous)
    finally:
        await store.close()
    assert (result.customer_id, result.conversation_id) == (newer.customer_id, "cnv_a")


def on_thread(external_id: str, phone: str, conversation_id: str, at: datetime) -> IngestRequest:
    req = request(external_id, verified("phone", phone), thread="t", sent_at=at)
    return msgspec.structs.replace(req, new_conversation_id=conversation_id)


async def test_a_message_body_from_before_kinds_and_edits_is_a_message(tmp_path: Path) -> None:
    store = SqliteStore(_v2_file(tmp_path))
    await store.open()
    try:
        [claimed] = await store.claim("default", 1, now=T0, lease_until=None, history_limit=1)
        old = claimed.message
        assert (old.message_id, old.kind, old.edited_at, old.revisions) == (
            "msg_old",
            "message",
            None,
            [],
        )
        again = ItemChange(create_item_id="itm_again")
        await store.update_conversation(
            "cnv_old", ConversationUpdate(expected_version=0, item=again)
        )
        [item] = await claim(store)
        edited = await store.edit_message("webchat", "e0", text="hi", edited_at=T0 + HOUR)
    finally:
        await store.close()
    assert item == "itm_again"  # it carries the old message: its kind reads as "message"
    assert edited is not None
    assert (edited.text, edited.revisions) == (
        "hi",
        [Revision(text="hello", replaced_at=T0 + HOUR)],
    )


def joined_message() -> NormalizedMessage:
    return request("x", verified("email", MARIA_EMAIL)).message


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


def test_a_customers_conversation_on_a_thread_is_found_by_the_customer_index(
    tmp_path: Path,
) -> None:
    """Many customers share a thread key (every message without a thread on one source):
    finding one customer's conversation must not scan the thread's (a plan regression
    once made ingest slow down with every conversation on the shared key)."""
    from router.backends.sqlite_schema import connect
    from router.backends.sqlite_thread import _ON_THREAD

    db = connect(tmp_path / "plan.sqlite3")
    try:
        plan = db.execute("EXPLAIN QUERY PLAN " + _ON_THREAD, ("c", "webchat\0")).fetchall()
    finally:
        db.close()
    conversations = [row[3] for row in plan if " c " in f" {row[3]} "]
    assert conversations, plan
    assert all("conversations_customer" in step for step in conversations), plan
