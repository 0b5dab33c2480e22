"""The routing half of the ``Store`` contract (``router/ports.py``): decisions stored with
a new conversation, urgency scores, ``update_conversation``, item changes, timers,
routing contexts and the reopen window. Runs on every implementation through the
``store`` fixture; times are fixed datetimes and nothing sleeps.

Readings of the protocol this suite pins down (both backends agree):

- ``Conversation.item_id`` is the waiting backlog item; a claim or a withdraw clears
  it, ``create_item_id`` sets it.
- A message joining a waiting item: score = min(deadline parts) * 8 + min(priorities),
  the new message's part taken from ``Decision.score`` (which may carry an aging bound)
  or else from its deadline; the item's ``deadline`` and ``priority`` fields each take
  the more urgent of the two.
- Ingest on an existing conversation changes neither ``version`` nor ``sla``, and arms
  none of the decision's timers (they are for a new conversation).
- ``update_conversation`` applies the fields, then the item change (withdraw; else
  re-score, move_to, also_offer, create_item_id when none waits; reasons appended),
  then disarm, arm, served_by; version + 1. Fields left UNSET keep their value.
- ``ItemChange`` with priority and deadline: the item takes both, its score is
  ``urgency.rescore`` (never less urgent than it was).
- ``create_item_id`` carries the conversation's newest customer message, the
  conversation's priority and deadline after the update, ``created_at = update.at``
  and the change's reasons; when an item already waits it is ignored.
- An also-offered item is claimable from either queue once; ``BacklogItem.queue`` is
  the queue it was claimed from.
- ``contexts`` names the customer ingest then picks for the same message (a shared
  thread, several owners, recorded-only conversations, messages routed nowhere, a
  resolved conversation the message reopens) when given the ingest request's reopen
  window; without one (0, the default) a resolved conversation is never reopened, as
  for ingest. ``last_agent`` follows the newest ``served_by`` of
  the customer; after a merge the winner keeps the newer of the two records.
- ``Conversation.awaiting_response`` is ``sla.awaiting_response`` as of the last write of
  ``sla`` (ingest of a new conversation, ``update_conversation`` with ``sla`` set); other
  updates keep it. ``IngestResult.previous_state`` is the state before the message (None
  when it created the conversation, and for a duplicate) and ``awaiting_response`` the
  conversation's hint (False for a duplicate).
- Reopen: a resolved conversation's thread key still finds it (and its customer, for a
  message with only a thread) within the reopen window; the reopened conversation keeps
  its queue, priority, deadline and version, and a new item waits in its queue with the
  decision's priority and deadline. After the window (or with no window) the message
  opens a new conversation whose ``previous_conversation_id`` names the resolved one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from router import urgency
from router.errors import Conflict, NotFound
from router.models import (
    ClockStatus,
    Conversation,
    ConversationSla,
    ConversationUpdate,
    IngestRequest,
    IngestResult,
    ItemChange,
    Reason,
    RoutingContext,
    SlaClock,
    Timer,
)
from router.ports import Store

from .test_store import (
    HOUR,
    JOSE_PHONE,
    MARIA_EMAIL,
    MARIA_PHONE,
    MINUTE,
    T0,
    claim,
    depth,
    ingest_one,
    request,
    typed,
    verified,
)

MARIA = verified("email", MARIA_EMAIL)
RULE = Reason(kind="rule", name="vip")
TRANSFER = Reason(kind="rule", name="transfer", decided={"queue": "billing"})

SLA = ConversationSla(
    policy="standard",
    calendar="madrid",
    warning_ratio=0.75,
    clocks=[
        SlaClock(
            kind="first_response",
            target_s=3600,
            started_at=T0,
            due=T0 + HOUR,
            warning_at=T0 + 45 * MINUTE,
        )
    ],
)


# --- building requests and updates ------------------------------------------------------


def routed(
    req: IngestRequest,
    *,
    score: int | None = None,
    skills: Sequence[str] = (),
    tags: Sequence[str] = (),
    sla: ConversationSla | None = None,
    timers: Sequence[tuple[str, str, datetime]] = (),
    reasons: Sequence[Reason] = (),
    reopen_window_s: float = 0.0,
) -> IngestRequest:
    """``req`` with a richer decision; ``timers`` are ``(kind, ref, at)`` of the new
    conversation."""
    decision = msgspec.structs.replace(
        req.decision,
        score=score,
        skills=list(skills),
        tags=list(tags),
        sla=sla,
        timers=[timer(req.new_conversation_id, *spec) for spec in timers],
        reasons=list(reasons),
    )
    return msgspec.structs.replace(req, decision=decision, reopen_window_s=reopen_window_s)


def timer(conversation_id: str, kind: str, ref: str, at: datetime) -> Timer:
    return msgspec.convert(
        {"conversation_id": conversation_id, "kind": kind, "ref": ref, "at": at}, Timer
    )


async def update(store: Store, conversation_id: str, **fields: object) -> Conversation:
    """``update_conversation`` at the conversation's current version."""
    current = await store.get_conversation(conversation_id)
    assert current is not None
    change = ConversationUpdate(expected_version=current.version)
    return await store.update_conversation(
        conversation_id, msgspec.structs.replace(change, **fields)
    )


