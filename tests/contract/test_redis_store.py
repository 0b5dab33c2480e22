"""What ``RedisStore`` promises beyond the shared ``Store`` contract: its keys stay under
the deployment's hash tag, its scripts survive ``SCRIPT FLUSH``, separate processes
never claim the same item, and a Redis that is down or drops connections is reported
as ``BackendUnavailable`` quickly and recovered from without a restart. All against the
real Redis; nothing sleeps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest
import redis.asyncio as aioredis

from router.backends.redis_store import RedisStore
from router.errors import BackendUnavailable
from router.identity import normalize_all
from router.ids import new_id
from router.models import (
    ConversationUpdate,
    Decision,
    IdentityIn,
    IngestRequest,
    ItemChange,
    NormalizedMessage,
    StoredMessage,
    Timer,
)

pytestmark = pytest.mark.redis

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
UNREACHABLE = "redis://127.0.0.1:1/0"


def request(
    external_id: str,
    *identities: IdentityIn,
    thread: str | None = None,
    sent_at: datetime = T0,
    deadline: datetime | None = None,
) -> IngestRequest:
    message = NormalizedMessage(
        channel="chat",
        source="webchat",
        external_id=external_id,
        sender_name="Maria",
        identities=normalize_all(list(identities)),
        customer_attributes={"tier": "gold"},
        thread=thread,
        subject=None,
        text="hello",
        sent_at=sent_at,
        received_at=T0,
        attachments=(),
        attributes={},
    )
    decision = Decision(queue="default", priority=3, deadline=deadline or T0 + HOUR)
    return IngestRequest(
        message=message,
        decision=decision,
        message_id=new_id("msg"),
        new_customer_id=new_id("cus"),
        new_conversation_id=new_id("cnv"),
        new_item_id=new_id("itm"),
    )


def email(n: int, *, verified: bool = True) -> IdentityIn:
    return IdentityIn(kind="email", value=f"c{n}@example.com", verified=verified)


@pytest.fixture
async def redis_store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, prefix=redis_prefix)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def timer(conversation_id: str, n: int, at: datetime) -> Timer:
    return Timer(conversation_id=conversation_id, kind="breach", ref=f"r{n}", at=at)


async def exercise_routing(store: RedisStore) -> None:
    """The routing methods: an update with every item change, timers, contexts."""
    [first] = await store.ingest([request("r1", email(7), thread="r")])
    conv = first.conversation_id
    change = ItemChange(priority=1, deadline=T0, move_to="vip", also_offer="spare")
    await store.update_conversation(
        conv,
        ConversationUpdate(
            expected_version=1,
            assignee="agent-1",
            item=change,
            arm=[timer(conv, 1, T0), timer(conv, 2, T0)],
            served_by="agent-1",
            at=T0,
        ),
    )
    assert len(await store.claim("spare", 10, now=T0, lease_until=None, history_limit=1)) == 1
    await store.update_conversation(
        conv,
        ConversationUpdate(
            expected_version=2,
            state="resolved",
            resolved_at=T0,
            item=ItemChange(withdraw=True),
            disarm=[timer(conv, 2, T0).key],
        ),
    )
    [context] = await store.contexts([request("r2", email(7)).message], since=T0, limit=5)
    assert context.last_agent == "agent-1"
    assert await store.next_timer() == T0
    assert len(await store.fire_timers(T0, 10)) == 1


async def exercise_every_operation(store: RedisStore) -> None:
    """Each Store method at least once, merges and leases included."""
    results = await store.ingest(
        [
            request("e1", email(1), email(9, verified=False), thread="t"),
            request("e2", email(2)),
            request("e3", email(1), email(2)),  # merges the two customers
            request("e4", thread="t"),
            request("e1", email(1)),  # a repeat
        ]
    )
    live = results[2].customer_id
    other = (await store.ingest([request("e5", email(5))]))[0].customer_id
    await store.merge(live, other, at=T0, reason="api")
    await store.ping()
    assert await store.get_customer(live) is not None
    assert await store.resolve_customer(other) == live
    assert await store.find_customer("email:c1@example.com") == live
    assert len((await store.history(other, limit=2)).messages) == 2
    assert len(await store.merges(live)) == 2
    assert await store.get_conversation(results[0].conversation_id) is not None
    assert await store.find_thread("webchat", ["e9", "e4", "e1"]) == "t"
    edited = await store.edit_message("webchat", "e2", text="edited", edited_at=T0)
    assert edited is not None
    assert edited.customer_id == live
    leased = await store.claim("default", 1, now=T0, lease_until=T0 + HOUR, history_limit=3)
    claimed = await store.claim("default", 10, now=T0, lease_until=None, history_limit=3)
    assert len(leased) + len(claimed) == 3
    assert await store.requeue_expired(T0 + 2 * HOUR) == 1
    assert await store.requeue_released() == len(claimed)
    await store.settle(
        [
            c.item.item_id
            for c in await store.claim("default", 10, now=T0, lease_until=None, history_limit=0)
        ]
    )
    assert await store.backlog_stats() == {}
    await exercise_routing(store)


async def test_every_key_lives_under_the_deployment_hash_tag(
    redis_url: str, redis_prefix: str, admin: aioredis.Redis
) -> None:
    # An ACL user that may touch only "{prefix}:*": any other key fails the command.
    user, password = f"{redis_prefix}-user", uuid.uuid4().hex
    await admin.acl_setuser(
        user,
        enabled=True,
        reset=True,
        passwords=[f"+{password}"],
        keys=[f"{{{redis_prefix}}}:*"],
        categories=["+@all"],
    )
    parts = urlsplit(redis_url)
    as_user = parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 6379}")
    store = RedisStore(urlunsplit(as_user), prefix=redis_prefix)
    try:
        await store.open()
        await exercise_every_operation(store)
    finally:
        await store.close()
        await admin.acl_deluser(user)

    keys = [key async for key in admin.scan_iter(match=f"*{redis_prefix}*", count=1000)]
    assert keys
    assert all(key.startswith(f"{{{redis_prefix}}}:") for key in keys)


async def test_scripts_are_loaded_again_after_script_flush(
    redis_store: RedisStore, admin: aioredis.Redis
) -> None:
    await redis_store.ingest([request("e1", email(1))])

    await admin.script_flush()
    batch = await redis_store.ingest([request("e2", email(2)), request("e3", email(3))])
    assert [r.duplicate for r in batch] == [False, False]

    await admin.script_flush()
    claimed = await redis_store.claim("default", 10, now=T0, lease_until=None, history_limit=1)
    assert len(claimed) == 3


async def test_a_batch_larger_than_one_script_run_keeps_order_after_script_flush(
    redis_store: RedisStore, admin: aioredis.Redis
) -> None:
    # 450 messages are three script runs in one pipeline; repeats straddle the runs.
    requests = [request(f"e{n % 300}", email(n % 300), sent_at=T0 + n * HOUR) for n in range(450)]
    await admin.script_flush()

    results = await redis_store.ingest(requests)

    assert [r.duplicate for r in results] == [n >= 300 for n in range(450)]
    assert [r.message_id for r in results[300:]] == [r.message_id for r in results[:150]]
    assert (await redis_store.backlog_stats())["default"].depth == 300


async def test_a_message_with_thousands_of_identities_and_attributes(
    redis_store: RedisStore,
) -> None:
    many = [email(n) for n in range(9000)]
    attributes = {f"a{n}": n for n in range(9000)}
    first = request("e1", *many, email(-1, verified=False))
    first.message.customer_attributes.update(attributes)
    other = request("e2", email(-2))
    [crowd] = await redis_store.ingest([first])
    [single] = await redis_store.ingest([other])

    await redis_store.merge(single.customer_id, crowd.customer_id, at=T0, reason="api")

    customer = await redis_store.get_customer(single.customer_id)
    assert customer is not None
    assert len(customer.identities) == 9001
    assert customer.attributes == {"tier": "gold", **attributes}
    assert [link.identity.key for link in customer.suggested] == ["email:c-1@example.com"]
    assert await redis_store.find_customer("email:c8999@example.com") == single.customer_id


async def test_two_processes_never_claim_the_same_item(redis_url: str, redis_prefix: str) -> None:
    first = RedisStore(redis_url, prefix=redis_prefix)
    second = RedisStore(redis_url, prefix=redis_prefix)
    await first.open()
    await second.open()
    try:
        await first.ingest([request(f"e{n}", email(n)) for n in range(60)])
        batches = await asyncio.gather(
            *(
                store.claim("default", 4, now=T0, lease_until=None, history_limit=2)
                for store in [first, second] * 10
            )
        )
    finally:
        await first.close()
        await second.close()
    claimed = [c.item.item_id for batch in batches for c in batch]
    assert len(claimed) == 60
    assert len(set(claimed)) == 60


async def test_unreachable_redis_is_backend_unavailable_within_two_seconds(
    redis_prefix: str,
) -> None:
    store = RedisStore(UNREACHABLE, prefix=redis_prefix)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable):
            await store.open()
        with pytest.raises(BackendUnavailable):
            await store.ping()
        with pytest.raises(BackendUnavailable):
            await store.ingest([request("e1", email(1))])
        with pytest.raises(BackendUnavailable):
            await store.claim("default", 1, now=T0, lease_until=None, history_limit=1)
    finally:
        await store.close()
    assert time.monotonic() - started < 2


async def test_dropped_connections_recover_without_a_restart(
    redis_store: RedisStore, redis_prefix: str, admin: aioredis.Redis
) -> None:
    await redis_store.ingest([request("e1", email(1))])
    ours = [c for c in await admin.client_list() if c["name"] == f"omniroute:{redis_prefix}"]
    assert ours
    for connection in ours:
        await admin.client_kill_filter(_id=connection["id"])

    await redis_store.ping()
    [result] = await redis_store.ingest([request("e2", email(1))])
    assert not result.duplicate


async def test_times_are_kept_to_the_microsecond_and_sorted_before_1970(
    redis_store: RedisStore,
) -> None:
    deadline = datetime(2026, 1, 5, 12, 0, 0, 123457, tzinfo=timezone(timedelta(hours=2)))
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    first, second = await redis_store.ingest(
        [
            request("e1", email(1), sent_at=datetime(1970, 1, 1, tzinfo=UTC), deadline=deadline),
            request("e2", email(1), sent_at=before_epoch),
        ]
    )
    assert first.deadline == deadline
    conversation = await redis_store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert conversation.deadline == deadline
    page = await redis_store.history(first.customer_id, limit=10)
    assert [m.message_id for m in page.messages] == [first.message_id, second.message_id]
    assert page.messages[1].sent_at == before_epoch


@pytest.mark.parametrize("edited", [False, True])
async def test_a_stored_message_is_one_complete_stored_message_json(
    redis_store: RedisStore, redis_prefix: str, admin: aioredis.Redis, edited: bool
) -> None:
    [result] = await redis_store.ingest([request("e1", email(1))])
    if edited:
        await redis_store.edit_message("webchat", "e1", text="edited", edited_at=T0 + HOUR)

    blob = await admin.get(f"{{{redis_prefix}}}:msg:{result.message_id}")

    assert blob is not None
    stored = msgspec.json.decode(blob)
    assert set(stored) == {field.name for field in msgspec.structs.fields(StoredMessage)}
    assert (stored["conversation_id"], stored["customer_id"]) == (
        result.conversation_id,
        result.customer_id,
    )
    assert (stored["text"], len(stored["revisions"])) == (("edited", 1) if edited else ("hello", 0))


async def test_two_processes_never_fire_the_same_timer(redis_url: str, redis_prefix: str) -> None:
    first = RedisStore(redis_url, prefix=redis_prefix)
    second = RedisStore(redis_url, prefix=redis_prefix)
    await first.open()
    await second.open()
    try:
        [result] = await first.ingest([request("e1", email(1))])
        conv = result.conversation_id
        armed = [timer(conv, n, T0 + n * timedelta(seconds=1)) for n in range(300)]
        await first.update_conversation(conv, ConversationUpdate(expected_version=1, arm=armed))
        batches = await asyncio.gather(
            *(store.fire_timers(T0 + HOUR, 7) for store in [first, second] * 30)
        )
    finally:
        await first.close()
        await second.close()
    fired = [t.key for batch in batches for t in batch]
    assert sorted(fired) == sorted(t.key for t in armed)
    for batch in batches:
        assert [t.at for t in batch] == sorted(t.at for t in batch)


async def test_firing_more_timers_than_one_script_run_takes_keeps_order_and_leaves_no_keys(
    redis_store: RedisStore, redis_prefix: str, admin: aioredis.Redis
) -> None:
    [result] = await redis_store.ingest([request("e1", email(1))])
    conv = result.conversation_id
    armed = [timer(conv, n, T0 - n * timedelta(seconds=1)) for n in range(2500)]
    await redis_store.update_conversation(conv, ConversationUpdate(expected_version=1, arm=armed))

    fired = await redis_store.fire_timers(T0, 2400)
    rest = await redis_store.fire_timers(T0, 2400)

    assert fired + rest == sorted(armed, key=lambda t: t.at)
    assert len(fired) == 2400
    assert await redis_store.next_timer() is None
    assert not await admin.exists(f"{{{redis_prefix}}}:timers", f"{{{redis_prefix}}}:timer")


async def test_a_conversation_stored_before_the_routing_fields_reads_with_defaults(
    redis_store: RedisStore, redis_prefix: str, admin: aioredis.Redis
) -> None:
    [result] = await redis_store.ingest([request("e1", email(1))])
    key = f"{{{redis_prefix}}}:conv:{result.conversation_id}"
    await admin.hdel(key, "version", "skills", "tags", "last")

    conversation = await redis_store.get_conversation(result.conversation_id)

    assert conversation is not None
    assert (conversation.version, conversation.skills, conversation.tags) == (0, [], [])
    assert conversation.item_id == result.item_id
    updated = await redis_store.update_conversation(
        result.conversation_id, ConversationUpdate(expected_version=0, priority=1)
    )
    assert (updated.version, updated.priority) == (1, 1)


async def test_a_thread_stored_before_its_indexes_still_finds_its_conversation(
    redis_store: RedisStore, redis_prefix: str, admin: aioredis.Redis
) -> None:
    [first] = await redis_store.ingest([request("e1", email(1), thread="t")])
    base, thread_key = f"{{{redis_prefix}}}:", "webchat\x00t"
    # as stored before tlive and tdone: the thread hash names the conversation
    await admin.delete(f"{base}tlive:{thread_key}")
    await admin.hset(f"{base}thread", thread_key, first.conversation_id)
    anonymous = request("e2", email(2, verified=False), thread="t")

    [context] = await redis_store.contexts([anonymous.message], since=T0, limit=5)
    [result] = await redis_store.ingest([anonymous])

    assert context.customer_id == result.customer_id == first.customer_id
    assert result.conversation_id == first.conversation_id
    indexed = await admin.zrange(f"{base}tlive:{thread_key}", 0, -1)
    assert indexed == [first.conversation_id]  # the routed message put it back in place
