"""The ``Store`` contract for what real connectors need (``router/ports.py``): messages
routed nowhere (auto-replies, bounces), email threading by stored external ids
(``find_thread``) and a sender's edits (``edit_message``). Runs on every implementation
through the ``store`` fixture; times are fixed datetimes and nothing sleeps.

Readings of the protocol this suite pins down (both backends agree):

- A message routed nowhere joins the customer's conversation on its thread key as one
  more message: its state, ``updated_at``, version, routing and waiting item stay as
  they were, and it is never the message an item carries (a later ``create_item_id``
  carries the newest *routed* message). A new conversation it creates keeps the
  decision's queue, priority, deadline, skills and tags, and is resolved at
  ``received_at``.
- A repeat of a message routed nowhere is a duplicate reporting ``routed=False``, as the
  repeat's own kind says.
- A conversation a message routed nowhere created is ``recorded_only``. The first routed
  message on its thread key adopts it, within the reopen window or long after, whatever
  its state: it keeps its id, ``created_at`` and earlier messages, takes everything else
  a new conversation would have (the decision's timers are armed under its id), and its
  ``version`` moves on by one from wherever it was.
- ``contexts`` names the customer ingest picks for these messages too: the customer of
  a recorded-only conversation for a routed message with no verified identity, the
  thread's customer in any state for one routed nowhere; a verified identity nobody
  owns makes a new customer (an empty context) even for a bounce on a known thread.
- ``find_thread``: the first of the ids in the given order that is stored decides, even
  when its conversation has no thread (then None); ids of another source never match.
- ``edit_message`` returns the message with its live customer, like ``history``; edits
  racing on one message all land, each old text kept once as a revision.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec
import pytest

from router.errors import Conflict
from router.models import ConversationUpdate, IngestRequest, ItemChange, MessageKind, Revision
from router.ports import Store

from .test_store import (
    HOUR,
    JOSE_PHONE,
    MARIA_EMAIL,
    MINUTE,
    T0,
    claim,
    depth,
    full_history,
    ingest_one,
    request,
    verified,
)
from .test_store_routing import SLA, ingest_as_contexts_said, routed, update

MARIA = verified("email", MARIA_EMAIL)
DAY = 24 * HOUR
SECOND = timedelta(seconds=1)


def noise(req: IngestRequest, kind: MessageKind = "auto_reply") -> IngestRequest:
    """``req`` as an auto-reply (or a bounce): recorded, routed nowhere."""
    return msgspec.structs.replace(req, message=msgspec.structs.replace(req.message, kind=kind))


async def resolved_on_thread(store: Store, *, at: datetime) -> str:
    """Maria's conversation on thread ``t``, claimed and resolved at ``at``."""
    result = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    await claim(store)
    await update(
        store,
        result.conversation_id,
        state="resolved",
        resolved_at=at,
        item=ItemChange(withdraw=True),
        at=at,
    )
    return result.conversation_id


# --- messages routed nowhere --------------------------------------------------------------


async def test_auto_reply_on_an_open_conversation_is_recorded_and_changes_nothing(
    store: Store,
) -> None:
    first = await ingest_one(store, routed(request("e1", MARIA, thread="t"), sla=SLA))
    before = await store.get_conversation(first.conversation_id)
    req = noise(
        routed(
            request("e2", MARIA, thread="t", sent_at=T0 + MINUTE, queue="vip", priority=1),
            timers=[("breach", "first_response", T0 + 2 * HOUR)],
        )
    )

    result = await ingest_one(store, req)

    assert (result.routed, result.item_id, result.duplicate) == (False, None, False)
    assert (result.conversation_id, result.customer_id) == (
        first.conversation_id,
        first.customer_id,
    )
    assert (result.conversation_created, result.reopened, result.previous_state) == (
        False,
        False,
        "open",
    )
    assert (result.queue, result.priority, result.deadline) == ("default", 3, T0 + HOUR)
    after = await store.get_conversation(first.conversation_id)
    assert before is not None
    assert after is not None
    assert after == msgspec.structs.replace(before, message_count=2)
    assert await depth(store, "vip") == 0
    assert await store.next_timer() is None
    [claimed] = await store.claim("default", 5, now=T0, lease_until=None, history_limit=5)
    assert claimed.item.item_id == first.item_id
    assert claimed.message.external_id == "e1"
    assert [(m.external_id, m.kind) for m in claimed.history] == [
        ("e2", "auto_reply"),
        ("e1", "message"),
    ]