async def claimed_items(store: Store, queue: str = "default") -> list[tuple[str, str]]:
    """``(item_id, queue)`` of everything claimable, most urgent first."""
    claimed = await store.claim(queue, 50, now=T0, lease_until=None, history_limit=1)
    return [(c.item.item_id, c.item.queue) for c in claimed]


async def drain(store: Store, now: datetime, limit: int) -> list[Timer]:
    fired: list[Timer] = []
    while batch := await store.fire_timers(now, limit):
        assert len(batch) <= limit
        fired += batch
    return fired


# --- ingest: the decision of a new conversation -----------------------------------------


async def test_new_conversation_stores_the_decision(store: Store) -> None:
    req = routed(
        request("e1", MARIA, thread="t", queue="sales", priority=2),
        skills=["es"],
        tags=["vip"],
        sla=SLA,
        timers=[
            ("breach", "first_response", T0 + HOUR),
            ("warning", "first_response", T0 + 45 * MINUTE),
        ],
    )
    result = await ingest_one(store, req)

    assert result.conversation_created
    assert not result.reopened
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    assert conversation.version == 1
    assert (conversation.skills, conversation.tags, conversation.sla) == (["es"], ["vip"], SLA)
    assert conversation.item_id == result.item_id == req.new_item_id
    assert (conversation.assignee, conversation.resolved_at) == (None, None)
    assert conversation.previous_conversation_id is None
    assert await store.next_timer() == T0 + 45 * MINUTE
    assert await store.fire_timers(T0 + HOUR, 10) == [
        req.decision.timers[1],
        req.decision.timers[0],
    ]
    assert await store.next_timer() is None


async def test_message_on_an_existing_conversation_keeps_version_sla_and_timers(
    store: Store,
) -> None:
    first = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    other_sla = msgspec.structs.replace(SLA, policy="other")
    second = await ingest_one(
        store,
        routed(
            request("e2", MARIA, thread="t", sent_at=T0 + MINUTE),
            sla=other_sla,
            skills=["fr"],
            timers=[("breach", "first_response", T0 + 2 * HOUR)],
        ),
    )

    assert second.conversation_id == first.conversation_id
    assert not second.conversation_created
    assert not second.reopened
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert (conversation.version, conversation.sla, conversation.skills) == (1, SLA, [])
    assert conversation.message_count == 2
    assert await store.next_timer() is None


async def test_decision_score_orders_an_aging_item_first(store: Store) -> None:
    aged = urgency.score(T0 + 9 * HOUR, 5, queued_at=T0, max_wait_s=600)
    low = await ingest_one(
        store,
        routed(request("e1", MARIA, priority=5, deadline=T0 + 9 * HOUR), score=aged),
    )
    urgent = await ingest_one(
        store, request("e2", verified("phone", JOSE_PHONE), priority=1, deadline=T0 + HOUR)
    )
    assert (low.priority, low.deadline) == (5, T0 + 9 * HOUR)
    assert await claim(store) == [low.item_id, urgent.item_id]


async def test_join_keeps_the_more_urgent_score(store: Store) -> None:
    aged = urgency.score(T0 + 9 * HOUR, 5, queued_at=T0, max_wait_s=600)  # part: T0 + 10 min
    first = await ingest_one(
        store,
        routed(request("e1", MARIA, thread="t", priority=5, deadline=T0 + 9 * HOUR), score=aged),
    )
    joined = await ingest_one(
        store, request("e2", MARIA, thread="t", priority=1, deadline=T0 + HOUR, sent_at=T0)
    )
    between = await ingest_one(
        store, request("e3", verified("phone", JOSE_PHONE), priority=1, deadline=T0 + 20 * MINUTE)
    )
    # aging part (10 min) kept, priority 1 taken from the join: ahead of the 20-min item
    assert joined.item_id == first.item_id
    assert (joined.priority, joined.deadline) == (1, T0 + HOUR)
    assert await claim(store) == [first.item_id, between.item_id]


