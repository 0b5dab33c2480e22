"""The conversation lifecycle: every agent event (and its 409s), customer messages,
SLA and overflow/sticky timers, the opening of a new conversation, and a property test
that any sequence keeps the clocks and their timers consistent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from router import lifecycle, sla
from router.calendars import ALWAYS, Calendar
from router.errors import Conflict, InvalidMessage, NotFound
from router.lifecycle import AgentEvent, LifecycleConfig, Outcome
from router.models import Conversation, ConversationUpdate, ItemChange, Reason, Timer
from router.queue_spec import OverflowSpec, QueueSpec

MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
FRI = datetime(2026, 1, 9, tzinfo=UTC)
H = 3600
OFFICE = Calendar("office", tz=ZoneInfo("UTC"), week=[[(9 * 60, 17 * 60)]] * 5 + [[], []])

POLICIES, _ = sla.parse_policies(
    {
        "standard": {
            "targets": [{"first_response": "1h", "next_response": "30m", "resolution": "8h"}]
        },
        "office": {"targets": [{"first_response": "4h", "resolution": "2d"}]},
    },
    default_first_response_s=H,
)
QUEUES = {
    "support": QueueSpec(
        name="support", sla="standard", overflow=OverflowSpec(to="tier2", after_s=600)
    ),
    "tier2": QueueSpec(
        name="tier2", overflow=OverflowSpec(to="managers", at="breach", mode="also")
    ),
    "billing": QueueSpec(name="billing", overflow=OverflowSpec(to="support", at="warning")),
    "managers": QueueSpec(name="managers", overflow=OverflowSpec(to="support", after_s=300)),
    "backoffice": QueueSpec(name="backoffice", calendar="office", sla="office"),
}
CFG = LifecycleConfig(
    queues=QUEUES,
    calendars={"always": ALWAYS, "office": OFFICE},
    policies=POLICIES,
    reopen_window_s=7 * 86400,
)


def opened(
    queue: str = "support",
    *,
    at: datetime = MON,
    item_id: str | None = "itm_1",
    priority: int = 3,
    **fields: Any,
) -> Conversation:
    """A conversation as the store keeps it after the message that opened it."""
    opening = lifecycle.initial(
        CFG,
        policy=None,
        priority=priority,
        channel="chat",
        queue=queue,
        received_at=at,
        conversation_id="cnv_1",
        item_id=item_id or "itm_0",
    )
    conv = Conversation(
        conversation_id="cnv_1",
        customer_id="cus_1",
        channel="chat",
        source="web",
        queue=queue,
        priority=priority,
        deadline=opening.deadline or at,
        created_at=at,
        updated_at=at,
        version=1,
        item_id=item_id,
        sla=opening.sla,
    )
    return replace(conv, **fields)


def apply(conv: Conversation, update: ConversationUpdate | None) -> Conversation:
    """What the store does with an update (the conversation's side of it)."""
    if update is None:
        return conv
    assert update.expected_version == conv.version
    changes = {
        f: getattr(update, f)
        for f in ("state", "queue", "priority", "deadline", "assignee", "resolved_at", "sla")
        if getattr(update, f) is not msgspec.UNSET
    }
    item = update.item
    if item is not None and item.withdraw:
        changes["item_id"] = None
    if item is not None and item.create_item_id and conv.item_id is None:
        changes["item_id"] = item.create_item_id
    return replace(conv, version=conv.version + 1, updated_at=update.at, **changes)


def event(kind: str, queue: str | None = None) -> AgentEvent:
    return AgentEvent(type=kind, agent_id="ana", queue=queue)  # type: ignore[arg-type]


def act(conv: Conversation, kind: str, now: datetime, queue: str | None = None) -> Outcome:
    return lifecycle.on_event(conv, event(kind, queue), CFG, now, new_item_id="itm_new")


def clock(conv: Conversation, kind: str) -> sla.SlaClock:
    found = sla.find(conv.sla, kind)
    assert found is not None
    return found


def keys(timers: list[Timer]) -> set[str]:
    return {t.key for t in timers}


# --- a new conversation ---------------------------------------------------------------


def test_initial_uses_the_queue_policy_calendar_and_overflow() -> None:
    opening = lifecycle.initial(
        CFG,
        policy=None,
        priority=3,
        channel="chat",
        queue="support",
        received_at=MON,
        conversation_id="c",
        item_id="i",
    )
    assert opening.sla.policy == "standard"
    assert opening.sla.calendar == "always"
    assert opening.deadline == MON + timedelta(hours=1)
    assert {(t.kind, t.ref, t.at) for t in opening.timers} == {
        ("warning", "first_response", MON + timedelta(minutes=45)),
        ("breach", "first_response", MON + timedelta(hours=1)),
        ("warning", "resolution", MON + timedelta(hours=6)),
        ("breach", "resolution", MON + timedelta(hours=8)),
        ("overflow", "i", MON + timedelta(minutes=10)),
    }
    assert opening.reason == Reason(
        kind="sla",
        name="standard",
        decided={"first_response_s": 3600, "next_response_s": 1800, "resolution_s": 28800},
    )


def test_initial_policy_by_name_else_default_and_business_calendar() -> None:
    named = lifecycle.initial(
        CFG, policy="office", priority=3, channel="email", queue="billing",
        received_at=MON, conversation_id="c", item_id="i",
    )  # fmt: skip
    assert (named.sla.policy, named.sla.calendar) == ("office", "always")
    default = lifecycle.initial(
        CFG, policy=None, priority=3, channel="email", queue="billing",
        received_at=MON, conversation_id="c", item_id="i",
    )  # fmt: skip
    assert default.sla.policy == "default"
    assert [c.kind for c in default.sla.clocks] == ["first_response"]
    office = lifecycle.initial(
        CFG, policy=None, priority=3, channel="email", queue="backoffice",
        received_at=FRI + timedelta(hours=15), conversation_id="c", item_id="i",
    )  # fmt: skip
    assert office.sla.calendar == "office"
    assert office.deadline == FRI + timedelta(days=3, hours=11)  # Monday 11:00


def test_initial_sticky_offer_follows_the_team_queue() -> None:
    opening = lifecycle.initial(
        CFG, policy=None, priority=3, channel="chat", queue="agent.ana",
        received_at=MON, conversation_id="c", item_id="i", team_queue="support",
    )  # fmt: skip
    assert opening.sla.policy == "standard"
    sticky = [t for t in opening.timers if t.kind == "sticky"]
    assert sticky == [
        Timer(conversation_id="c", kind="sticky", ref="i@support", at=MON + timedelta(minutes=2))
    ]
    assert not [t for t in opening.timers if t.kind == "overflow"]  # no spec for agent.ana
    assert lifecycle.parse_sticky_ref("i@support") == ("i", "support")


# --- agent events ---------------------------------------------------------------------


def test_accepted_assigns_without_touching_clocks() -> None:
    conv = opened()
    out = act(conv, "accepted", MON + timedelta(minutes=5))
    assert out.update == ConversationUpdate(
        expected_version=1, assignee="ana", served_by="ana", at=MON + timedelta(minutes=5)
    )
    [ev] = out.events
    assert ev.routing_key == "conversation.accepted"
    assert (ev.payload.agent_id, ev.payload.queue, ev.payload.conversation_id) == (
        "ana", "support", "cnv_1",
    )  # fmt: skip
    decoded = msgspec.json.decode(msgspec.json.encode(ev))
    assert decoded["payload"]["customer_id"] == "cus_1"
    assert "clock" not in decoded["payload"]


@pytest.mark.parametrize("kind", ["accepted", "replied", "pending", "resolved", "transferred"])
def test_a_resolved_conversation_refuses_everything_but_reopen(kind: str) -> None:
    conv = opened(state="resolved", resolved_at=MON)
    with pytest.raises(Conflict):
        act(conv, kind, MON + timedelta(hours=1), queue="billing")


def test_replied_meets_the_response_clock() -> None:
    conv = opened()
    now = MON + timedelta(minutes=20)
    update = act(conv, "replied", now).update
    assert update is not None
    assert (update.assignee, update.served_by) == ("ana", "ana")
    assert isinstance(update.sla, sla.ConversationSla)
    assert clock(apply(conv, update), "first_response").status == "met"
    assert update.deadline == MON + timedelta(hours=8)  # the resolution clock now leads
    assert update.disarm == sla.all_clock_timer_keys("cnv_1")
    assert {(t.kind, t.ref) for t in update.arm} == {
        ("warning", "resolution"),
        ("breach", "resolution"),
    }


def test_a_second_reply_changes_no_clock() -> None:
    conv = apply(opened(), act(opened(), "replied", MON).update)
    update = act(conv, "replied", MON + timedelta(minutes=1)).update
    assert update is not None
    assert update.sla is msgspec.UNSET
    assert update.arm == []


def test_pending_pauses_and_refuses_twice() -> None:
    conv = opened()
    update = act(conv, "pending", MON + timedelta(minutes=15)).update
    assert update is not None
    assert update.state == "pending"
    after = apply(conv, update)
    assert {c.status for c in after.sla.clocks} == {"paused"}  # type: ignore[union-attr]
    assert update.arm == []
    assert update.deadline is msgspec.UNSET
    with pytest.raises(Conflict, match="already pending"):
        act(after, "pending", MON + timedelta(minutes=16))


def test_resolved_stops_clocks_withdraws_the_item_and_disarms_everything() -> None:
    conv = opened()
    now = MON + timedelta(hours=2)
    update = act(conv, "resolved", now).update
    assert update is not None
    assert (update.state, update.resolved_at) == ("resolved", now)
    assert update.item == ItemChange(withdraw=True)
    assert set(update.disarm) == {*sla.all_clock_timer_keys("cnv_1"), "cnv_1|overflow|itm_1"}
    assert update.arm == []
    after = apply(conv, update)
    assert clock(after, "first_response").status == "stopped"
    res = clock(after, "resolution")
    assert (res.status, res.remaining_s) == ("met", 6 * H)
    with pytest.raises(Conflict, match="already resolved"):
        act(after, "resolved", now)


def test_reopened_resumes_the_resolution_clock_within_the_window() -> None:
    conv = apply(opened(), act(opened(), "resolved", MON + timedelta(hours=2)).update)
    now = MON + timedelta(days=1)
    update = act(conv, "reopened", now).update
    assert update is not None
    assert (update.state, update.resolved_at) == ("open", None)
    res = clock(apply(conv, update), "resolution")
    assert (res.status, res.due) == ("running", now + timedelta(hours=6))
    assert update.deadline == now + timedelta(hours=6)
    assert {(t.kind, t.ref) for t in update.arm} == {
        ("warning", "resolution"),
        ("breach", "resolution"),
    }
    with pytest.raises(Conflict, match="reopen window"):
        act(conv, "reopened", MON + timedelta(days=8))
    with pytest.raises(Conflict, match="only a resolved"):
        act(opened(), "reopened", now)


def test_transfer_moves_the_waiting_item_and_arms_the_new_queue_overflow() -> None:
    conv = opened("billing", assignee="bob")
    now = MON + timedelta(minutes=5)
    out = act(conv, "transferred", now, queue="managers")
    update = out.update
    assert update is not None
    assert (update.queue, update.assignee) == ("managers", None)
    assert update.item == ItemChange(
        move_to="managers",
        reasons=[Reason(kind="transfer", name="ana", decided={"queue": "managers"})],
    )
    assert update.disarm == ["cnv_1|overflow|itm_1"]
    assert update.arm == [
        Timer(conversation_id="cnv_1", kind="overflow", ref="itm_1", at=now + timedelta(minutes=5))
    ]
    [ev] = out.events
    assert ev.routing_key == "conversation.transferred"
    assert (ev.payload.from_queue, ev.payload.to_queue) == ("billing", "managers")


def test_transfer_without_a_waiting_item_queues_a_new_one() -> None:
    update = act(opened(item_id=None), "transferred", MON, queue="billing").update
    assert update is not None
    assert update.item is not None
    assert (update.item.create_item_id, update.item.move_to) == ("itm_new", "billing")
    assert update.arm == []  # billing overflows at the warning, not after a wait


def test_transfer_needs_a_known_other_queue() -> None:
    conv = opened()
    with pytest.raises(InvalidMessage):
        act(conv, "transferred", MON)
    with pytest.raises(NotFound):
        act(conv, "transferred", MON, queue="nowhere")
    with pytest.raises(Conflict, match="already in queue support"):
        act(conv, "transferred", MON, queue="support")


def test_agent_event_validation() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "accepted", "agent_id": ""}', type=AgentEvent)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "x", "agent_id": "a"}', type=AgentEvent)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "accepted", "agent_id": "a", "z": 1}', type=AgentEvent)