async def test_bounce_on_a_pending_conversation_leaves_it_pending(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, thread="t"))
    await claim(store)
    await update(store, first.conversation_id, state="pending", at=T0 + MINUTE)

    result = await ingest_one(store, noise(request("e2", thread="t"), "bounce"))

    assert (result.conversation_id, result.customer_id) == (
        first.conversation_id,
        first.customer_id,
    )
    assert (result.routed, result.item_id, result.previous_state) == (False, None, "pending")
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert (conversation.state, conversation.item_id, conversation.message_count) == (
        "pending",
        None,
        2,
    )
    assert await depth(store) == 0


async def test_auto_reply_without_a_conversation_creates_a_resolved_one(store: Store) -> None:
    req = noise(
        routed(
            request("e1", MARIA, thread="t", queue="sales", priority=2),
            sla=SLA,
            skills=["es"],
            tags=["ooo"],
            timers=[("breach", "first_response", T0 + HOUR)],
        )
    )

    result = await ingest_one(store, req)

    assert (result.routed, result.item_id, result.new_customer) == (False, None, True)
    assert (result.conversation_created, result.previous_state) == (True, None)
    assert result.conversation_id == req.new_conversation_id
    assert (result.queue, result.priority, result.deadline) == ("sales", 2, T0 + HOUR)
    assert not result.awaiting_response
    conversation = await store.get_conversation(result.conversation_id)
    assert conversation is not None
    received = req.message.received_at
    assert (conversation.state, conversation.resolved_at, conversation.item_id) == (
        "resolved",
        received,
        None,
    )
    assert (conversation.queue, conversation.priority, conversation.deadline) == (
        "sales",
        2,
        T0 + HOUR,
    )
    assert (conversation.sla, conversation.skills, conversation.tags) == (None, ["es"], ["ooo"])
    assert (conversation.version, conversation.message_count, conversation.thread) == (1, 1, "t")
    assert conversation.recorded_only
    assert await store.backlog_stats() == {}
    assert await store.next_timer() is None
    assert await store.find_customer(f"email:{MARIA_EMAIL}") == result.customer_id
    [stored] = await full_history(store, result.customer_id)
    assert (stored.message_id, stored.kind, stored.conversation_id) == (
        req.message_id,
        "auto_reply",
        result.conversation_id,
    )


async def test_bounce_without_identities_joins_the_resolved_conversation_of_its_thread(
    store: Store,
) -> None:
    cid = await resolved_on_thread(store, at=T0 + HOUR)
    before = await store.get_conversation(cid)
    req = msgspec.structs.replace(
        noise(request("bounce-1", thread="t", sent_at=T0 + DAY), "bounce"), reopen_window_s=3600
    )

    result = await ingest_one(store, req)

    assert before is not None
    assert (result.conversation_id, result.customer_id, result.new_customer) == (
        cid,
        before.customer_id,
        False,
    )
    assert (result.routed, result.reopened, result.previous_state) == (False, False, "resolved")
    assert await store.get_conversation(cid) == msgspec.structs.replace(before, message_count=2)
    assert await depth(store) == 0
    kinds = [(m.external_id, m.kind) for m in await full_history(store, before.customer_id)]
    assert kinds == [("bounce-1", "bounce"), ("e1", "message")]


async def test_bounce_within_the_reopen_window_does_not_reopen(store: Store) -> None:
    cid = await resolved_on_thread(store, at=T0 + HOUR)
    req = noise(request("b1", thread="t", sent_at=T0 + HOUR), "bounce")
    req = msgspec.structs.replace(req, reopen_window_s=DAY.total_seconds())

    result = await ingest_one(store, req)

    assert (result.conversation_id, result.reopened, result.item_id) == (cid, False, None)
    conversation = await store.get_conversation(cid)
    assert conversation is not None
    assert (conversation.state, conversation.resolved_at) == ("resolved", T0 + HOUR)


async def test_bounce_with_an_unknown_thread_makes_its_own_customer(store: Store) -> None:
    await resolved_on_thread(store, at=T0 + HOUR)
    req = noise(request("b1", thread="other", sent_at=T0 + 2 * HOUR), "bounce")

    result = await ingest_one(store, req)

    assert (result.new_customer, result.customer_id) == (True, req.new_customer_id)
    assert result.conversation_created


