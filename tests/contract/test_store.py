"""The contract of the ``Store`` port (``router/ports.py``), run against every
implementation through the ``store`` fixture. Each test gets a fresh store; times are
fixed datetimes and nothing sleeps.

Readings of the protocol this suite pins down (where the docstrings leave a choice):

- A message without a thread and without a verified identity never attaches to
  another customer's conversation: the thread key only links when ``thread`` is set.
- A thread key links only a message with no verified identity at all: a verified
  identity nobody owns yet makes a new customer even on an open thread (a shared
  business number, a group chat), never an identity of the thread's customer.
- A repeat reports ``new_customer=False`` and ``merged=[]``: it changed nothing.
- When a second message joins a waiting item, the item's deadline and its priority
  each become the more urgent of the two, and the ingest result reports the item's
  queue, priority and deadline (where the message actually waits).
- ``history`` of a merged customer follows the redirect to the live customer.
- A customer's ``identities`` are its verified identifiers; typed ones are suggestions.
- An automatic merge is recorded ``at`` the message's ``received_at``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.backends.sqlite_store import SqliteStore
from router.errors import Conflict, InputError, InvalidMessage, NotFound
from router.identity import normalize_all
from router.ids import new_id
from router.models import (
    Decision,
    IdentityIn,
    IngestRequest,
    IngestResult,
    MergeRecord,
    NormalizedMessage,
    StoredMessage,
)
from router.ports import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

MARIA_EMAIL = "maria@example.com"
MARIA_PHONE = "+14155550100"
JOSE_PHONE = "+14155550199"


# --- building requests ----------------------------------------------------------------


def verified(kind: str, value: str) -> IdentityIn:
    return IdentityIn(kind=kind, value=value, verified=True)


def typed(kind: str, value: str) -> IdentityIn:
    return IdentityIn(kind=kind, value=value, verified=False)


def request(
    external_id: str,
    *identities: IdentityIn,
    source: str = "webchat",
    channel: str = "chat",
    thread: str | None = None,
    name: str | None = None,
    customer_attributes: dict[str, object] | None = None,
    text: str = "hello",
    sent_at: datetime = T0,
    queue: str = "default",
    priority: int = 3,
    deadline: datetime | None = None,
    customer_id: str | None = None,
) -> IngestRequest:
    """One ``IngestRequest`` with fresh ids; ``customer_id`` fixes ``new_customer_id``."""
    message = NormalizedMessage(
        channel=channel,
        source=source,
        external_id=external_id,
        sender_name=name,
        identities=normalize_all(list(identities)),
        customer_attributes=dict(customer_attributes or {}),
        thread=thread,
        subject=None,
        text=text,
        sent_at=sent_at,
        received_at=sent_at + timedelta(seconds=1),
        attachments=(),
        attributes={},
    )
    decision = Decision(
        queue=queue, priority=priority, deadline=deadline or sent_at + HOUR, reasons=[]
    )
    return IngestRequest(
        message=message,
        decision=decision,
        message_id=new_id("msg"),
        new_customer_id=customer_id or new_id("cus"),
        new_conversation_id=new_id("cnv"),
        new_item_id=new_id("itm"),
    )


async def ingest_one(store: Store, req: IngestRequest) -> IngestResult:
    [result] = await store.ingest([req])
    return result


async def full_history(store: Store, customer_id: str, *, page: int = 100) -> list[StoredMessage]:
    messages: list[StoredMessage] = []
    before: str | None = None
    while True:
        result = await store.history(customer_id, limit=page, before=before)
        assert len(result.messages) <= page
        messages.extend(result.messages)
        if result.next_before is None:
            return messages
        before = result.next_before


async def claim(store: Store, queue: str = "default", limit: int = 10) -> list[str]:
    """Claim without a lease; the claimed item ids in order."""
    claimed = await store.claim(queue, limit, now=T0, lease_until=None, history_limit=5)
    return [c.item.item_id for c in claimed]


async def depth(store: Store, queue: str = "default") -> int:
    stats = await store.backlog_stats()
    return stats[queue].depth if queue in stats else 0


# --- lifecycle ------------------------------------------------------------------------


async def test_open_is_idempotent_and_ping_answers(store: Store) -> None:
    await store.open()
    await store.ping()


async def test_data_survives_close_and_open(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    await store.close()
    await store.open()
    assert await store.find_customer(f"email:{MARIA_EMAIL}") == first.customer_id
    assert len(await full_history(store, first.customer_id)) == 1
    assert await depth(store) == 1


# --- dedupe ---------------------------------------------------------------------------


async def test_repeat_returns_first_result_and_changes_nothing(store: Store) -> None:
    original = request("e1", verified("email", MARIA_EMAIL), thread="t1")
    first = await ingest_one(store, original)
    retry = request("e1", verified("phone", MARIA_PHONE), thread="t2", text="other", priority=1)

    again = await ingest_one(store, retry)

    assert again.duplicate
    assert again.item_id is None
    assert (again.message_id, again.customer_id, again.conversation_id) == (
        first.message_id,
        first.customer_id,
        first.conversation_id,
    )
    assert (again.queue, again.priority, again.deadline) == (
        first.queue,
        first.priority,
        first.deadline,
    )
    assert not again.new_customer
    assert again.merged == []
    assert len(await full_history(store, first.customer_id)) == 1
    assert await depth(store) == 1
    assert await store.get_customer(retry.new_customer_id) is None
    assert await store.find_customer(f"phone:{MARIA_PHONE}") is None
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert conversation.message_count == 1


async def test_repeat_within_one_batch_is_a_duplicate(store: Store) -> None:
    results = await store.ingest(
        [request("e1", verified("email", MARIA_EMAIL)), request("e1", typed("phone", JOSE_PHONE))]
    )
    assert [r.duplicate for r in results] == [False, True]
    assert results[1].message_id == results[0].message_id
    assert len(await full_history(store, results[0].customer_id)) == 1


async def test_same_external_id_from_another_source_is_a_new_message(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), source="a"))
    other = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), source="b"))
    assert not other.duplicate
    assert other.message_id != first.message_id
    assert len(await full_history(store, first.customer_id)) == 2


async def test_repeat_follows_merges_and_reports_current_routing(store: Store) -> None:
    older = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    newer = await ingest_one(
        store, request("e2", verified("phone", MARIA_PHONE), thread="t2", sent_at=T0 + MINUTE)
    )
    await ingest_one(
        store,
        request(
            "e3", verified("email", MARIA_EMAIL), verified("phone", MARIA_PHONE), sent_at=T0 + HOUR
        ),
    )
    await claim(store)
    later = T0 + 2 * HOUR
    await ingest_one(
        store,
        request(
            "e4",
            verified("phone", MARIA_PHONE),
            thread="t2",
            sent_at=later,
            priority=1,
            deadline=later,
        ),
    )

    again = await ingest_one(store, request("e2", verified("phone", MARIA_PHONE)))

    assert again.duplicate
    assert again.customer_id == older.customer_id
    assert again.conversation_id == newer.conversation_id
    assert (again.queue, again.priority, again.deadline) == ("default", 1, later)


# --- identity -------------------------------------------------------------------------


async def test_first_message_creates_a_customer(store: Store) -> None:
    req = request(
        "e1",
        verified("email", " Maria@Example.com "),
        name="Maria",
        customer_attributes={"tier": "gold"},
    )
    result = await ingest_one(store, req)

    assert result.new_customer
    assert result.customer_id == req.new_customer_id
    assert result.message_id == req.message_id
    assert result.merged == []
    customer = await store.get_customer(result.customer_id)
    assert customer is not None
    assert customer.name == "Maria"
    assert customer.attributes == {"tier": "gold"}
    assert [i.key for i in customer.identities] == [f"email:{MARIA_EMAIL}"]
    assert all(i.verified for i in customer.identities)
    assert customer.merged_into is None
    assert await store.find_customer(f"email:{MARIA_EMAIL}") == result.customer_id
    assert await store.resolve_customer(result.customer_id) == result.customer_id


async def test_verified_identity_attaches_across_channels(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("whatsapp", "14155550100")))
    second = await ingest_one(
        store, request("e2", verified("sms", MARIA_PHONE), source="twilio", channel="sms")
    )
    assert not second.new_customer
    assert second.customer_id == first.customer_id
    assert second.conversation_id != first.conversation_id


async def test_open_thread_attaches_a_message_without_verified_identity(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t1"))
    second = await ingest_one(store, request("e2", typed("email", "x@example.com"), thread="t1"))
    assert not second.new_customer
    assert second.customer_id == first.customer_id
    assert second.conversation_id == first.conversation_id


async def test_thread_of_another_source_does_not_attach(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t1"))
    other = await ingest_one(store, request("e2", thread="t1", source="othersource"))
    assert other.new_customer
    assert other.customer_id != first.customer_id


async def test_no_thread_and_no_verified_identity_makes_a_new_customer(store: Store) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    anonymous = await ingest_one(store, request("e2"))
    typed_only = await ingest_one(store, request("e3", typed("email", MARIA_EMAIL)))
    assert anonymous.new_customer
    assert typed_only.new_customer
    assert len({first.customer_id, anonymous.customer_id, typed_only.customer_id}) == 3


async def test_verified_owner_wins_over_the_thread(store: Store) -> None:
    maria = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t1"))
    jose = await ingest_one(store, request("e2", verified("phone", JOSE_PHONE)))
    result = await ingest_one(store, request("e3", verified("phone", JOSE_PHONE), thread="t1"))
    assert result.customer_id == jose.customer_id
    assert result.conversation_id != maria.conversation_id


def shared(external_id: str, *identities: IdentityIn, sent_at: datetime = T0) -> IngestRequest:
    """A text to a shared business number: every sender's message has the same thread
    key (the business number), as a group chat's would."""
    return request(
        external_id,
        *identities,
        source="twilio",
        channel="sms",
        thread="+15005550006",
        sent_at=sent_at,
    )


