"""How ``RedisStore`` talks to its Lua scripts: the arguments it sends and the replies
it reads back, kept apart from the commands so the key schema (``redis_store``'s
docstring) and the wire format can be read on their own.

Arguments are msgpack (one blob per message, which the scripts unpack with cmsgpack);
replies are one msgpack blob per script run, decoded here by msgspec. Times are integer
microseconds since the epoch; a field a script never wrote comes back as Lua's
``false``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from router.backends.edits import apply_edit
from router.clock import to_ms
from router.models import (
    Attachment,
    BacklogItem,
    ClaimedItem,
    Conversation,
    ConversationSla,
    ConversationUpdate,
    Customer,
    Identity,
    IngestRequest,
    IngestResult,
    ItemChange,
    MergeRecord,
    MessageKind,
    NormalizedMessage,
    Reason,
    Revision,
    RoutingContext,
    StoredMessage,
    SuggestedLink,
    Timer,
)
from router.urgency import of_decision

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
HIST_OFFSET_US: Final = 62_135_596_800_000_000  # year 1 to 1970: sort keys stay >= 0

_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()
_message_decoder = msgspec.json.Decoder(StoredMessage)
_link_decoder = msgspec.json.Decoder(SuggestedLink)
_reasons_decoder = msgspec.json.Decoder(list[Reason])
_merge_decoder = msgspec.json.Decoder(MergeRecord)
_any_decoder = msgspec.json.Decoder()
_strings_decoder = msgspec.json.Decoder(list[str])
_sla_decoder = msgspec.json.Decoder(ConversationSla)

unpack: Final = msgspec.msgpack.Decoder().decode
"""A script's reply blob as Python lists, strings and numbers."""


class _MessageBody(msgspec.Struct, kw_only=True):
    """``StoredMessage`` without the two ids the ingest script puts in front (every other
    field written, so the stored JSON is a whole ``StoredMessage``)."""

    message_id: str
    channel: str
    source: str
    external_id: str
    sender_name: str | None
    identities: tuple[Identity, ...]
    subject: str | None
    text: str
    sent_at: datetime
    received_at: datetime
    attachments: tuple[Attachment, ...]
    attributes: dict[str, Any]
    kind: MessageKind
    edited_at: datetime | None = None
    revisions: tuple[Revision, ...] = ()


# --- time -----------------------------------------------------------------------------


