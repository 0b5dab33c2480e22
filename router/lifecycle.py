"""The conversation lifecycle: agent events, customer messages and timers, each turned
into one compare-and-set ``ConversationUpdate`` plus the events to publish.

States: ``open`` (agents owe something), ``pending`` (waiting on the customer: clocks
paused) and ``resolved`` (clocks stopped, the waiting item withdrawn; a customer message
within the reopen window opens it again). Escalation: an SLA warning or breach raises
the priority, re-scores the waiting item and may overflow it to another queue; an
``overflow`` timer moves an item that waited too long, a ``sticky`` one takes an item
offered to one agent (``agent.<id>``) back to its team queue.

Pure: the caller reads the conversation, calls one function with the time, and writes
the update with ``expected_version`` (re-reading on ``Conflict``).

Published events (exchange ``omniroute.events``) are ``Event`` structs encoded as JSON:
``{"routing_key": ..., "payload": {...}}``, routing keys ``sla.warning``,
``sla.breached``, ``conversation.<accepted|replied|pending|resolved|reopened|transferred>``
and ``conversation.overflowed``; ``EventPayload`` documents the payload.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec.structs import replace

from router import sla
from router.calendars import ALWAYS
from router.errors import Conflict, InvalidMessage, NotFound
from router.models import (
    ClockKind,
    Conversation,
    ConversationSla,
    ConversationUpdate,
    EventType,
    ItemChange,
    Reason,
    Timer,
)
from router.queue_spec import AGENT_QUEUE_PREFIX, OverflowMode, QueueSpec
from router.sla import Calendar, SlaPolicy


class AgentEvent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an agent tool reports about a conversation (``POST .../events``)."""

    type: EventType
    agent_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    queue: str | None = None
    """The target queue of a ``transferred`` event."""