# --- customer messages ----------------------------------------------------------------


def test_a_message_while_the_first_response_is_owed_changes_nothing() -> None:
    out = lifecycle.on_customer_message(opened(), CFG, MON + timedelta(minutes=5), reopened=False)
    assert out == Outcome(None, [])


def test_a_message_after_the_reply_starts_the_next_response_clock() -> None:
    conv = apply(opened(), act(opened(), "replied", MON + timedelta(minutes=10)).update)
    now = MON + timedelta(hours=1)
    update = lifecycle.on_customer_message(conv, CFG, now, reopened=False).update
    assert update is not None
    nxt = clock(apply(conv, update), "next_response")
    assert (nxt.status, nxt.due) == ("running", now + timedelta(minutes=30))
    assert update.deadline == nxt.due
    assert update.item == ItemChange(priority=3, deadline=nxt.due)
    assert keys(update.arm) >= {"cnv_1|breach|next_response", "cnv_1|warning|next_response"}


def test_a_new_item_gets_its_queue_overflow_timer() -> None:
    now = MON + timedelta(minutes=5)
    update = lifecycle.on_customer_message(opened(), CFG, now, reopened=False, new_item=True).update
    assert update is not None
    assert update.arm == [
        Timer(conversation_id="cnv_1", kind="overflow", ref="itm_1", at=now + timedelta(minutes=10))
    ]
    assert update.sla is msgspec.UNSET