async def test_join_with_a_less_urgent_decision_score_keeps_the_item_score(store: Store) -> None:
    first = await ingest_one(
        store, request("e1", MARIA, thread="t", priority=2, deadline=T0 + 30 * MINUTE)
    )
    await ingest_one(
        store,
        routed(
            request("e2", MARIA, thread="t", priority=4, deadline=T0 + 5 * HOUR),
            score=urgency.score(T0 + 5 * HOUR, 4),
        ),
    )
    other = await ingest_one(
        store, request("e3", verified("phone", JOSE_PHONE), priority=1, deadline=T0 + HOUR)
    )
    assert await claim(store) == [first.item_id, other.item_id]


# --- update_conversation ----------------------------------------------------------------


async def test_update_is_a_compare_and_set(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA, thread="t", queue="sales", priority=3))
    change = ConversationUpdate(
        expected_version=1, state="pending", assignee="agent-7", at=T0 + MINUTE
    )

    after = await store.update_conversation(result.conversation_id, change)

    assert after.version == 2
    assert (after.state, after.assignee, after.updated_at) == ("pending", "agent-7", T0 + MINUTE)
    assert (after.queue, after.priority, after.deadline) == ("sales", 3, T0 + HOUR)
    assert after.sla is None
    assert await store.get_conversation(result.conversation_id) == after
    with pytest.raises(Conflict):
        await store.update_conversation(result.conversation_id, change)
    with pytest.raises(NotFound):
        await store.update_conversation("cnv_unknown", change)
    stored = await store.get_conversation(result.conversation_id)
    assert stored is not None
    assert stored.version == 2


async def test_update_sets_the_given_fields_and_keeps_the_others(store: Store) -> None:
    result = await ingest_one(store, routed(request("e1", MARIA), sla=SLA, tags=["vip"]))
    await update(store, result.conversation_id, assignee="agent-7")
    other_sla = msgspec.structs.replace(SLA, policy="gold")
    after = await store.update_conversation(
        result.conversation_id,
        ConversationUpdate(
            expected_version=2,
            state="resolved",
            queue="billing",
            priority=1,
            deadline=T0 + 2 * HOUR,
            resolved_at=T0 + HOUR,
            sla=other_sla,
            at=T0 + HOUR,
        ),
    )
    assert after.version == 3
    assert (after.state, after.queue, after.priority, after.deadline) == (
        "resolved",
        "billing",
        1,
        T0 + 2 * HOUR,
    )
    assert (after.resolved_at, after.sla, after.updated_at) == (T0 + HOUR, other_sla, T0 + HOUR)
    assert (after.assignee, after.tags, after.message_count) == ("agent-7", ["vip"], 1)

    cleared = await update(store, result.conversation_id, assignee=None, sla=None)
    assert (cleared.assignee, cleared.sla, cleared.state) == (None, None, "resolved")
    assert cleared.updated_at == T0 + HOUR  # no ``at``: updated_at stays


async def test_rescore_reorders_the_backlog(store: Store) -> None:
    later = await ingest_one(store, request("e1", MARIA, deadline=T0 + 2 * HOUR))
    sooner = await ingest_one(store, request("e2", verified("phone", JOSE_PHONE)))
    await update(
        store,
        later.conversation_id,
        item=ItemChange(priority=1, deadline=T0 + 30 * MINUTE),
        at=T0 + MINUTE,
    )
    claimed = await store.claim("default", 10, now=T0, lease_until=None, history_limit=1)
    assert [c.item.item_id for c in claimed] == [later.item_id, sooner.item_id]
    assert (claimed[0].item.priority, claimed[0].item.deadline) == (1, T0 + 30 * MINUTE)


async def test_rescore_never_lowers_urgency(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, priority=2, deadline=T0 + HOUR))
    second = await ingest_one(
        store, request("e2", verified("phone", JOSE_PHONE), priority=2, deadline=T0 + 90 * MINUTE)
    )
    await update(store, first.conversation_id, item=ItemChange(priority=5, deadline=T0 + 5 * HOUR))
    claimed = await store.claim("default", 10, now=T0, lease_until=None, history_limit=1)
    assert [c.item.item_id for c in claimed] == [first.item_id, second.item_id]
    assert (claimed[0].item.priority, claimed[0].item.deadline) == (5, T0 + 5 * HOUR)


async def test_withdraw_removes_the_item(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA, thread="t"))
    await update(store, result.conversation_id, item=ItemChange(also_offer="overflow"))
    after = await update(
        store,
        result.conversation_id,
        state="resolved",
        resolved_at=T0 + HOUR,
        item=ItemChange(withdraw=True),
    )
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation == after
    assert conversation is not None
    assert conversation.item_id is None
    assert await claim(store) == []
    assert await claim(store, "overflow") == []
    assert await depth(store) == 0