async def test_strangers_on_a_shared_thread_stay_two_customers(store: Store) -> None:
    maria = await ingest_one(store, shared("s1", verified("phone", MARIA_PHONE)))
    # no verified identity at all: the thread's open conversation, as ever
    typed_only = await ingest_one(store, shared("s2", typed("email", "x@example.com")))
    assert (typed_only.customer_id, typed_only.conversation_id) == (
        maria.customer_id,
        maria.conversation_id,
    )
    jose_req = shared("s3", verified("phone", JOSE_PHONE), sent_at=T0 + MINUTE)

    jose = await ingest_one(store, jose_req)

    assert (jose.customer_id, jose.new_customer, jose.merged) == (
        jose_req.new_customer_id,
        True,
        [],
    )
    assert (jose.conversation_id, jose.conversation_created) == (
        jose_req.new_conversation_id,
        True,
    )
    assert jose.conversation_id != maria.conversation_id
    assert await store.find_customer(f"phone:{MARIA_PHONE}") == maria.customer_id
    assert await store.find_customer(f"phone:{JOSE_PHONE}") == jose.customer_id
    customer = await store.get_customer(maria.customer_id)
    assert customer is not None
    assert [i.key for i in customer.identities] == [f"phone:{MARIA_PHONE}"]
    assert [m.external_id for m in await full_history(store, jose.customer_id)] == ["s3"]
    # each goes on writing into their own conversation
    again = await ingest_one(
        store, shared("s4", verified("phone", MARIA_PHONE), sent_at=T0 + 2 * MINUTE)
    )
    assert (again.customer_id, again.conversation_id) == (maria.customer_id, maria.conversation_id)
    jose_again = await ingest_one(
        store, shared("s5", verified("phone", JOSE_PHONE), sent_at=T0 + 3 * MINUTE)
    )
    assert (jose_again.customer_id, jose_again.conversation_id) == (
        jose.customer_id,
        jose.conversation_id,
    )