def test_a_message_on_a_pending_conversation_resumes_in_business_time() -> None:
    """Opened Friday 15:00 in the office calendar (4 h first response), pending Friday
    16:00, the customer writes Monday 10:00: 3 business hours were left → Monday 13:00."""
    conv = opened("backoffice", at=FRI + timedelta(hours=15))
    assert conv.deadline == FRI + timedelta(days=3, hours=11)
    conv = apply(conv, act(conv, "pending", FRI + timedelta(hours=16)).update)
    monday_10 = FRI + timedelta(days=3, hours=10)
    stored = replace(conv, state="open")  # as the store leaves it after the message
    update = lifecycle.on_customer_message(stored, CFG, monday_10, reopened=False).update
    assert update is not None
    after = apply(stored, update)
    first = clock(after, "first_response")
    assert (first.status, first.due) == ("running", FRI + timedelta(days=3, hours=13))
    assert first.warning_at == FRI + timedelta(days=3, hours=12)
    assert after.deadline == first.due
    assert "cnv_1|warning|first_response" in keys(update.arm)


def test_a_customer_reopening_resumes_resolution_and_starts_next_response() -> None:
    conv = opened()
    conv = apply(conv, act(conv, "replied", MON + timedelta(minutes=10)).update)
    conv = apply(conv, act(conv, "resolved", MON + timedelta(hours=1)).update)
    now = MON + timedelta(days=2)
    stored = replace(conv, state="open", resolved_at=None, item_id="itm_2")
    out = lifecycle.on_customer_message(stored, CFG, now, reopened=True, new_item=True)
    assert [e.routing_key for e in out.events] == ["conversation.reopened"]
    after = apply(stored, out.update)
    assert clock(after, "resolution").due == now + timedelta(hours=7)
    assert clock(after, "next_response").due == now + timedelta(minutes=30)
    assert after.deadline == now + timedelta(minutes=30)
    assert "cnv_1|overflow|itm_2" in keys(out.update.arm)  # type: ignore[union-attr]