async def test_item_change_without_a_waiting_item_does_nothing(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA))
    await claim(store)
    after = await update(
        store,
        result.conversation_id,
        item=ItemChange(priority=1, deadline=T0, move_to="tier2", withdraw=False),
    )
    assert after.item_id is None
    assert await claim(store, "tier2") == []
    assert await claim(store) == []


async def test_move_to_moves_the_item_between_queues(store: Store) -> None:
    moved = await ingest_one(store, request("e1", MARIA, deadline=T0 + HOUR))
    there = await ingest_one(
        store, request("e2", verified("phone", JOSE_PHONE), queue="tier2", deadline=T0 + 2 * HOUR)
    )
    after = await update(store, moved.conversation_id, item=ItemChange(move_to="tier2"))
    assert after.item_id == moved.item_id
    assert await claim(store) == []
    assert await claimed_items(store, "tier2") == [
        (moved.item_id, "tier2"),
        (there.item_id, "tier2"),
    ]


async def test_also_offered_item_is_claimed_once_from_the_other_queue(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA))
    await update(store, result.conversation_id, item=ItemChange(also_offer="overflow"))
    assert await claimed_items(store, "overflow") == [(result.item_id, "overflow")]
    assert await claim(store) == []
    assert await claim(store, "overflow") == []


async def test_also_offered_item_is_claimed_once_from_its_own_queue(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA))
    other = await ingest_one(
        store, request("e2", verified("phone", JOSE_PHONE), queue="overflow", deadline=T0)
    )
    await update(store, result.conversation_id, item=ItemChange(also_offer="overflow"))
    assert await claimed_items(store) == [(result.item_id, "default")]
    assert await claim(store, "overflow") == [other.item_id]
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    assert conversation.item_id is None


async def test_create_item_when_none_waits_carries_the_newest_message(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, thread="t", priority=3))
    newest = request("e2", MARIA, thread="t", sent_at=T0 + MINUTE)
    await ingest_one(store, newest)
    await claim(store)

    after = await update(
        store,
        first.conversation_id,
        queue="billing",
        priority=2,
        deadline=T0 + 3 * HOUR,
        item=ItemChange(create_item_id="itm_transfer", reasons=[TRANSFER]),
        at=T0 + HOUR,
    )

    assert after.item_id == "itm_transfer"
    [claimed] = await store.claim("billing", 10, now=T0, lease_until=None, history_limit=1)
    item = claimed.item
    assert (item.item_id, item.conversation_id, item.queue) == (
        "itm_transfer",
        first.conversation_id,
        "billing",
    )
    assert (item.priority, item.deadline, item.created_at) == (2, T0 + 3 * HOUR, T0 + HOUR)
    assert item.message_id == newest.message_id
    assert claimed.message.message_id == newest.message_id
    assert item.reasons == [TRANSFER]


async def test_create_item_goes_to_move_to(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA))
    await claim(store)
    await update(
        store,
        result.conversation_id,
        item=ItemChange(create_item_id="itm_overflow", move_to="tier2"),
        at=T0 + MINUTE,
    )
    assert await claimed_items(store, "tier2") == [("itm_overflow", "tier2")]
    assert await claim(store) == []


async def test_reasons_are_appended_and_create_is_ignored_while_an_item_waits(
    store: Store,
) -> None:
    result = await ingest_one(store, routed(request("e1", MARIA), reasons=[RULE]))
    after = await update(
        store,
        result.conversation_id,
        item=ItemChange(create_item_id="itm_ignored", reasons=[TRANSFER]),
    )
    assert after.item_id == result.item_id
    [claimed] = await store.claim("default", 10, now=T0, lease_until=None, history_limit=1)
    assert claimed.item.item_id == result.item_id
    assert claimed.item.reasons == [RULE, TRANSFER]
    assert await depth(store) == 0


# --- timers -------------------------------------------------------------------------------