class EventPayload(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The JSON body of a published event. ``queue`` and ``priority`` are the
    conversation's after the change; the optional fields appear where they apply:
    ``clock``, ``due`` (when the clock breaches) and ``scheduled_at`` (when this warning
    or breach was due: ``at - scheduled_at`` is how late it fired) for SLA events,
    ``agent_id`` (agent events), ``from_queue`` / ``to_queue`` / ``mode`` (transfer and
    overflow)."""

    conversation_id: str
    customer_id: str
    queue: str
    priority: int
    at: datetime
    clock: ClockKind | None = None
    due: datetime | None = None
    scheduled_at: datetime | None = None
    agent_id: str | None = None
    from_queue: str | None = None
    to_queue: str | None = None
    mode: OverflowMode | None = None


class Event(msgspec.Struct, kw_only=True):
    routing_key: str
    payload: EventPayload


@dataclass(frozen=True)
class LifecycleConfig:
    queues: Mapping[str, QueueSpec]
    calendars: Mapping[str, Calendar]
    policies: Mapping[str, SlaPolicy]
    default_policy: str = sla.DEFAULT_POLICY
    warning_priority_delta: int = -1
    """Added to the priority when a warning fires (1 is the highest; clamped to 1..5)."""
    breach_priority_delta: int = -1
    reopen_window_s: float = 7 * 86400
    """An agent may reopen a conversation resolved at most this long ago."""
    sticky_timeout_s: float = 120


@dataclass(frozen=True)
class Outcome:
    update: ConversationUpdate | None
    """None: nothing to change (a stale timer, a message that moves no clock)."""
    events: list[Event] = field(default_factory=list)


class Opening(msgspec.Struct, kw_only=True):
    """What a new conversation starts with (``Decision.sla``, ``deadline``, ``timers``)."""

    sla: ConversationSla
    deadline: datetime | None
    """The SLA deadline; None when the policy sets no target for it."""
    timers: list[Timer]
    reason: Reason
    """``kind="sla"``: the policy and targets, for the item's reasons."""


# --- lookups --------------------------------------------------------------------------


def _calendar(cfg: LifecycleConfig, name: str | None) -> Calendar:
    if name is not None and name in cfg.calendars:
        return cfg.calendars[name]
    return ALWAYS


def _policy(cfg: LifecycleConfig, name: str | None) -> SlaPolicy:
    if name is not None and name in cfg.policies:
        return cfg.policies[name]
    return cfg.policies[cfg.default_policy]


def _targets(conv: Conversation, cfg: LifecycleConfig) -> sla.Targets:
    name = conv.sla.policy if conv.sla is not None else None
    return _policy(cfg, name).targets_for(conv.priority, conv.channel)


def _clamp(priority: int) -> int:
    return max(1, min(5, priority))


def overflow_timers(
    conversation_id: str, item_id: str, queue: str, cfg: LifecycleConfig, at: datetime
) -> list[Timer]:
    """The queue's "waited too long" timer for an item that starts waiting there."""
    spec = cfg.queues.get(queue)
    if spec is None or spec.overflow is None or spec.overflow.after_s is None:
        return []
    due = at + timedelta(seconds=spec.overflow.after_s)
    return [Timer(conversation_id=conversation_id, kind="overflow", ref=item_id, at=due)]


def _overflow_key(conversation_id: str, item_id: str) -> str:
    return f"{conversation_id}|overflow|{item_id}"


def sticky_timer(conversation_id: str, item_id: str, team_queue: str, at: datetime) -> Timer:
    """The timer that takes an item offered to one agent back to ``team_queue`` at
    ``at``; the team queue rides in the ref (``<item_id>@<team queue>``)."""
    return Timer(
        conversation_id=conversation_id, kind="sticky", ref=f"{item_id}@{team_queue}", at=at
    )


def parse_sticky_ref(ref: str) -> tuple[str, str]:
    """``(item_id, team_queue)`` of a sticky timer's ref."""
    item_id, _, team_queue = ref.partition("@")
    return item_id, team_queue


# --- building outcomes ----------------------------------------------------------------


def _update(conv: Conversation, now: datetime, **fields: Any) -> ConversationUpdate:
    return ConversationUpdate(expected_version=conv.version, at=now, **fields)


def _clock_fields(conv: Conversation, new: ConversationSla) -> dict[str, Any]:
    """The update's fields for new clocks: the clocks, the deadline, the timers."""
    fields: dict[str, Any] = {
        "sla": new,
        "disarm": sla.all_clock_timer_keys(conv.conversation_id),
        "arm": sla.timers(conv.conversation_id, new),
    }
    due = sla.deadline(new)
    if due is not None:
        fields["deadline"] = due
    return fields


def _event(routing_key: str, conv: Conversation, now: datetime, **fields: Any) -> Event:
    values: dict[str, Any] = {"queue": conv.queue, "priority": conv.priority, **fields}
    payload = EventPayload(
        conversation_id=conv.conversation_id, customer_id=conv.customer_id, at=now, **values
    )
    return Event(routing_key=routing_key, payload=payload)


def _not_resolved(conv: Conversation, what: str) -> None:
    if conv.state == "resolved":
        raise Conflict(f"cannot {what} a resolved conversation; reopen it first")


# --- agent events ---------------------------------------------------------------------


def on_event(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime, *, new_item_id: str
) -> Outcome:
    """Apply an agent event. ``Conflict`` for a transition impossible in the current
    state; ``InvalidMessage`` for a transfer without a queue, ``NotFound`` for an unknown
    one. ``new_item_id`` names the item a transfer queues when none waits."""
    if event.type == "transferred":
        update = _transferred(conv, event, cfg, now, new_item_id)
    else:
        update = _HANDLERS[event.type](conv, event, cfg, now)
    extra: dict[str, Any] = {"agent_id": event.agent_id}
    if event.type == "transferred":
        extra |= {"queue": event.queue, "from_queue": conv.queue, "to_queue": event.queue}
    return Outcome(update, [_event(f"conversation.{event.type}", conv, now, **extra)])


def _accepted(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime
) -> ConversationUpdate:
    _not_resolved(conv, "accept")
    return _update(conv, now, assignee=event.agent_id, served_by=event.agent_id)


def _replied(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime
) -> ConversationUpdate:
    _not_resolved(conv, "reply to")
    fields: dict[str, Any] = {"assignee": event.agent_id, "served_by": event.agent_id}
    if conv.sla is not None:
        new = sla.meet(conv.sla, sla.RESPONSE_KINDS, now)
        if new != conv.sla:
            fields |= _clock_fields(conv, new)
    return _update(conv, now, **fields)


def _pending(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime
) -> ConversationUpdate:
    _not_resolved(conv, "set pending")
    if conv.state == "pending":
        raise Conflict("the conversation is already pending")
    fields: dict[str, Any] = {"state": "pending"}
    if conv.sla is not None:
        fields |= _clock_fields(conv, sla.pause(conv.sla, _calendar(cfg, conv.sla.calendar), now))
    return _update(conv, now, **fields)


def _resolved(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime
) -> ConversationUpdate:
    if conv.state == "resolved":
        raise Conflict("the conversation is already resolved")
    disarm = sla.all_clock_timer_keys(conv.conversation_id)
    if conv.item_id is not None:
        disarm.append(_overflow_key(conv.conversation_id, conv.item_id))
    fields: dict[str, Any] = {}
    if conv.sla is not None:
        fields = _clock_fields(conv, sla.stop(conv.sla, _calendar(cfg, conv.sla.calendar), now))
    fields |= {"disarm": disarm, "arm": []}
    item = ItemChange(withdraw=True)
    return _update(conv, now, state="resolved", resolved_at=now, item=item, **fields)


def _reopened(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime
) -> ConversationUpdate:
    if conv.state != "resolved":
        raise Conflict(f"only a resolved conversation can be reopened (it is {conv.state})")
    if conv.resolved_at is not None:
        since_s = (now - conv.resolved_at).total_seconds()
        if since_s > cfg.reopen_window_s:
            raise Conflict(
                f"resolved {since_s:.0f} s ago, longer than the reopen window "
                f"({cfg.reopen_window_s:.0f} s)"
            )
    fields: dict[str, Any] = {"state": "open", "resolved_at": None}
    if conv.sla is not None:
        fields |= _clock_fields(conv, sla.reopen(conv.sla, _calendar(cfg, conv.sla.calendar), now))
    return _update(conv, now, **fields)


def _transferred(
    conv: Conversation, event: AgentEvent, cfg: LifecycleConfig, now: datetime, new_item_id: str
) -> ConversationUpdate:
    queue = event.queue
    if not queue:
        raise InvalidMessage("a transferred event needs the target queue")
    if queue not in cfg.queues:
        raise NotFound(f"unknown queue {queue!r}")
    _not_resolved(conv, "transfer")
    if queue == conv.queue:
        raise Conflict(f"already in queue {queue}")
    reason = Reason(kind="transfer", name=event.agent_id, decided={"queue": queue})
    if conv.item_id is not None:
        item_id = conv.item_id
        item = ItemChange(move_to=queue, reasons=[reason])
    else:
        item_id = new_item_id
        item = ItemChange(move_to=queue, create_item_id=new_item_id, reasons=[reason])
    return _update(
        conv,
        now,
        queue=queue,
        assignee=None,
        item=item,
        disarm=[_overflow_key(conv.conversation_id, item_id)],
        arm=overflow_timers(conv.conversation_id, item_id, queue, cfg, now),
    )


_HANDLERS = {
    "accepted": _accepted,
    "replied": _replied,
    "pending": _pending,
    "resolved": _resolved,
    "reopened": _reopened,
}


# --- customer messages ----------------------------------------------------------------


def on_customer_message(
    conv: Conversation,
    cfg: LifecycleConfig,
    now: datetime,
    *,
    reopened: bool,
    new_item: bool = False,
) -> Outcome:
    """After the store took a customer message on an existing conversation (``conv`` as
    stored, state already ``open``): paused clocks run again, a reopened conversation's
    resolution clock runs on, and a next-response clock starts once the first response is
    done. ``new_item``: the message queued a new item (``IngestResult.item_id`` is the
    request's ``new_item_id``), which gets its queue's overflow timer."""
    events = [_event("conversation.reopened", conv, now)] if reopened else []
    fields: dict[str, Any] = {}
    if conv.sla is not None:
        calendar = _calendar(cfg, conv.sla.calendar)
        new = sla.reopen(conv.sla, calendar, now) if reopened else conv.sla
        new = sla.resume(new, calendar, now)
        new = sla.start_next_response(new, _targets(conv, cfg), calendar, now)
        if new != conv.sla:
            fields = _clock_fields(conv, new)
            if "deadline" in fields:
                fields["item"] = ItemChange(priority=conv.priority, deadline=fields["deadline"])
    if new_item and conv.item_id is not None:
        extra = overflow_timers(conv.conversation_id, conv.item_id, conv.queue, cfg, now)
        if extra:
            fields["arm"] = [*fields.get("arm", []), *extra]
    if not fields:
        return Outcome(None, events)
    return Outcome(_update(conv, now, **fields), events)


# --- timers ---------------------------------------------------------------------------


def on_timer(conv: Conversation, timer: Timer, cfg: LifecycleConfig, now: datetime) -> Outcome:
    """A fired timer. A stale one (its clock no longer runs, its item was claimed)
    changes nothing; one that fired before its moved time is armed again."""
    if timer.kind in ("warning", "breach"):
        return _clock_timer(conv, timer, cfg, now)
    if conv.state == "resolved" or conv.item_id is None:
        return Outcome(None)
    if timer.kind == "overflow":
        spec = cfg.queues.get(conv.queue)
        if timer.ref != conv.item_id or spec is None or spec.overflow is None:
            return Outcome(None)
        reason = Reason(kind="overflow", name=conv.queue, decided={"queue": spec.overflow.to})
        hop = _hop(conv, spec.overflow.to, spec.overflow.mode, reason, cfg=cfg, now=now)
    else:
        item_id, team = parse_sticky_ref(timer.ref)
        offered = conv.queue.startswith(AGENT_QUEUE_PREFIX)  # not transferred since
        if item_id != conv.item_id or not team or not offered:
            return Outcome(None)
        reason = Reason(kind="sticky", name=conv.queue, decided={"queue": team})
        hop = _hop(conv, team, "move", reason, cfg=cfg, now=now)
    return Outcome(_update(conv, now, item=hop.item, **hop.fields), [hop.event])


@dataclass(frozen=True)
class _Hop:
    """The waiting item goes to (``move``) or is also offered in (``also``) a queue."""

    item: ItemChange
    fields: dict[str, Any]
    event: Event


def _hop(
    conv: Conversation,
    to: str,
    mode: OverflowMode,
    reason: Reason,
    *,
    cfg: LifecycleConfig,
    now: datetime,
) -> _Hop:
    assert conv.item_id is not None  # callers check an item waits
    fields: dict[str, Any] = {}
    if mode == "move":
        item = ItemChange(move_to=to, reasons=[reason])
        fields = {
            "queue": to,
            "disarm": [_overflow_key(conv.conversation_id, conv.item_id)],
            "arm": overflow_timers(conv.conversation_id, conv.item_id, to, cfg, now),
        }
    else:
        item = ItemChange(also_offer=to, reasons=[reason])
    queue = to if mode == "move" else conv.queue
    event = _event(
        "conversation.overflowed",
        conv,
        now,
        queue=queue,
        from_queue=conv.queue,
        to_queue=to,
        mode=mode,
    )
    return _Hop(item, fields, event)


def _clock_timer(conv: Conversation, timer: Timer, cfg: LifecycleConfig, now: datetime) -> Outcome:
    clock = sla.find(conv.sla, timer.ref)
    if conv.sla is None or clock is None or clock.status != "running":
        return Outcome(None)
    warning = timer.kind == "warning"
    done = clock.warned_at if warning else clock.breached_at
    planned = clock.warning_at if warning else clock.due
    if done is not None or planned is None:
        return Outcome(None)
    if planned > now:
        return Outcome(_update(conv, now, arm=[replace(timer, at=planned)]))
    marked = replace(clock, warned_at=now) if warning else replace(clock, breached_at=now)
    new = replace(conv.sla, clocks=[marked if c is clock else c for c in conv.sla.clocks])
    delta = cfg.warning_priority_delta if warning else cfg.breach_priority_delta
    priority = _clamp(conv.priority + delta)
    fields = _clock_fields(conv, new)
    item = ItemChange(priority=priority, deadline=fields.get("deadline", conv.deadline))
    escalated = replace(conv, priority=priority)
    events = [
        _event(
            "sla.warning" if warning else "sla.breached",
            escalated,
            now,
            clock=clock.kind,
            due=clock.due,
            scheduled_at=planned,
        )
    ]
    spec = cfg.queues.get(conv.queue)
    overflow = spec.overflow if spec is not None else None
    if overflow is not None and overflow.at == timer.kind and conv.item_id is not None:
        reason = Reason(
            kind="overflow", name=conv.queue, decided={"queue": overflow.to, "at": timer.kind}
        )
        hop = _hop(escalated, overflow.to, overflow.mode, reason, cfg=cfg, now=now)
        item = replace(item, move_to=hop.item.move_to, also_offer=hop.item.also_offer)
        item = replace(item, reasons=hop.item.reasons)
        fields["disarm"] = [*fields["disarm"], *hop.fields.get("disarm", [])]
        fields["arm"] = [*fields["arm"], *hop.fields.get("arm", [])]
        if "queue" in hop.fields:
            fields["queue"] = hop.fields["queue"]
        events.append(hop.event)
    return Outcome(_update(conv, now, priority=priority, item=item, **fields), events)


# --- a new conversation ---------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _decided(targets: sla.Targets) -> dict[str, int]:
    """The targets set, for the reason (a policy has few: cached, copied by the caller)."""
    return {k: v for k, v in msgspec.structs.asdict(targets).items() if v is not None}


def initial(
    cfg: LifecycleConfig,
    *,
    policy: str | None,
    priority: int,
    channel: str,
    queue: str,
    received_at: datetime,
    conversation_id: str,
    item_id: str,
    team_queue: str | None = None,
) -> Opening:
    """The clocks and timers of a new conversation (for its ``Decision``).

    ``policy`` None: the queue's policy, else the default. The calendar is the queue's.
    ``team_queue``: the item is offered first to one agent (``queue`` is ``agent.<id>``);
    the SLA follows the team queue, and a sticky timer takes the item back there after
    ``sticky_timeout_s``."""
    spec = cfg.queues.get(team_queue or queue)
    chosen = _policy(cfg, policy or (spec.sla if spec is not None else None))
    calendar = _calendar(cfg, spec.calendar if spec is not None else None)
    targets = chosen.targets_for(priority, channel)
    clocks = sla.start(chosen, targets, calendar, received_at)
    armed = sla.timers(conversation_id, clocks)
    armed += overflow_timers(conversation_id, item_id, queue, cfg, received_at)
    if team_queue is not None:
        back_at = received_at + timedelta(seconds=cfg.sticky_timeout_s)
        armed.append(sticky_timer(conversation_id, item_id, team_queue, back_at))
    reason = Reason(kind="sla", name=chosen.name, decided=dict(_decided(targets)))
    return Opening(sla=clocks, deadline=sla.deadline(clocks), timers=armed, reason=reason)