# --- SLA timers -----------------------------------------------------------------------


def fire(conv: Conversation, kind: str, ref: str, now: datetime) -> Outcome:
    timer = Timer(conversation_id=conv.conversation_id, kind=kind, ref=ref, at=now)  # type: ignore[arg-type]
    return lifecycle.on_timer(conv, timer, CFG, now)


def test_the_warning_at_75_percent_escalates_priority_and_the_item() -> None:
    conv = opened()
    now = MON + timedelta(minutes=45)
    out = fire(conv, "warning", "first_response", now)
    update = out.update
    assert update is not None
    assert update.priority == 2
    assert update.item == ItemChange(priority=2, deadline=MON + timedelta(hours=1))
    after = apply(conv, update)
    assert clock(after, "first_response").warned_at == now
    assert "cnv_1|warning|first_response" not in keys(update.arm)
    assert "cnv_1|breach|first_response" in keys(update.arm)
    [ev] = out.events
    assert ev.routing_key == "sla.warning"
    assert (ev.payload.clock, ev.payload.due, ev.payload.priority) == (
        "first_response", MON + timedelta(hours=1), 2,
    )  # fmt: skip
    # the same warning again is stale
    assert fire(after, "warning", "first_response", now) == Outcome(None, [])


def test_breach_raises_priority_clamped_to_one() -> None:
    conv = opened(priority=1)
    out = fire(conv, "breach", "first_response", MON + timedelta(hours=1))
    assert out.update is not None
    assert out.update.priority == 1
    assert [e.routing_key for e in out.events] == ["sla.breached"]
    assert clock(apply(conv, out.update), "first_response").breached_at == MON + timedelta(hours=1)