async def test_timers_arm_move_disarm_and_fire_in_order(store: Store) -> None:
    cid = (await ingest_one(store, request("e1", MARIA))).conversation_id
    t1 = timer(cid, "overflow", "itm_1", T0 + 10 * MINUTE)
    t2 = timer(cid, "warning", "first_response", T0 + 5 * MINUTE)
    t3 = timer(cid, "breach", "first_response", T0 + 20 * MINUTE)
    assert await store.next_timer() is None
    await update(store, cid, arm=[t1, t2, t3])
    assert await store.next_timer() == T0 + 5 * MINUTE

    moved = timer(cid, "overflow", "itm_1", T0 + 30 * MINUTE)
    await update(store, cid, arm=[moved])
    assert await store.fire_timers(T0 + 4 * MINUTE, 10) == []
    assert await store.fire_timers(T0 + 25 * MINUTE, 10) == [t2, t3]
    assert await store.fire_timers(T0 + 25 * MINUTE, 10) == []
    assert await store.next_timer() == T0 + 30 * MINUTE

    await update(store, cid, disarm=[moved.key, "cnv_x|sticky|nothing"])
    assert await store.next_timer() is None
    assert await store.fire_timers(T0 + 100 * HOUR, 10) == []


async def test_disarm_runs_before_arm(store: Store) -> None:
    cid = (await ingest_one(store, request("e1", MARIA))).conversation_id
    old = timer(cid, "breach", "resolution", T0 + HOUR)
    await update(store, cid, arm=[old])
    new = timer(cid, "breach", "resolution", T0 + 2 * HOUR)
    await update(store, cid, disarm=[old.key], arm=[new])
    assert await store.fire_timers(T0 + 3 * HOUR, 10) == [new]


async def test_fire_timers_respects_the_limit(store: Store) -> None:
    cid = (await ingest_one(store, request("e1", MARIA))).conversation_id
    armed = [timer(cid, "overflow", f"itm_{n}", T0 + (5 - n) * MINUTE) for n in range(5)]
    await update(store, cid, arm=armed)
    expected = sorted(armed, key=lambda t: t.at)
    assert await store.fire_timers(T0 + HOUR, 2) == expected[:2]
    assert await store.fire_timers(T0 + HOUR, 2) == expected[2:4]
    assert await store.fire_timers(T0 + HOUR, 2) == expected[4:]
    assert await store.fire_timers(T0 + HOUR, 2) == []