async def test_an_owned_and_a_new_verified_identity_on_a_thread_join_the_owner(
    store: Store,
) -> None:
    first = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t1"))
    both = request(
        "e2", verified("email", MARIA_EMAIL), verified("phone", MARIA_PHONE), thread="t1"
    )
    result = await ingest_one(store, both)
    assert (result.customer_id, result.new_customer) == (first.customer_id, False)
    assert await store.find_customer(f"phone:{MARIA_PHONE}") == first.customer_id


async def test_verified_identities_of_two_customers_merge_into_the_oldest(store: Store) -> None:
    # The older customer has the larger id: created_at decides before the id.
    older = await ingest_one(
        store,
        request("e1", verified("email", MARIA_EMAIL), typed("x", "handle"), customer_id="cus_z"),
    )
    newer = await ingest_one(
        store,
        request(
            "e2",
            verified("phone", MARIA_PHONE),
            typed("y", "other"),
            name="Maria",
            customer_id="cus_a",
            sent_at=T0 + MINUTE,
            thread="t2",
        ),
    )
    before = await full_history(store, older.customer_id) + await full_history(
        store, newer.customer_id
    )

    both = request(
        "e3", verified("email", MARIA_EMAIL), verified("phone", MARIA_PHONE), sent_at=T0 + HOUR
    )
    result = await ingest_one(store, both)

    assert result.customer_id == "cus_z"
    assert result.merged == ["cus_a"]
    assert not result.new_customer
    after = await full_history(store, "cus_z")
    assert len(after) == len(before) + 1
    assert Counter(m.message_id for m in after) == Counter(
        [m.message_id for m in before] + [both.message_id]
    )
    assert all(m.customer_id == "cus_z" for m in after)

    winner = await store.get_customer("cus_z")
    loser = await store.get_customer("cus_a")
    assert winner is not None
    assert loser is not None
    assert loser.merged_into == "cus_z"
    assert "cus_a" in winner.merged_from
    assert winner.name == "Maria"
    assert {i.key for i in winner.identities} == {f"email:{MARIA_EMAIL}", f"phone:{MARIA_PHONE}"}
    assert {s.identity.key for s in winner.suggested} == {"x:handle", "y:other"}
    assert await store.find_customer(f"phone:{MARIA_PHONE}") == "cus_z"
    assert await store.resolve_customer("cus_a") == "cus_z"
    moved = await store.get_conversation(newer.conversation_id)
    assert moved is not None
    assert moved.customer_id == "cus_z"

    [merge] = await store.merges("cus_a")
    assert merge == MergeRecord(
        winner="cus_z",
        loser="cus_a",
        at=both.message.received_at,
        reason=f"identity:phone:{MARIA_PHONE}",
    )
    assert await store.merges("cus_z") == [merge]