def test_stale_clock_timers_change_nothing() -> None:
    conv = opened()
    replied = apply(conv, act(conv, "replied", MON).update)
    assert fire(replied, "breach", "first_response", MON + timedelta(hours=1)).update is None
    pending = apply(conv, act(conv, "pending", MON).update)
    assert fire(pending, "warning", "resolution", MON + timedelta(hours=6)).update is None
    assert fire(conv, "breach", "next_response", MON + timedelta(hours=6)).update is None


def test_a_timer_that_fires_before_its_moved_time_is_armed_again() -> None:
    conv = opened()
    conv = apply(conv, act(conv, "pending", MON + timedelta(minutes=30)).update)
    conv = apply(
        conv,
        lifecycle.on_customer_message(conv, CFG, MON + timedelta(hours=2), reopened=False).update,
    )
    due = clock(conv, "first_response").due
    assert due == MON + timedelta(hours=2, minutes=30)
    out = fire(conv, "breach", "first_response", MON + timedelta(hours=1))
    assert out.events == []
    assert out.update is not None
    assert out.update.arm == [
        Timer(conversation_id="cnv_1", kind="breach", ref="first_response", at=due)
    ]
    assert out.update.priority is msgspec.UNSET


def test_warning_overflow_moves_the_item() -> None:
    conv = opened("billing")
    out = fire(conv, "warning", "first_response", MON + timedelta(minutes=45))
    update = out.update
    assert update is not None
    assert update.queue == "support"
    assert update.item is not None
    assert (update.item.move_to, update.item.priority) == ("support", 2)
    assert update.item.reasons == [
        Reason(kind="overflow", name="billing", decided={"queue": "support", "at": "warning"})
    ]
    assert "cnv_1|overflow|itm_1" in keys(update.arm)  # support's 10 min overflow
    assert [e.routing_key for e in out.events] == ["sla.warning", "conversation.overflowed"]
    assert out.events[1].payload.to_queue == "support"


def test_breach_overflow_also_offers_and_needs_a_waiting_item() -> None:
    conv = opened("tier2")
    out = fire(conv, "breach", "first_response", MON + timedelta(hours=1))
    assert out.update is not None
    assert out.update.item is not None
    assert out.update.item.also_offer == "managers"
    assert out.update.queue is msgspec.UNSET
    assert out.events[1].payload.mode == "also"
    claimed = fire(
        replace(conv, item_id=None), "breach", "first_response", MON + timedelta(hours=1)
    )
    assert [e.routing_key for e in claimed.events] == ["sla.breached"]
    # warning does not match tier2's "breach" overflow
    warned = fire(conv, "warning", "first_response", MON + timedelta(minutes=45))
    assert [e.routing_key for e in warned.events] == ["sla.warning"]


# --- overflow and sticky timers -------------------------------------------------------


def test_overflow_chain() -> None:
    conv = opened("managers")
    now = MON + timedelta(minutes=5)
    out = fire(conv, "overflow", "itm_1", now)
    update = out.update
    assert update is not None
    assert update.queue == "support"
    assert update.item == ItemChange(
        move_to="support",
        reasons=[Reason(kind="overflow", name="managers", decided={"queue": "support"})],
    )
    assert update.arm == [  # support overflows again after 10 minutes
        Timer(conversation_id="cnv_1", kind="overflow", ref="itm_1", at=now + timedelta(minutes=10))
    ]
    after = apply(conv, update)
    nxt = fire(after, "overflow", "itm_1", now + timedelta(minutes=10)).update
    assert nxt is not None
    assert nxt.queue == "tier2"
    assert nxt.arm == []  # tier2 overflows only at the breach
    assert [e.routing_key for e in out.events] == ["conversation.overflowed"]


def test_overflow_of_a_claimed_or_other_item_is_stale() -> None:
    assert fire(opened(), "overflow", "itm_old", MON).update is None
    assert fire(opened(item_id=None), "overflow", "itm_1", MON).update is None
    assert fire(opened("billing"), "overflow", "itm_1", MON).update is not None  # billing → support
    resolved = opened(state="resolved")
    assert fire(resolved, "overflow", "itm_1", MON).update is None