async def test_routed_message_adopts_the_conversation_an_auto_reply_created(
    store: Store,
) -> None:
    first = await ingest_one(store, noise(request("e1", MARIA, thread="t", queue="sales")))
    second = request(
        "e2", MARIA, thread="t", sent_at=T0 + MINUTE, queue="vip", priority=1, deadline=T0 + HOUR
    )
    req = routed(
        second,
        sla=SLA,
        skills=["es"],
        tags=["vip"],
        timers=[
            ("warning", "first_response", T0 + 45 * MINUTE),
            ("overflow", second.new_item_id, T0 + HOUR),
        ],
        reopen_window_s=3600,
    )

    result = await ingest_one(store, req)

    assert (result.conversation_id, result.customer_id) == (
        first.conversation_id,
        first.customer_id,
    )
    assert (result.routed, result.conversation_created, result.reopened) == (True, True, False)
    assert (result.previous_state, result.item_id, result.new_customer) == (
        None,
        req.new_item_id,
        False,
    )
    assert (result.queue, result.priority, result.deadline) == ("vip", 1, T0 + HOUR)
    assert result.awaiting_response
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert (conversation.state, conversation.resolved_at, conversation.recorded_only) == (
        "open",
        None,
        False,
    )
    assert (conversation.queue, conversation.priority, conversation.deadline) == (
        "vip",
        1,
        T0 + HOUR,
    )
    assert (conversation.sla, conversation.skills, conversation.tags) == (SLA, ["es"], ["vip"])
    assert (conversation.item_id, conversation.message_count, conversation.version) == (
        req.new_item_id,
        2,
        2,
    )
    assert conversation.awaiting_response
    assert (conversation.created_at, conversation.updated_at) == (
        T0 + SECOND,
        T0 + MINUTE + SECOND,
    )
    fired = await store.fire_timers(T0 + DAY, 10)
    assert [(t.conversation_id, t.kind, t.ref, t.at) for t in fired] == [
        (first.conversation_id, "warning", "first_response", T0 + 45 * MINUTE),
        (first.conversation_id, "overflow", req.new_item_id, T0 + HOUR),
    ]
    assert await store.get_conversation(req.new_conversation_id) is None
    [claimed] = await store.claim("vip", 5, now=T0, lease_until=None, history_limit=5)
    assert (claimed.item.item_id, claimed.message.external_id) == (req.new_item_id, "e2")
    assert [(m.external_id, m.kind) for m in claimed.history] == [
        ("e2", "message"),
        ("e1", "auto_reply"),
    ]


async def test_an_auto_reply_created_conversation_is_adopted_long_after(store: Store) -> None:
    first = await ingest_one(store, noise(request("e1", MARIA, thread="t")))
    await ingest_one(store, noise(request("e2", thread="t", sent_at=T0 + MINUTE), "bounce"))
    recorded = await store.get_conversation(first.conversation_id)
    assert recorded is not None
    assert (recorded.recorded_only, recorded.message_count, recorded.state) == (
        True,
        2,
        "resolved",
    )
    req = routed(request("e3", thread="t", sent_at=T0 + DAY), sla=SLA, reopen_window_s=3600)

    result = await ingest_one(store, req)

    assert (result.conversation_id, result.customer_id, result.new_customer) == (
        first.conversation_id,
        first.customer_id,
        False,
    )
    assert (result.conversation_created, result.reopened, result.item_id) == (
        True,
        False,
        req.new_item_id,
    )
    adopted = await store.get_conversation(first.conversation_id)
    assert adopted is not None
    assert (adopted.state, adopted.sla, adopted.message_count) == ("open", SLA, 3)
    assert (adopted.recorded_only, adopted.previous_conversation_id) == (False, None)
    assert await depth(store) == 1


async def test_adopting_moves_the_version_and_a_later_auto_reply_changes_nothing(
    store: Store,
) -> None:
    first = await ingest_one(store, noise(request("e1", MARIA, thread="t")))
    reopened = await update(
        store, first.conversation_id, state="open", resolved_at=None, at=T0 + MINUTE
    )
    assert (reopened.version, reopened.recorded_only) == (2, True)
    stale = ConversationUpdate(expected_version=reopened.version, state="pending")

    result = await ingest_one(
        store, routed(request("e2", MARIA, thread="t", sent_at=T0 + 2 * MINUTE), sla=SLA)
    )

    assert result.conversation_created
    with pytest.raises(Conflict):
        await store.update_conversation(first.conversation_id, stale)
    adopted = await store.get_conversation(first.conversation_id)
    assert adopted is not None
    assert (adopted.version, adopted.state, adopted.recorded_only) == (3, "open", False)
    await ingest_one(store, noise(request("e3", MARIA, thread="t", sent_at=T0 + 3 * MINUTE)))
    after = await store.get_conversation(first.conversation_id)
    assert after == msgspec.structs.replace(adopted, message_count=3)
    again = await ingest_one(store, request("e4", MARIA, thread="t", sent_at=T0 + 4 * MINUTE))
    assert (again.conversation_created, again.item_id) == (False, result.item_id)