async def test_three_customers_merge_in_one_message(store: Store) -> None:
    await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), customer_id="cus_b"))
    await ingest_one(store, request("e2", verified("phone", MARIA_PHONE), customer_id="cus_a"))
    await ingest_one(
        store,
        request("e3", verified("telegram", "4242"), customer_id="cus_c", sent_at=T0 + MINUTE),
    )
    result = await ingest_one(
        store,
        request(
            "e4",
            verified("telegram", "4242"),
            verified("email", MARIA_EMAIL),
            verified("phone", MARIA_PHONE),
            sent_at=T0 + HOUR,
        ),
    )
    # cus_a and cus_b were created at the same instant: the smaller id is the older.
    assert result.customer_id == "cus_a"
    assert sorted(result.merged) == ["cus_b", "cus_c"]
    assert len(await full_history(store, "cus_a")) == 4
    for key in ("telegram:4242", f"email:{MARIA_EMAIL}", f"phone:{MARIA_PHONE}"):
        assert await store.find_customer(key) == "cus_a"
    assert len(await store.merges("cus_a")) == 2


async def test_typed_identity_becomes_a_suggestion(store: Store) -> None:
    req = request("e1", verified("email", MARIA_EMAIL), typed("phone", MARIA_PHONE))
    result = await ingest_one(store, req)
    customer = await store.get_customer(result.customer_id)
    assert customer is not None
    [link] = customer.suggested
    assert link.identity.key == f"phone:{MARIA_PHONE}"
    assert link.other_customer_id is None
    assert link.message_id == req.message_id
    assert [i.key for i in customer.identities] == [f"email:{MARIA_EMAIL}"]
    assert await store.find_customer(f"phone:{MARIA_PHONE}") is None


async def test_typed_identity_owned_by_another_customer_links_but_never_merges(
    store: Store,
) -> None:
    jose = await ingest_one(store, request("e1", verified("phone", JOSE_PHONE)))
    maria = await ingest_one(
        store, request("e2", verified("email", MARIA_EMAIL), typed("phone", JOSE_PHONE))
    )
    assert maria.customer_id != jose.customer_id
    assert maria.merged == []
    customer = await store.get_customer(maria.customer_id)
    assert customer is not None
    [link] = customer.suggested
    assert link.other_customer_id == jose.customer_id
    assert await store.find_customer(f"phone:{JOSE_PHONE}") == jose.customer_id
    assert await store.resolve_customer(jose.customer_id) == jose.customer_id
    assert await store.merges(jose.customer_id) == []


async def test_suggestions_are_not_repeated_nor_made_for_own_identities(store: Store) -> None:
    first = await ingest_one(
        store, request("e1", verified("email", MARIA_EMAIL), typed("phone", MARIA_PHONE))
    )
    await ingest_one(
        store, request("e2", verified("email", MARIA_EMAIL), typed("phone", MARIA_PHONE))
    )
    await ingest_one(
        store, request("e3", verified("email", MARIA_EMAIL), typed("email", MARIA_EMAIL))
    )
    customer = await store.get_customer(first.customer_id)
    assert customer is not None
    assert [s.identity.key for s in customer.suggested] == [f"phone:{MARIA_PHONE}"]