def test_sticky_timeout_moves_the_item_to_the_team_queue() -> None:
    conv = opened("agent.ana")
    now = MON + timedelta(minutes=2)
    out = fire(conv, "sticky", "itm_1@support", now)
    update = out.update
    assert update is not None
    assert update.queue == "support"
    assert update.item == ItemChange(
        move_to="support",
        reasons=[Reason(kind="sticky", name="agent.ana", decided={"queue": "support"})],
    )
    assert keys(update.arm) == {"cnv_1|overflow|itm_1"}
    assert fire(replace(conv, item_id=None), "sticky", "itm_1@support", now).update is None
    assert fire(conv, "sticky", "itm_9@support", now).update is None
    transferred = replace(conv, queue="billing")  # an agent moved it meanwhile
    assert fire(transferred, "sticky", "itm_1@support", now).update is None


# --- any sequence keeps the invariants ------------------------------------------------


class World:
    """A conversation plus its armed timers, driven like the store drives them."""

    def __init__(self) -> None:
        self.now = MON
        self.conv = opened()
        opening = lifecycle.initial(
            CFG, policy=None, priority=3, channel="chat", queue="support",
            received_at=MON, conversation_id="cnv_1", item_id="itm_1",
        )  # fmt: skip
        self.armed = {t.key: t for t in opening.timers}
        self.items = 1
        self.met: set[tuple[str, datetime]] = set()

    def write(self, update: ConversationUpdate | None) -> None:
        if update is None:
            return
        for key in update.disarm:
            self.armed.pop(key, None)
        self.armed.update({t.key: t for t in update.arm})
        self.conv = apply(self.conv, update)

    def agent(self, kind: str, queue: str | None) -> None:
        self.items += 1
        try:
            out = lifecycle.on_event(
                self.conv, event(kind, queue), CFG, self.now, new_item_id=f"itm_{self.items}"
            )
        except (Conflict, InvalidMessage, NotFound):
            return
        self.write(out.update)

    def customer(self) -> None:
        conv, reopened = self.conv, False
        if conv.state == "resolved":
            assert conv.resolved_at is not None
            if (self.now - conv.resolved_at).total_seconds() > CFG.reopen_window_s:
                return
            reopened = True
        new_item = conv.item_id is None
        self.items += 1
        item_id = f"itm_{self.items}" if new_item else conv.item_id
        self.conv = replace(conv, state="open", resolved_at=None, item_id=item_id)
        self.write(
            lifecycle.on_customer_message(
                self.conv, CFG, self.now, reopened=reopened, new_item=new_item
            ).update
        )

    def claim(self) -> None:
        self.conv = replace(self.conv, item_id=None)

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        while due := sorted(
            (t for t in self.armed.values() if t.at <= self.now), key=lambda t: t.at
        ):
            timer = due[0]
            del self.armed[timer.key]
            self.write(lifecycle.on_timer(self.conv, timer, CFG, self.now).update)

    def check(self) -> None:
        s = self.conv.sla
        assert s is not None
        for c in s.clocks:
            if c.status == "running":
                assert c.due is not None
                assert c.warning_at is not None or c.warned_at is not None
                assert (c.kind, c.started_at) not in self.met or c.kind == "resolution"
            if c.status == "paused":
                assert c.remaining_s is not None
                assert c.paused_at is not None
            if c.status == "met":
                self.met.add((c.kind, c.started_at))
        running = [c for c in s.clocks if c.status == "running"]
        if self.conv.state != "open":
            assert running == []
        response = [c.due for c in running if c.kind != "resolution" and c.due]
        resolution = [c.due for c in running if c.kind == "resolution" and c.due]
        expected = min(response) if response else min(resolution) if resolution else None
        assert sla.deadline(s) == expected
        if expected is not None:
            assert self.conv.deadline == expected
        clock_timers = {t for t in self.armed.values() if t.kind in ("warning", "breach")}
        assert clock_timers == set(sla.timers("cnv_1", s))
        assert 1 <= self.conv.priority <= 5


STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("agent"),
            st.sampled_from(
                ["accepted", "replied", "pending", "resolved", "reopened", "transferred"]
            ),
            st.sampled_from([None, "support", "billing", "tier2", "managers", "nowhere"]),
        ),
        st.tuples(st.just("customer"), st.none(), st.none()),
        st.tuples(st.just("claim"), st.none(), st.none()),
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=4 * 86400), st.none()),
    ),
    max_size=30,
)


@given(STEPS)
def test_any_sequence_keeps_clocks_deadline_and_timers_consistent(
    steps: list[tuple[str, Any, Any]],
) -> None:
    world = World()
    world.check()
    for op, a, b in steps:
        world.advance(1)
        if op == "agent":
            world.agent(a, b)
        elif op == "customer":
            world.customer()
        elif op == "claim":
            world.claim()
        else:
            world.advance(a)
        world.check()