@pytest.fixture
async def twin(
    store: Store, tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[Store]:
    """A second store instance on the same data as ``store`` (another process's view)."""
    from router.backends.redis_store import RedisStore
    from router.backends.sqlite_store import SqliteStore

    other: Store
    if isinstance(store, SqliteStore):
        other = SqliteStore(tmp_path / "omniroute.sqlite3")
    else:
        assert isinstance(store, RedisStore)
        other = RedisStore(redis_url, prefix=redis_prefix)
    await other.open()
    yield other
    await other.close()


async def test_concurrent_firing_returns_each_timer_once(store: Store, twin: Store) -> None:
    armed: list[Timer] = []
    for n in range(4):
        result = await ingest_one(store, request(f"e{n}", verified("telegram", str(n))))
        mine = [
            timer(result.conversation_id, "overflow", f"itm_{k}", T0 + (k * 4 + n) * MINUTE)
            for k in range(10)
        ]
        await update(store, result.conversation_id, arm=mine)
        armed += mine
    late = timer(armed[0].conversation_id, "sticky", "later", T0 + 10 * HOUR)
    await update(store, late.conversation_id, arm=[late])

    batches = await asyncio.gather(
        drain(store, T0 + HOUR, 3),
        drain(twin, T0 + HOUR, 3),
        drain(store, T0 + HOUR, 5),
        drain(twin, T0 + HOUR, 2),
    )

    fired = [t for batch in batches for t in batch]
    assert len(fired) == len(armed)
    assert set(fired) == set(armed)
    for batch in batches:
        assert [t.at for t in batch] == sorted(t.at for t in batch)
    assert await twin.next_timer() == T0 + 10 * HOUR


# --- routing contexts ---------------------------------------------------------------------


async def test_contexts_find_the_customer_by_verified_identity_by_thread_or_not(
    store: Store,
) -> None:
    maria = await ingest_one(
        store, request("e1", MARIA, thread="t", customer_attributes={"tier": "gold"})
    )
    by_identity = request("x1", MARIA, customer_attributes={"tier": "ignored"}).message
    by_thread = request("x2", typed("email", "someone@example.com"), thread="t").message
    stranger = request("x3", verified("phone", JOSE_PHONE), thread="other").message

    contexts = await store.contexts([by_identity, by_thread, stranger], since=T0 - HOUR, limit=10)

    assert [c.customer_id for c in contexts] == [maria.customer_id, maria.customer_id, None]
    assert contexts[0].attributes == {"tier": "gold"}
    assert contexts[0].recent == [T0]
    assert contexts[2].attributes == {}
    assert contexts[2].recent == []
    assert (contexts[2].last_agent, contexts[2].last_agent_at) == (None, None)


async def ingest_as_contexts_said(store: Store, req: IngestRequest) -> IngestResult:
    """Read the routing context of ``req``'s message (with its reopen window), ingest it,
    and check that the context named the customer ingest picked (None: ingest made a new
    one)."""
    [context] = await store.contexts(
        [req.message], since=T0 - HOUR, limit=10, reopen_window_s=req.reopen_window_s
    )
    result = await ingest_one(store, req)
    assert context.customer_id == (None if result.new_customer else result.customer_id)
    return result


async def test_contexts_agree_with_ingest_on_a_shared_thread(store: Store) -> None:
    maria = await ingest_one(store, request("e1", verified("phone", MARIA_PHONE), thread="biz"))
    typed_only = request("e2", typed("email", "x@example.com"), thread="biz")
    stranger = request("e3", verified("phone", JOSE_PHONE), thread="biz")

    [for_typed, for_stranger] = await store.contexts(
        [typed_only.message, stranger.message], since=T0 - HOUR, limit=10
    )

    assert for_typed.customer_id == maria.customer_id
    assert for_stranger == RoutingContext()
    assert (await ingest_as_contexts_said(store, typed_only)).customer_id == maria.customer_id
    jose = await ingest_as_contexts_said(store, stranger)
    assert jose.new_customer
    again = await ingest_as_contexts_said(
        store, request("e4", verified("phone", JOSE_PHONE), thread="biz")
    )
    assert again.customer_id == jose.customer_id


async def test_contexts_name_the_oldest_owner_ingest_merges_into(store: Store) -> None:
    # The older customer has the larger id: created_at decides before the id.
    older = await ingest_one(
        store, request("e1", verified("phone", JOSE_PHONE), customer_id="cus_z")
    )
    await ingest_one(store, request("e2", MARIA, customer_id="cus_a", sent_at=T0 + MINUTE))
    both = request("e3", MARIA, verified("phone", JOSE_PHONE), sent_at=T0 + HOUR)

    result = await ingest_as_contexts_said(store, both)

    assert (result.customer_id, result.merged) == (older.customer_id, ["cus_a"])


async def test_contexts_recent_newest_first_since_and_limit(store: Store) -> None:
    for n in (0, 3, 1, 4, 2):
        await ingest_one(store, request(f"e{n}", MARIA, sent_at=T0 + n * MINUTE))
    message = request("x", MARIA).message
    [context] = await store.contexts([message], since=T0 + MINUTE, limit=3)
    assert context.recent == [T0 + 4 * MINUTE, T0 + 3 * MINUTE, T0 + 2 * MINUTE]
    [everything] = await store.contexts([message], since=T0, limit=10)
    assert everything.recent == [T0 + n * MINUTE for n in (4, 3, 2, 1, 0)]


async def test_served_by_is_the_last_agent(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA))
    message = request("x", MARIA).message
    await update(store, result.conversation_id, served_by="agent-7", at=T0 + MINUTE)
    [context] = await store.contexts([message], since=T0, limit=5)
    assert (context.last_agent, context.last_agent_at) == ("agent-7", T0 + MINUTE)

    await update(store, result.conversation_id, served_by="agent-9", at=T0 + HOUR)
    [context] = await store.contexts([message], since=T0, limit=5)
    assert (context.last_agent, context.last_agent_at) == ("agent-9", T0 + HOUR)


@pytest.mark.parametrize("newer_on", ["winner", "loser"])
async def test_merge_keeps_the_newer_served_by(store: Store, newer_on: str) -> None:
    winner = await ingest_one(store, request("e1", MARIA))
    loser = await ingest_one(store, request("e2", verified("phone", JOSE_PHONE)))
    first, second = (winner, loser) if newer_on == "loser" else (loser, winner)
    await update(store, first.conversation_id, served_by="agent-old", at=T0 + MINUTE)
    await update(store, second.conversation_id, served_by="agent-new", at=T0 + HOUR)

    await store.merge(winner.customer_id, loser.customer_id, at=T0 + 2 * HOUR, reason="api")

    [context] = await store.contexts(
        [request("x", verified("phone", JOSE_PHONE)).message], since=T0, limit=5
    )
    assert context.customer_id == winner.customer_id
    assert (context.last_agent, context.last_agent_at) == ("agent-new", T0 + HOUR)


# --- reopen ---------------------------------------------------------------------------------


async def _resolved(store: Store, *, at: datetime) -> str:
    """A conversation on thread ``t`` of Maria, claimed and resolved at ``at``."""
    result = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    await claim(store)
    await update(
        store,
        result.conversation_id,
        state="resolved",
        resolved_at=at,
        assignee="agent-7",
        item=ItemChange(withdraw=True),
        at=at,
    )
    return result.conversation_id