async def test_name_fills_once_and_attributes_merge(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(
        store, request("e1", maria, customer_attributes={"tier": "gold", "lang": "en"})
    )
    await ingest_one(store, request("e2", maria, name="Maria", customer_attributes={"tier": "vip"}))
    await ingest_one(store, request("e3", maria, name="Someone Else"))
    customer = await store.get_customer(first.customer_id)
    assert customer is not None
    assert customer.name == "Maria"
    assert customer.attributes == {"tier": "vip", "lang": "en"}


async def test_unknown_customer_and_identity(store: Store) -> None:
    await ingest_one(store, request("e1", typed("email", MARIA_EMAIL)))
    assert await store.get_customer("cus_unknown") is None
    assert await store.resolve_customer("cus_unknown") is None
    assert await store.find_customer(f"email:{MARIA_EMAIL}") is None
    assert await store.find_customer("email:nobody@example.com") is None


# --- conversations --------------------------------------------------------------------


async def test_same_thread_key_reuses_the_conversation(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(store, request("e1", maria, thread="t1", source="mail"))
    second = await ingest_one(
        store, request("e2", maria, thread="t1", source="mail", sent_at=T0 + MINUTE)
    )
    other_thread = await ingest_one(store, request("e3", maria, thread="t2", source="mail"))
    other_source = await ingest_one(store, request("e4", maria, thread="t1", source="chat"))
    no_thread = await ingest_one(store, request("e5", maria, source="mail"))

    assert second.conversation_id == first.conversation_id
    ids = {first.conversation_id, other_thread.conversation_id, other_source.conversation_id}
    assert len(ids | {no_thread.conversation_id}) == 4
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert conversation.message_count == 2
    assert conversation.state == "open"


async def test_get_conversation(store: Store) -> None:
    req = request(
        "e1",
        verified("email", MARIA_EMAIL),
        source="postmark",
        channel="email",
        thread="<abc@mail>",
        queue="billing",
        priority=2,
        deadline=T0 + 4 * HOUR,
    )
    result = await ingest_one(store, req)
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    assert conversation.conversation_id == req.new_conversation_id
    assert conversation.customer_id == result.customer_id
    assert (conversation.channel, conversation.source, conversation.thread) == (
        "email",
        "postmark",
        "<abc@mail>",
    )
    assert (conversation.queue, conversation.priority, conversation.deadline) == (
        "billing",
        2,
        T0 + 4 * HOUR,
    )
    assert conversation.message_count == 1
    assert conversation.state == "open"
    assert await store.get_conversation("cnv_unknown") is None


async def test_routing_changes_only_when_no_item_was_waiting(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(store, request("e1", maria, thread="t", deadline=T0 + 3 * HOUR))
    await ingest_one(
        store, request("e2", maria, thread="t", queue="vip", priority=1, deadline=T0 + 2 * HOUR)
    )
    waiting = await store.get_conversation(first.conversation_id)
    assert waiting is not None
    assert (waiting.queue, waiting.priority, waiting.deadline) == ("default", 3, T0 + 3 * HOUR)

    await claim(store)
    await ingest_one(
        store, request("e3", maria, thread="t", queue="vip", priority=2, deadline=T0 + 5 * HOUR)
    )
    changed = await store.get_conversation(first.conversation_id)
    assert changed is not None
    assert (changed.queue, changed.priority, changed.deadline) == ("vip", 2, T0 + 5 * HOUR)
    assert changed.message_count == 3


# --- history --------------------------------------------------------------------------


async def test_history_is_newest_first_across_channels(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    reqs = [
        request("e1", maria, source="mail", channel="email", sent_at=T0 + 2 * MINUTE),
        request("e2", maria, verified("sms", MARIA_PHONE), source="sms", sent_at=T0),
        request("e3", verified("phone", MARIA_PHONE), source="wa", sent_at=T0 + MINUTE),
    ]
    results = [await ingest_one(store, r) for r in reqs]
    messages = await full_history(store, results[0].customer_id)
    assert [m.external_id for m in messages] == ["e1", "e3", "e2"]
    newest = messages[0]
    assert newest.message_id == reqs[0].message_id
    assert newest.conversation_id == results[0].conversation_id
    assert newest.customer_id == results[0].customer_id
    assert (newest.channel, newest.source, newest.text) == ("email", "mail", "hello")
    assert newest.sent_at == T0 + 2 * MINUTE
    assert [i.key for i in newest.identities] == [f"email:{MARIA_EMAIL}"]


async def test_history_pages_over_equal_timestamps(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    stamps = [T0] * 4 + [T0 + MINUTE] * 3 + [T0 + 2 * MINUTE] * 3
    reqs = [request(f"e{n}", maria, sent_at=at) for n, at in enumerate(stamps)]
    results = await store.ingest(reqs)
    customer_id = results[0].customer_id

    paged = await full_history(store, customer_id, page=3)

    assert len(paged) == 10
    assert len({m.message_id for m in paged}) == 10
    assert [m.sent_at for m in paged] == sorted(stamps, reverse=True)
    assert [m.message_id for m in paged] == [
        m.message_id for m in await full_history(store, customer_id)
    ]


async def test_history_last_page_has_no_cursor(store: Store) -> None:
    results = await store.ingest(
        [request(f"e{n}", verified("email", MARIA_EMAIL)) for n in range(3)]
    )
    first = await store.history(results[0].customer_id, limit=2)
    assert len(first.messages) == 2
    assert first.next_before is not None
    last = await store.history(results[0].customer_id, limit=2, before=first.next_before)
    assert len(last.messages) == 1
    assert last.next_before is None


async def test_history_errors(store: Store) -> None:
    result = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    with pytest.raises(NotFound):
        await store.history("cus_unknown", limit=10)
    with pytest.raises(InputError):
        await store.history(result.customer_id, limit=10, before="%%not a cursor%%")


# --- backlog --------------------------------------------------------------------------


async def test_message_queues_an_item(store: Store) -> None:
    req = request("e1", verified("email", MARIA_EMAIL), queue="sales", priority=2)
    result = await ingest_one(store, req)
    assert result.item_id == req.new_item_id
    assert (result.queue, result.priority, result.deadline) == ("sales", 2, T0 + HOUR)
    stats = await store.backlog_stats()
    assert set(stats) == {"sales"}
    assert (stats["sales"].depth, stats["sales"].oldest_deadline, stats["sales"].released) == (
        1,
        T0 + HOUR,
        0,
    )


async def test_second_message_updates_the_waiting_item(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(
        store, request("e1", maria, thread="t", priority=2, deadline=T0 + 3 * HOUR)
    )
    later = request("e2", maria, thread="t", priority=4, deadline=T0 + HOUR, sent_at=T0 + MINUTE)
    second = await ingest_one(store, later)

    assert second.item_id == first.item_id
    assert (second.priority, second.deadline) == (2, T0 + HOUR)
    assert await depth(store) == 1
    [claimed] = await store.claim("default", 10, now=T0, lease_until=None, history_limit=5)
    assert claimed.item.item_id == first.item_id
    assert claimed.item.message_id == later.message_id
    assert claimed.message.message_id == later.message_id
    assert (claimed.item.priority, claimed.item.deadline) == (2, T0 + HOUR)


async def test_less_urgent_message_keeps_the_item_urgency(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(
        store, request("e1", maria, thread="t", priority=1, deadline=T0 + HOUR)
    )
    second = await ingest_one(
        store, request("e2", maria, thread="t", priority=5, deadline=T0 + 9 * HOUR)
    )
    assert second.item_id == first.item_id
    assert (second.queue, second.priority, second.deadline) == ("default", 1, T0 + HOUR)


async def test_claim_in_urgency_order_with_limit(store: Store) -> None:
    deadlines = [(3 * HOUR, 3), (HOUR, 4), (2 * HOUR, 1), (HOUR, 2), (4 * HOUR, 1)]
    reqs = [
        request(f"e{n}", verified("telegram", str(n)), deadline=T0 + offset, priority=priority)
        for n, (offset, priority) in enumerate(deadlines)
    ]
    results = await store.ingest(reqs)
    item = {r.message.external_id: res.item_id for r, res in zip(reqs, results, strict=True)}

    assert await claim(store, limit=2) == [item["e3"], item["e1"]]
    assert await claim(store, limit=2) == [item["e2"], item["e0"]]
    assert await claim(store, limit=2) == [item["e4"]]
    assert await claim(store, limit=2) == []


async def test_claim_takes_only_its_queue(store: Store) -> None:
    await store.ingest(
        [
            request("e1", verified("telegram", "1"), queue="a"),
            request("e2", verified("telegram", "2"), queue="b"),
        ]
    )
    assert len(await claim(store, "a")) == 1
    assert await claim(store, "a") == []
    assert await claim(store, "nothing-here") == []
    assert await depth(store, "b") == 1


async def test_claimed_item_carries_everything_for_a_work_item(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    older = [
        request(f"old{n}", maria, source="mail", sent_at=T0 + n * MINUTE, name="Maria")
        for n in range(4)
    ]
    for req in older:
        await ingest_one(store, req)
    await claim(store)
    new = request(
        "new",
        maria,
        verified("sms", MARIA_PHONE),
        source="sms",
        channel="sms",
        sent_at=T0 + HOUR,
        queue="vip",
        priority=1,
    )
    result = await ingest_one(store, new)

    [claimed] = await store.claim("vip", 5, now=T0 + HOUR, lease_until=None, history_limit=3)

    assert claimed.item.item_id == result.item_id
    assert claimed.item.conversation_id == result.conversation_id
    assert (claimed.item.queue, claimed.item.priority, claimed.item.deadline) == (
        "vip",
        1,
        T0 + 2 * HOUR,
    )
    assert claimed.conversation.conversation_id == result.conversation_id
    assert claimed.customer.customer_id == result.customer_id
    assert claimed.customer.name == "Maria"
    assert claimed.message.message_id == new.message_id
    assert claimed.message.text == "hello"
    assert [m.external_id for m in claimed.history] == ["new", "old3", "old2"]


async def test_claimed_item_is_not_claimable_again(store: Store) -> None:
    await ingest_one(store, request("e1", verified("email", MARIA_EMAIL)))
    assert len(await claim(store)) == 1
    assert await claim(store) == []
    assert await depth(store) == 0


async def test_concurrent_claims_never_share_an_item(store: Store) -> None:
    await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(10)])
    batches = await asyncio.gather(*(claim(store, limit=3) for _ in range(5)))
    claimed = [item_id for batch in batches for item_id in batch]
    assert len(claimed) == 10
    assert len(set(claimed)) == 10


async def test_message_after_claim_opens_a_new_item(store: Store) -> None:
    maria = verified("email", MARIA_EMAIL)
    first = await ingest_one(store, request("e1", maria, thread="t"))
    await claim(store)
    follow_up = request("e2", maria, thread="t", sent_at=T0 + MINUTE)
    second = await ingest_one(store, follow_up)
    assert second.conversation_id == first.conversation_id
    assert second.item_id == follow_up.new_item_id
    assert second.item_id != first.item_id
    assert await claim(store) == [second.item_id]


async def test_settle_forgets_released_items(store: Store) -> None:
    await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(2)])
    item_ids = await claim(store)
    assert (await store.backlog_stats())["default"].released == 2
    await store.settle(item_ids)
    assert "default" not in await store.backlog_stats()
    assert await store.requeue_released() == 0
    assert await store.requeue_expired(T0 + 100 * HOUR) == 0
    await store.settle(["itm_unknown"])


async def test_requeue_expired_respects_the_lease(store: Store) -> None:
    await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(3)])
    leased = await store.claim("default", 1, now=T0, lease_until=T0 + 5 * MINUTE, history_limit=1)
    unleased = await claim(store, limit=1)

    assert await store.requeue_expired(T0 + 4 * MINUTE) == 0
    assert await store.requeue_expired(T0 + 6 * MINUTE) == 1
    assert await store.requeue_expired(T0 + 7 * MINUTE) == 0

    stats = (await store.backlog_stats())["default"]
    assert (stats.depth, stats.released) == (2, 1)
    assert leased[0].item.item_id in await claim(store)
    await store.settle(unleased)


async def test_requeue_released_returns_every_released_item(store: Store) -> None:
    await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(3)])
    first = await claim(store, limit=1)
    leased = await store.claim("default", 1, now=T0, lease_until=T0 + HOUR, history_limit=1)
    settled = await claim(store, limit=1)
    await store.settle(settled)

    assert await store.requeue_released() == 2
    assert await store.requeue_released() == 0
    assert sorted(await claim(store)) == sorted([*first, leased[0].item.item_id])