def to_us(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _US


def from_us(value: str | int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


# --- encoding: one msgpack argument per message (cmsgpack takes str, not bin) ----------


def ingest_arg(request: IngestRequest) -> bytes:
    m, decision = request.message, request.decision
    verified, suggested = _identities(request)
    sent_key = to_us(m.sent_at) + HIST_OFFSET_US
    return _msgpack.encode(
        [
            f"{m.source}\x00{m.external_id}",
            request.message_id,
            request.new_customer_id,
            request.new_conversation_id,
            request.new_item_id,
            m.thread_key,
            m.thread or "",
            m.sender_name or "",
            str(to_us(m.received_at)),
            _json.encode(m.received_at).decode(),  # a merge record's "at", as JSON
            f"{sent_key:018d}:{request.message_id}",
            m.channel,
            m.source,
            decision.queue,
            str(decision.priority),
            str(to_us(decision.deadline)),
            str(of_decision(decision)),
            _reason_lines(decision.reasons),
            _json.encode(_body(request)).decode(),
            verified,
            suggested,
            _attributes(m.customer_attributes),
            window_arg(request.reopen_window_s),
            _json.encode(decision.skills).decode(),
            _json.encode(decision.tags).decode(),
            _json.encode(decision.sla).decode() if decision.sla is not None else "",
            _timers(decision.timers),
            _hint(decision.sla),
            "1" if m.routed else "0",
        ]
    )


def merge_arg(record: MergeRecord) -> bytes:
    """The ``MergeRecord`` JSON the merge script appends to ``{P}:merges:<cid>``."""
    return _json.encode(record)


def _hint(sla: ConversationSla | None) -> str:
    """The ``awaiting`` hash field for a conversation whose sla is now ``sla``."""
    return "1" if sla is not None and sla.awaiting_response else "0"


def _timers(timers: Sequence[Timer]) -> list[str]:
    """``[due µs, key, ...]`` for the scripts' ``arm_timers`` (ZADD's argument order)."""
    flat: list[str] = []
    for timer in timers:
        flat += [str(to_us(timer.at)), timer.key]
    return flat


def read_timer(key: str | bytes, due_us: str | bytes | float) -> Timer:
    """A timer back from its key and score (the key holds the rest of it)."""
    text = key.decode() if isinstance(key, bytes) else key
    conversation_id, kind, ref = text.split("|", 2)
    return Timer(
        conversation_id=conversation_id,
        kind=kind,  # type: ignore[arg-type]  # written by _timers from a TimerKind
        ref=ref,
        at=from_us(int(float(due_us))),
    )


def context_arg(message: NormalizedMessage) -> bytes:
    keys = [identity.key for identity in message.verified]
    routed = "1" if message.routed else "0"
    received = str(to_us(message.received_at))
    return _msgpack.encode([keys, message.thread_key, message.thread or "", routed, received])


def window_arg(window_s: float) -> str:
    """A reopen window in µs, as the scripts compare it with times."""
    return str(round(window_s * 1_000_000))


def update_arg(update: ConversationUpdate) -> bytes:
    sets, dels = _conversation_changes(update)
    deadline_ms = "" if isinstance(update.deadline, msgspec.UnsetType) else to_ms(update.deadline)
    return _msgpack.encode(
        [
            str(update.expected_version),
            sets,
            dels,
            _item_change(update.item) if update.item is not None else "",
            update.disarm,
            _timers(update.arm),
            update.served_by or "",
            "" if update.at is None else str(to_us(update.at)),
            str(deadline_ms),
        ]
    )


def _conversation_changes(update: ConversationUpdate) -> tuple[list[str], list[str]]:
    """The conversation hash fields to set (``[field, value, ...]``) and to delete."""
    values: dict[str, str | None] = {}
    if not isinstance(update.state, msgspec.UnsetType):
        values["state"] = update.state
    if not isinstance(update.queue, msgspec.UnsetType):
        values["queue"] = update.queue
    if not isinstance(update.priority, msgspec.UnsetType):
        values["priority"] = str(update.priority)
    if not isinstance(update.deadline, msgspec.UnsetType):
        values["deadline"] = str(to_us(update.deadline))
    if not isinstance(update.assignee, msgspec.UnsetType):
        values["assignee"] = update.assignee
    if not isinstance(update.resolved_at, msgspec.UnsetType):
        resolved = update.resolved_at
        values["resolved"] = None if resolved is None else str(to_us(resolved))
    if not isinstance(update.sla, msgspec.UnsetType):
        values["sla"] = None if update.sla is None else _json.encode(update.sla).decode()
        values["awaiting"] = _hint(update.sla)
    if update.at is not None:
        values["updated"] = str(to_us(update.at))
    sets = [part for field, value in values.items() if value is not None for part in (field, value)]
    return sets, [field for field, value in values.items() if value is None]


def _item_change(change: ItemChange) -> list[str | int]:
    deadline = change.deadline
    return [
        1 if change.withdraw else 0,
        "" if change.priority is None else str(change.priority),
        "" if deadline is None else str(to_us(deadline)),
        "" if deadline is None else str(to_ms(deadline)),
        change.move_to or "",
        change.also_offer or "",
        change.create_item_id or "",
        _reason_lines(change.reasons),
    ]


def _reason_lines(reasons: list[Reason]) -> str:
    if not reasons:
        return ""
    return "\n".join(_json.encode(reason).decode() for reason in reasons)


def _body(request: IngestRequest) -> _MessageBody:
    m = request.message
    return _MessageBody(
        message_id=request.message_id,
        channel=m.channel,
        source=m.source,
        external_id=m.external_id,
        sender_name=m.sender_name,
        identities=m.identities,
        subject=m.subject,
        text=m.text,
        sent_at=m.sent_at,
        received_at=m.received_at,
        attachments=m.attachments,
        attributes=m.attributes,
        kind=m.kind,
    )


def _identities(request: IngestRequest) -> tuple[list[str], list[str]]:
    """The verified identity keys, and ``[key, SuggestedLink JSON, ...]`` for the others."""
    verified: list[str] = []
    suggested: list[str] = []
    for ident in request.message.identities:
        if ident.verified:
            verified.append(ident.key)
        else:
            at = request.message.received_at
            link = SuggestedLink(identity=ident, message_id=request.message_id, at=at)
            suggested += [ident.key, _json.encode(link).decode()]
    return verified, suggested


def _attributes(attributes: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for name, value in attributes.items():
        flat += [name, _json.encode(value).decode()]
    return flat


# --- decoding the scripts' replies ----------------------------------------------------


def read_ingest_result(reply: list[Any]) -> IngestResult:
    duplicate, mid, cust, conv, queue, priority, deadline, item, new, merged = reply[:10]
    created, reopened, previous_state, awaiting, routed = reply[10:]
    return IngestResult(
        message_id=mid,
        customer_id=cust,
        conversation_id=conv,
        queue=queue,
        priority=int(priority),
        deadline=from_us(deadline),
        duplicate=bool(duplicate),
        item_id=item or None,
        new_customer=bool(new),
        merged=merged,
        conversation_created=bool(created),
        reopened=bool(reopened),
        previous_state=previous_state or None,
        awaiting_response=bool(awaiting),
        routed=bool(routed),
    )


def read_merge(blob: bytes) -> MergeRecord:
    return _merge_decoder.decode(blob)


def _reasons(lines: str) -> list[Reason]:
    """Reasons are stored as JSON lines (compact JSON never holds a raw newline)."""
    return _reasons_decoder.decode(f"[{lines.replace(chr(10), ',')}]")


def read_message(blob: str | bytes, customer_id: str) -> StoredMessage:
    message = _message_decoder.decode(blob)
    message.customer_id = customer_id
    return message


def edited_blob(blob: str, text: str, edited_at: datetime) -> bytes | None:
    """The stored message JSON ``blob`` after the sender's edit (``edits.apply_edit``);
    None when the edit changes nothing. The stored ids stay as they are."""
    message = _message_decoder.decode(blob)
    return _json.encode(message) if apply_edit(message, text, edited_at) else None


def read_customer(view: list[Any]) -> Customer:
    cid, name, created, merged_into, ids, sugg, owners, attrs, merged_from = view
    return Customer(
        customer_id=cid,
        name=name or None,  # msgpack carries Lua's false for a missing field
        identities=[_verified(key) for key in sorted(ids)],
        suggested=_suggested(cid, sugg, owners),
        attributes={attrs[i]: _any_decoder.decode(attrs[i + 1]) for i in range(0, len(attrs), 2)},
        created_at=from_us(created),
        merged_into=merged_into or None,
        merged_from=merged_from,
    )


def _verified(key: str) -> Identity:
    kind, _, value = key.partition(":")
    return Identity(kind, value, True)


def _suggested(cid: str, pairs: list[str], owners: list[str | bool]) -> list[SuggestedLink]:
    links = []
    for i in range(0, len(pairs), 2):
        link = _link_decoder.decode(pairs[i + 1])
        owner = owners[i // 2]
        link.other_customer_id = owner if isinstance(owner, str) and owner != cid else None
        links.append(link)
    links.sort(key=lambda link: (link.at, link.identity.key))
    return links


def read_conversation(view: list[Any]) -> Conversation:
    """A ``conversation_view``: fields never written (stored before they existed) are
    msgpack false."""
    conv, cust, channel, source, thread, state, queue, priority, deadline = view[:9]
    count, created, updated, item, version, assignee, resolved, previous = view[9:17]
    skills, tags, sla, awaiting, recorded = view[17:22]
    return Conversation(
        conversation_id=conv,
        customer_id=cust,
        channel=channel,
        source=source,
        thread=thread or None,
        state=state,
        queue=queue,
        priority=int(priority),
        deadline=from_us(deadline),
        message_count=int(count),
        created_at=from_us(created),
        updated_at=from_us(updated),
        version=int(version or 0),
        item_id=item or None,
        assignee=assignee or None,
        resolved_at=from_us(resolved) if resolved else None,
        previous_conversation_id=previous or None,
        skills=_strings_decoder.decode(skills) if skills else [],
        tags=_strings_decoder.decode(tags) if tags else [],
        sla=_sla_decoder.decode(sla) if sla else None,
        awaiting_response=awaiting == "1",
        recorded_only=recorded == "1",
    )


def read_context(view: list[Any] | bool) -> RoutingContext:
    if not isinstance(view, list):
        return RoutingContext()
    cid, attrs, recent, served = view
    agent, agent_at = None, None
    if served:
        at_us, _, agent = served.partition("\x00")
        agent_at = from_us(at_us)
    return RoutingContext(
        customer_id=cid,
        attributes={attrs[i]: _any_decoder.decode(attrs[i + 1]) for i in range(0, len(attrs), 2)},
        recent=[from_us(int(key) - HIST_OFFSET_US) for key in recent],
        last_agent=agent,
        last_agent_at=agent_at,
    )


def read_claimed(reply: list[Any]) -> ClaimedItem:
    item_id, fields, conv_view, customer_view, message_blob, history_blobs = reply
    conv, queue, priority, deadline, message_id, reasons, created = fields[:7]
    conversation = read_conversation(conv_view)
    customer_id = conversation.customer_id
    history = [read_message(blob, customer_id) for blob in history_blobs if blob]
    return ClaimedItem(
        item=BacklogItem(
            item_id=item_id,
            conversation_id=conv,
            queue=queue,
            priority=int(priority),
            deadline=from_us(deadline),
            message_id=message_id,
            reasons=_reasons(reasons),
            created_at=from_us(created),
        ),
        conversation=conversation,
        customer=read_customer(customer_view),
        message=(
            read_message(message_blob, customer_id)
            if message_blob  # false: the script found it among the history
            else next(m for m in history if m.message_id == message_id)
        ),
        history=history,
    )