async def test_message_within_the_window_reopens(store: Store) -> None:
    cid = await _resolved(store, at=T0 + HOUR)
    req = routed(
        request(
            "e2",
            MARIA,
            thread="t",
            sent_at=T0 + 90 * MINUTE,
            queue="vip",
            priority=1,
            deadline=T0 + 2 * HOUR,
        ),
        reopen_window_s=3600,
    )
    result = await ingest_one(store, req)

    assert result.reopened
    assert not result.conversation_created
    assert result.conversation_id == cid
    assert result.item_id == req.new_item_id
    assert (result.queue, result.priority, result.deadline) == ("default", 1, T0 + 2 * HOUR)
    conversation = await store.get_conversation(cid)
    assert conversation is not None
    assert (conversation.state, conversation.resolved_at) == ("open", None)
    assert (conversation.message_count, conversation.version) == (2, 2)
    assert (conversation.queue, conversation.priority, conversation.deadline) == (
        "default",
        3,
        T0 + HOUR,
    )
    assert (conversation.item_id, conversation.assignee, conversation.sla) == (
        req.new_item_id,
        "agent-7",
        SLA,
    )
    assert await claimed_items(store) == [(req.new_item_id, "default")]


async def test_message_with_only_the_thread_reopens_within_the_window(store: Store) -> None:
    cid = await _resolved(store, at=T0 + HOUR)
    req = routed(
        request("e2", typed("email", "x@example.com"), thread="t", sent_at=T0 + 61 * MINUTE),
        reopen_window_s=600,
    )
    result = await ingest_one(store, req)
    assert (result.reopened, result.conversation_id, result.new_customer) == (True, cid, False)


@pytest.mark.parametrize(("after_resolved", "reopens"), [(9 * MINUTE, True), (11 * MINUTE, False)])
async def test_contexts_see_the_reopen_window(
    store: Store, after_resolved: timedelta, reopens: bool
) -> None:
    cid = await _resolved(store, at=T0 + HOUR)
    req = routed(
        request(
            "e2", typed("email", "x@example.com"), thread="t", sent_at=T0 + HOUR + after_resolved
        ),
        reopen_window_s=600,
    )
    [without_window] = await store.contexts([req.message], since=T0 - HOUR, limit=10)
    assert without_window == RoutingContext()

    result = await ingest_as_contexts_said(store, req)

    assert (result.reopened, result.new_customer) == (reopens, not reopens)
    assert (result.conversation_id == cid) is reopens


async def test_message_after_the_window_opens_a_linked_conversation(store: Store) -> None:
    cid = await _resolved(store, at=T0 + HOUR)
    req = routed(
        request("e2", MARIA, thread="t", sent_at=T0 + 2 * HOUR, queue="vip"),
        reopen_window_s=600,
    )
    result = await ingest_one(store, req)

    assert result.conversation_created
    assert not result.reopened
    assert result.conversation_id == req.new_conversation_id != cid
    fresh = await store.get_conversation(result.conversation_id)
    assert fresh is not None
    assert (fresh.previous_conversation_id, fresh.version, fresh.queue) == (cid, 1, "vip")
    old = await store.get_conversation(cid)
    assert old is not None
    assert (old.state, old.message_count) == ("resolved", 1)


async def test_without_a_window_a_resolved_conversation_is_not_reopened(store: Store) -> None:
    cid = await _resolved(store, at=T0 + HOUR)
    result = await ingest_one(store, request("e2", MARIA, thread="t", sent_at=T0 + HOUR))
    assert (result.reopened, result.conversation_created) == (False, True)
    fresh = await store.get_conversation(result.conversation_id)
    assert fresh is not None
    assert fresh.previous_conversation_id == cid
    follow_up = await ingest_one(store, request("e3", MARIA, thread="t", sent_at=T0 + 2 * HOUR))
    assert follow_up.conversation_id == result.conversation_id


# --- claim --------------------------------------------------------------------------------


async def test_claim_returns_the_conversation_with_its_routing_fields(store: Store) -> None:
    req = routed(request("e1", MARIA, thread="t"), sla=SLA, skills=["es"], tags=["vip"])
    result = await ingest_one(store, req)
    await update(store, result.conversation_id, assignee="agent-7")

    [claimed] = await store.claim("default", 5, now=T0, lease_until=None, history_limit=1)

    conversation = claimed.conversation
    assert conversation.conversation_id == result.conversation_id
    assert (conversation.sla, conversation.skills, conversation.tags) == (SLA, ["es"], ["vip"])
    assert (conversation.version, conversation.assignee, conversation.item_id) == (
        2,
        "agent-7",
        None,
    )
    assert conversation.awaiting_response
    stored = await store.get_conversation(result.conversation_id)
    assert stored is not None
    assert stored.item_id is None