async def test_backlog_stats(store: Store) -> None:
    assert await store.backlog_stats() == {}
    await store.ingest(
        [
            request("e1", verified("telegram", "1"), queue="a", deadline=T0 + 3 * HOUR),
            request("e2", verified("telegram", "2"), queue="a", deadline=T0 + HOUR),
            request("e3", verified("telegram", "3"), queue="a", deadline=T0 + 2 * HOUR),
            request("e4", verified("telegram", "4"), queue="b", deadline=T0 + HOUR),
        ]
    )
    await claim(store, "a", limit=1)
    await claim(store, "b", limit=1)
    stats = await store.backlog_stats()
    assert set(stats) == {"a", "b"}
    assert (stats["a"].depth, stats["a"].oldest_deadline, stats["a"].released) == (
        2,
        T0 + 2 * HOUR,
        1,
    )
    assert (stats["b"].depth, stats["b"].oldest_deadline, stats["b"].released) == (0, None, 1)


async def test_backlog_stats_count_the_items_due_by_a_time(store: Store) -> None:
    await store.ingest(
        [
            request(f"e{n}", verified("telegram", str(n)), queue="a", deadline=T0 + n * HOUR)
            for n in range(1, 5)
        ]
    )
    assert (await store.backlog_stats())["a"].at_risk == 0
    stats = await store.backlog_stats(at_risk_before=T0 + 2 * HOUR)
    assert (stats["a"].depth, stats["a"].at_risk) == (4, 2)  # due at +1 h and +2 h
    stats = await store.backlog_stats(at_risk_before=T0 + 2 * HOUR - MINUTE)
    assert stats["a"].at_risk == 1
    await claim(store, "a", limit=1)  # released items are not waiting
    assert (await store.backlog_stats(at_risk_before=T0 + 9 * HOUR))["a"].at_risk == 3