async def test_contexts_agree_with_ingest_on_an_adopted_conversation(store: Store) -> None:
    first = await ingest_one(store, noise(request("e1", MARIA, thread="t")))
    adopting = routed(request("e2", thread="t", sent_at=T0 + DAY), sla=SLA, reopen_window_s=3600)
    stranger = noise(request("b1", verified("phone", JOSE_PHONE), thread="t"), "bounce")

    result = await ingest_as_contexts_said(store, adopting)
    bounced = await ingest_as_contexts_said(store, stranger)

    assert bounced.new_customer  # a verified identity is never attached through a thread
    assert (result.customer_id, result.conversation_id) == (
        first.customer_id,
        first.conversation_id,
    )


async def test_contexts_agree_with_ingest_on_a_long_resolved_thread(store: Store) -> None:
    cid = await resolved_on_thread(store, at=T0 + HOUR)
    conversation = await store.get_conversation(cid)
    assert conversation is not None
    bounce = noise(request("b1", thread="t", sent_at=T0 + DAY), "bounce")
    late = request("e2", thread="t", sent_at=T0 + DAY)  # routed, past the (no) window

    bounced = await ingest_as_contexts_said(store, bounce)
    result = await ingest_as_contexts_said(store, late)

    assert (bounced.customer_id, bounced.conversation_id) == (conversation.customer_id, cid)
    assert result.new_customer


async def test_routed_message_after_an_auto_reply_joins_the_waiting_item(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, thread="t"))
    await ingest_one(store, noise(request("e2", MARIA, thread="t", sent_at=T0 + MINUTE)))

    third = await ingest_one(store, request("e3", MARIA, thread="t", sent_at=T0 + 2 * MINUTE))

    assert (third.item_id, third.previous_state) == (first.item_id, "open")
    [claimed] = await store.claim("default", 5, now=T0, lease_until=None, history_limit=5)
    assert claimed.message.external_id == "e3"
    assert [m.external_id for m in claimed.history] == ["e3", "e2", "e1"]


async def test_a_created_item_carries_the_newest_routed_message(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, thread="t"))
    await claim(store)
    await ingest_one(store, noise(request("e2", MARIA, thread="t", sent_at=T0 + MINUTE)))

    await update(store, first.conversation_id, item=ItemChange(create_item_id="itm_again"))

    [claimed] = await store.claim("default", 5, now=T0, lease_until=None, history_limit=5)
    assert (claimed.item.item_id, claimed.message.external_id) == ("itm_again", "e1")


async def test_a_repeated_auto_reply_is_a_duplicate_routed_nowhere(store: Store) -> None:
    first = await ingest_one(store, request("e1", MARIA, thread="t"))
    req = noise(request("e2", MARIA, thread="t", sent_at=T0 + MINUTE))
    once = await ingest_one(store, req)

    again = await ingest_one(store, noise(request("e2", MARIA, thread="t", sent_at=T0 + MINUTE)))

    assert (again.duplicate, again.routed, again.item_id) == (True, False, None)
    assert (again.message_id, again.conversation_id) == (once.message_id, first.conversation_id)
    conversation = await store.get_conversation(first.conversation_id)
    assert conversation is not None
    assert conversation.message_count == 2
    assert [m.external_id for m in await full_history(store, first.customer_id)] == ["e2", "e1"]


# --- find_thread ----------------------------------------------------------------------------


async def test_find_thread_takes_the_first_stored_id_in_the_given_order(store: Store) -> None:
    await ingest_one(store, request("<a@x>", MARIA, source="mail", thread="root-a"))
    await ingest_one(store, request("<b@x>", MARIA, source="mail", thread="root-b"))

    assert await store.find_thread("mail", ["<b@x>", "<a@x>"]) == "root-b"
    assert await store.find_thread("mail", ["<gone@x>", "<a@x>", "<b@x>"]) == "root-a"


async def test_find_thread_misses(store: Store) -> None:
    await ingest_one(store, request("<a@x>", MARIA, source="mail", thread="root-a"))
    await ingest_one(store, request("<n@x>", MARIA, source="mail"))

    assert await store.find_thread("mail", []) is None
    assert await store.find_thread("mail", ["<gone@x>"]) is None
    assert await store.find_thread("other-mail", ["<a@x>"]) is None
    assert await store.find_thread("mail", ["<n@x>", "<a@x>"]) is None