# --- the awaiting_response hint and the state before a message --------------------------


def clocks_now(status: ClockStatus) -> ConversationSla:
    """``SLA`` with its first-response clock in ``status``."""
    [clock] = SLA.clocks
    return msgspec.structs.replace(SLA, clocks=[msgspec.structs.replace(clock, status=status)])


def test_sla_awaits_a_response_while_a_response_clock_runs() -> None:
    resolution = SlaClock(kind="resolution", target_s=86400, started_at=T0)
    assert SLA.awaiting_response
    assert not clocks_now("paused").awaiting_response  # the next message resumes it
    assert not clocks_now("met").awaiting_response
    assert not clocks_now("stopped").awaiting_response
    assert not msgspec.structs.replace(SLA, clocks=[resolution]).awaiting_response
    next_response = SlaClock(kind="next_response", target_s=60, started_at=T0)
    assert msgspec.structs.replace(SLA, clocks=[resolution, next_response]).awaiting_response


async def test_a_new_conversation_with_a_running_response_clock_awaits_a_response(
    store: Store,
) -> None:
    result = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))

    assert (result.previous_state, result.awaiting_response) == (None, True)
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    assert conversation.awaiting_response


async def test_a_new_conversation_without_sla_awaits_nothing(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA, thread="t"))

    assert (result.previous_state, result.awaiting_response) == (None, False)
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    assert not conversation.awaiting_response


async def test_the_hint_follows_every_write_of_sla_and_only_that(store: Store) -> None:
    cid = (
        await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    ).conversation_id

    met = await update(store, cid, sla=clocks_now("met"))
    assert not met.awaiting_response
    assert await hint(store, cid) is False
    assert not (await update(store, cid, assignee="agent-7")).awaiting_response
    assert (await update(store, cid, sla=clocks_now("running"))).awaiting_response
    assert await hint(store, cid) is True
    assert (await update(store, cid, state="pending", priority=2)).awaiting_response
    assert not (await update(store, cid, sla=clocks_now("paused"))).awaiting_response
    assert (await update(store, cid, sla=clocks_now("running"))).awaiting_response
    assert not (await update(store, cid, sla=None)).awaiting_response
    assert await hint(store, cid) is False


async def hint(store: Store, conversation_id: str) -> bool:
    conversation = await store.get_conversation(conversation_id)
    assert conversation is not None
    return conversation.awaiting_response


async def test_ingest_reports_the_state_before_the_message_and_the_hint(store: Store) -> None:
    first = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    cid = first.conversation_id

    on_open = await ingest_one(store, request("e2", MARIA, thread="t", sent_at=T0 + MINUTE))
    assert (on_open.conversation_id, on_open.previous_state) == (cid, "open")
    assert on_open.awaiting_response

    await update(store, cid, state="pending", sla=clocks_now("paused"))
    on_pending = await ingest_one(store, request("e3", MARIA, thread="t", sent_at=T0 + HOUR))
    assert (on_pending.previous_state, on_pending.awaiting_response) == ("pending", False)

    await update(store, cid, sla=clocks_now("met"))
    answered = await ingest_one(store, request("e4", MARIA, thread="t", sent_at=T0 + 2 * HOUR))
    assert (answered.previous_state, answered.awaiting_response) == ("open", False)

    again = await ingest_one(store, request("e4", MARIA, thread="t", sent_at=T0 + 2 * HOUR))
    assert again.duplicate
    assert (again.previous_state, again.awaiting_response) == (None, False)


async def test_a_reopening_message_reports_resolved(store: Store) -> None:
    first = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    await claim(store)
    resolved_at = T0 + HOUR
    await update(
        store,
        first.conversation_id,
        state="resolved",
        resolved_at=resolved_at,
        sla=clocks_now("stopped"),
        item=ItemChange(withdraw=True),
        at=resolved_at,
    )
    req = routed(request("e2", MARIA, thread="t", sent_at=T0 + 90 * MINUTE), reopen_window_s=3600)
    result = await ingest_one(store, req)

    assert result.reopened
    assert (result.previous_state, result.awaiting_response) == ("resolved", False)
    late = routed(request("e3", MARIA, thread="u", sent_at=T0 + 2 * HOUR), sla=SLA)
    fresh = await ingest_one(store, late)
    assert (fresh.conversation_created, fresh.previous_state) == (True, None)