# --- merge through the API ------------------------------------------------------------


async def test_merge_moves_everything_and_records_it(store: Store) -> None:
    maria = await ingest_one(store, request("e1", verified("email", MARIA_EMAIL), thread="t"))
    other = await ingest_one(
        store, request("e2", verified("phone", MARIA_PHONE), typed("x", "h"), sent_at=T0 + MINUTE)
    )
    at = T0 + HOUR

    record = await store.merge(other.customer_id, maria.customer_id, at=at, reason="api")

    assert record == MergeRecord(
        winner=other.customer_id, loser=maria.customer_id, at=at, reason="api"
    )
    assert await store.merges(maria.customer_id) == [record]
    assert await store.resolve_customer(maria.customer_id) == other.customer_id
    assert await store.find_customer(f"email:{MARIA_EMAIL}") == other.customer_id
    history = await full_history(store, other.customer_id)
    assert [m.external_id for m in history] == ["e2", "e1"]
    conversation = await store.get_conversation(maria.conversation_id)
    assert conversation is not None
    assert conversation.customer_id == other.customer_id
    winner = await store.get_customer(other.customer_id)
    assert winner is not None
    assert {i.key for i in winner.identities} == {f"email:{MARIA_EMAIL}", f"phone:{MARIA_PHONE}"}
    assert [s.identity.key for s in winner.suggested] == ["x:h"]

    # the thread now continues with the winner
    follow_up = await ingest_one(store, request("e3", thread="t"))
    assert follow_up.customer_id == other.customer_id
    assert follow_up.conversation_id == maria.conversation_id


async def test_merges_are_listed_oldest_first(store: Store) -> None:
    results = await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(3)])
    winner, first, second = (r.customer_id for r in results)
    one = await store.merge(winner, first, at=T0 + MINUTE, reason="api")
    two = await store.merge(winner, second, at=T0 + HOUR, reason="api")
    assert await store.merges(winner) == [one, two]
    assert await store.merges(second) == [two]


async def test_merge_refuses_impossible_merges(store: Store) -> None:
    results = await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(3)])
    a, b, c = (r.customer_id for r in results)
    with pytest.raises(Conflict):
        await store.merge(a, a, at=T0, reason="api")
    await store.merge(a, b, at=T0, reason="api")
    with pytest.raises(Conflict):
        await store.merge(c, b, at=T0, reason="api")
    with pytest.raises(Conflict):
        await store.merge(b, c, at=T0, reason="api")
    with pytest.raises(NotFound):
        await store.merge(a, "cus_unknown", at=T0, reason="api")
    with pytest.raises(NotFound):
        await store.merge("cus_unknown", c, at=T0, reason="api")
    assert await store.resolve_customer(c) == c
    assert len(await store.merges(a)) == 1