async def test_find_thread_follows_a_message_into_a_conversation_it_joined(store: Store) -> None:
    await ingest_one(store, request("<a@x>", MARIA, source="mail", thread="root"))
    await ingest_one(store, noise(request("<ooo@x>", MARIA, source="mail", thread="root")))

    assert await store.find_thread("mail", ["<ooo@x>"]) == "root"


# --- edit_message ---------------------------------------------------------------------------


async def test_edit_replaces_the_text_and_keeps_the_old_one(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA, text="helo"))

    edited = await store.edit_message("webchat", "e1", text="hello", edited_at=T0 + MINUTE)

    assert edited is not None
    assert (edited.message_id, edited.customer_id) == (result.message_id, result.customer_id)
    assert (edited.text, edited.edited_at) == ("hello", T0 + MINUTE)
    assert edited.revisions == [Revision(text="helo", replaced_at=T0 + MINUTE)]
    [stored] = await full_history(store, result.customer_id)
    assert stored == edited


async def test_edits_pile_up_and_a_redelivered_edit_changes_nothing(store: Store) -> None:
    await ingest_one(store, request("e1", MARIA, text="one"))
    await store.edit_message("webchat", "e1", text="two", edited_at=T0 + MINUTE)
    twice = await store.edit_message("webchat", "e1", text="three", edited_at=T0 + 2 * MINUTE)

    again = await store.edit_message("webchat", "e1", text="three", edited_at=T0 + 3 * MINUTE)

    assert again == twice
    assert again is not None
    assert (again.text, again.edited_at) == ("three", T0 + 2 * MINUTE)
    assert again.revisions == [
        Revision(text="one", replaced_at=T0 + MINUTE),
        Revision(text="two", replaced_at=T0 + 2 * MINUTE),
    ]


async def test_a_late_retry_of_an_older_edit_changes_nothing(store: Store) -> None:
    await ingest_one(store, request("e1", MARIA, text="one"))
    await store.edit_message("webchat", "e1", text="two", edited_at=T0 + MINUTE)
    latest = await store.edit_message("webchat", "e1", text="three", edited_at=T0 + 2 * MINUTE)

    late = await store.edit_message("webchat", "e1", text="two", edited_at=T0 + MINUTE)

    assert late == latest
    assert late is not None
    assert late.text == "three"


async def test_edit_of_an_unknown_message_is_none(store: Store) -> None:
    await ingest_one(store, request("e1", MARIA))

    assert await store.edit_message("webchat", "e2", text="x", edited_at=T0) is None
    assert await store.edit_message("sms", "e1", text="x", edited_at=T0) is None


async def test_a_claimed_item_shows_the_edited_text(store: Store) -> None:
    await ingest_one(store, request("e1", MARIA, thread="t", text="first"))
    await ingest_one(store, request("e2", MARIA, thread="t", sent_at=T0 + MINUTE, text="typo"))
    await store.edit_message("webchat", "e1", text="first!", edited_at=T0 + 2 * MINUTE)
    await store.edit_message("webchat", "e2", text="fixed", edited_at=T0 + 2 * MINUTE)

    [claimed] = await store.claim("default", 5, now=T0, lease_until=None, history_limit=1)

    assert (claimed.message.text, claimed.message.edited_at) == ("fixed", T0 + 2 * MINUTE)
    [newest] = claimed.history
    assert newest.text == "fixed"
    [_, older] = await full_history(store, claimed.customer.customer_id)
    assert (older.text, [r.text for r in older.revisions]) == ("first!", ["first"])


async def test_an_edit_after_a_merge_names_the_live_customer(store: Store) -> None:
    loser = await ingest_one(store, request("e1", verified("sms", "+14155550100")))
    winner = await ingest_one(store, request("e2", MARIA))
    await store.merge(winner.customer_id, loser.customer_id, at=T0 + HOUR, reason="api")

    edited = await store.edit_message("webchat", "e1", text="edited", edited_at=T0 + HOUR)

    assert edited is not None
    assert edited.customer_id == winner.customer_id


async def test_racing_edits_all_land(store: Store) -> None:
    result = await ingest_one(store, request("e1", MARIA, text="v0"))
    texts = [f"v{n}" for n in range(1, 11)]

    await asyncio.gather(
        *(store.edit_message("webchat", "e1", text=t, edited_at=T0 + HOUR) for t in texts)
    )

    [stored] = await full_history(store, result.customer_id)
    seen = [r.text for r in stored.revisions] + [stored.text]
    assert sorted(seen) == sorted(["v0", *texts])