async def test_history_of_a_merged_customer_follows_the_redirect(store: Store) -> None:
    results = await store.ingest([request(f"e{n}", verified("telegram", str(n))) for n in range(2)])
    winner, loser = (r.customer_id for r in results)
    await store.merge(winner, loser, at=T0, reason="api")
    assert len(await full_history(store, loser)) == 2


# --- batches --------------------------------------------------------------------------


async def test_batch_keeps_order_and_messages_see_each_other(store: Store) -> None:
    reqs = [
        request("e1", verified("email", MARIA_EMAIL), thread="t"),
        request("e2", verified("email", MARIA_EMAIL), source="mail", sent_at=T0 + MINUTE),
        request("e3", thread="t", sent_at=T0 + 2 * MINUTE),
        request("e4", verified("phone", JOSE_PHONE), sent_at=T0 + 3 * MINUTE),
        request("e5", verified("phone", JOSE_PHONE), verified("email", MARIA_EMAIL)),
    ]
    results = await store.ingest(reqs)

    assert [r.message_id for r in results] == [r.message_id for r in reqs]
    first = results[0]
    assert first.new_customer
    assert (results[1].customer_id, results[1].new_customer) == (first.customer_id, False)
    assert results[2].customer_id == first.customer_id
    assert results[2].conversation_id == first.conversation_id
    assert results[2].item_id == first.item_id
    assert results[3].new_customer
    assert results[4].customer_id == first.customer_id
    assert results[4].merged == [results[3].customer_id]
    assert len(await full_history(store, first.customer_id)) == 5
    assert await depth(store) == 3


# --- the identity invariant, as a property ----------------------------------------------

POOL = 5
identity_choice = st.tuples(st.integers(0, POOL - 1), st.booleans())
message_spec = st.tuples(
    st.integers(0, 9),  # external id: repeats are duplicates
    st.lists(identity_choice, max_size=3),
    st.sampled_from([None, "t1", "t2"]),
)
batches_spec = st.lists(st.lists(message_spec, min_size=1, max_size=4), min_size=1, max_size=5)


def _pool_request(
    salt: str, step: int, spec: tuple[int, list[tuple[int, bool]], str | None]
) -> IngestRequest:
    external, choices, thread = spec
    identities = [
        IdentityIn(kind="email", value=f"p{n}-{salt}@example.com", verified=is_verified)
        for n, is_verified in choices
    ]
    return request(
        f"e{external}",
        *identities,
        source=f"src-{salt}",
        thread=f"{thread}-{salt}" if thread else None,
        sent_at=T0 + step * MINUTE,
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=batches_spec)
async def test_no_identity_maps_to_two_live_customers(
    store: Store, batches: list[list[tuple[int, list[tuple[int, bool]], str | None]]]
) -> None:
    salt = uuid.uuid4().hex[:8]  # examples share the store: each works in its own names
    step = 0
    results: list[IngestResult] = []
    verified_keys: set[str] = set()
    for batch in batches:
        reqs = []
        for spec in batch:
            reqs.append(_pool_request(salt, step, spec))
            step += 1
        batch_results = await store.ingest(reqs)
        for req, result in zip(reqs, batch_results, strict=True):
            if not result.duplicate:
                verified_keys.update(i.key for i in req.message.verified)
        results.extend(batch_results)

    live = {await store.resolve_customer(r.customer_id) for r in results}
    owners: dict[str, str] = {}
    message_ids: list[str] = []
    for customer_id in live:
        assert customer_id is not None
        customer = await store.get_customer(customer_id)
        assert customer is not None
        assert customer.merged_into is None
        for identity in customer.identities:
            assert identity.verified
            assert identity.key not in owners
            owners[identity.key] = customer_id
            assert await store.find_customer(identity.key) == customer_id
        message_ids += [m.message_id for m in await full_history(store, customer_id)]

    assert set(owners) == verified_keys
    distinct = {spec[0] for batch in batches for spec in batch}
    assert len(message_ids) == len(distinct)
    assert len(set(message_ids)) == len(distinct)


# --- the embedded implementation only ---------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "data" / "omniroute.sqlite3")
    await store.open()
    yield store
    await store.close()


async def test_sqlite_bad_message_fails_alone(sqlite_store: SqliteStore) -> None:
    good = [request("e1", verified("email", MARIA_EMAIL)), request("e3", thread="t")]
    unstorable = request("e2\ud800")  # a lone surrogate cannot be encoded as UTF-8

    with pytest.raises(InvalidMessage):
        await sqlite_store.ingest([good[0], unstorable, good[1]])

    retried = await sqlite_store.ingest(good)
    assert [r.duplicate for r in retried] == [True, True]
    assert await depth(sqlite_store) == 2


async def test_sqlite_data_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.sqlite3"
    first = SqliteStore(path)
    await first.open()
    result = await ingest_one(first, request("e1", verified("email", MARIA_EMAIL)))
    await first.close()

    second = SqliteStore(path)
    await second.open()
    try:
        assert await second.find_customer(f"email:{MARIA_EMAIL}") == result.customer_id
        assert await claim(second) == [result.item_id]
    finally:
        await second.close()
