"""The canonical model: one set of types flows from connector to agent queue.

Connectors produce ``InboundMessage``; the pipeline normalizes it into a
``NormalizedMessage``; the store keeps ``Customer``, ``Conversation`` and
``StoredMessage`` records; the dispatcher turns a ``ClaimedItem`` into the
``WorkItem`` agent tools receive. Pure data: no I/O library is imported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Channel = Literal["email", "chat", "social", "sms", "voice", "other"]
CHANNELS: tuple[str, ...] = ("email", "chat", "social", "sms", "voice", "other")
ConversationState = Literal["open", "pending", "resolved"]
ClockKind = Literal["first_response", "next_response", "resolution"]
ClockStatus = Literal["running", "paused", "met", "stopped"]
EventType = Literal["accepted", "replied", "resolved", "reopened", "pending", "transferred"]
TimerKind = Literal["warning", "breach", "overflow", "sticky"]
MessageKind = Literal["message", "auto_reply", "bounce"]
"""``message`` is routed; ``auto_reply`` (out-of-office, bulk) and ``bounce`` (a delivery
failure report) are recorded in the customer's history and routed nowhere."""
DeliveryStatus = Literal["accepted", "sent", "delivered", "read", "failed", "deleted"]

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Name = Annotated[str, msgspec.Meta(max_length=512)]
Priority = Annotated[int, msgspec.Meta(ge=1, le=5)]


# --- what connectors send -------------------------------------------------------------


class IdentityIn(msgspec.Struct, forbid_unknown_fields=True):
    """An identifier as the channel gave it; ``verified`` when the channel proves it."""

    kind: ShortText
    value: ShortText
    verified: bool = False


class Sender(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    identities: list[IdentityIn] = []
    attributes: dict[str, Any] = {}
    """Customer attributes the channel knows (tier, language, ...); merged into the profile."""


class Attachment(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Name
    content_type: Annotated[str, msgspec.Meta(max_length=255)] = "application/octet-stream"
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    url: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    """Where the provider serves the content (it may need the provider's credentials)."""
    blob: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")] | None = None
    """The SHA-256 of the content when omniroute keeps it (``GET /v1/attachments/{blob}``);
    the content lives in the attachment directory, never in the store."""
    provider_id: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    """The provider's media id (WhatsApp media id, Telegram file_id), to fetch it later."""
    inline: bool = False
    """An inline image of an HTML email (``Content-Disposition: inline`` with a Content-ID)."""


class InboundMessage(msgspec.Struct, forbid_unknown_fields=True):
    """The canonical message a connector hands to the pipeline (``POST /v1/messages``)."""

    channel: Channel
    source: ShortText
    external_id: ShortText
    sender: Sender
    text: str = ""
    thread: ShortText | None = None
    subject: Name | None = None
    sent_at: datetime | None = None
    attachments: list[Attachment] = []
    attributes: dict[str, Any] = {}
    kind: MessageKind = "message"
    references: list[ShortText] = []
    """External ids (same ``source``) of earlier messages this one answers, newest first
    (email ``References`` / ``In-Reply-To``): the message joins the thread of the first
    one that is stored, whatever ``thread`` says."""
    conversation_hint: ShortText | None = None
    """A conversation id the message names (the email token ``[#con_...]``): when no
    reference is stored and the conversation has the same source, the message joins its
    thread."""
    inbox: ShortText | None = None
    """Where the message arrived: the business's own address, number, page or account as
    ``<connector>:<id>`` (``email:support@acme.example``, ``whatsapp:106540352242922``,
    ``twilio:+14155550199``). Rules route on it (``match.inbox``); it is kept in the
    stored message's ``attributes["inbox"]``."""


# --- normalized, stored ---------------------------------------------------------------


class Identity(msgspec.Struct, frozen=True):
    """A normalized identifier; ``key`` is how the stores index it."""

    kind: str
    value: str
    verified: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"


class NormalizedMessage(msgspec.Struct, frozen=True):
    """An ``InboundMessage`` after identity normalization, with its receipt time."""

    channel: str
    source: str
    external_id: str
    sender_name: str | None
    identities: tuple[Identity, ...]
    customer_attributes: dict[str, Any]
    thread: str | None
    subject: str | None
    text: str
    sent_at: datetime
    received_at: datetime
    attachments: tuple[Attachment, ...]
    attributes: dict[str, Any]
    kind: MessageKind = "message"
    inbox: str | None = None

    @property
    def routed(self) -> bool:
        """Only a ``message`` goes to an agent; auto-replies and bounces are recorded."""
        return self.kind == "message"

    @property
    def verified(self) -> tuple[Identity, ...]:
        return tuple(i for i in self.identities if i.verified)

    @property
    def unverified(self) -> tuple[Identity, ...]:
        return tuple(i for i in self.identities if not i.verified)

    @property
    def thread_key(self) -> str:
        """Messages with the same customer and thread key share an open conversation."""
        return f"{self.source}\x00{self.thread or ''}"


class StoredMessage(msgspec.Struct, kw_only=True):
    message_id: str
    conversation_id: str
    customer_id: str
    channel: str
    source: str
    external_id: str
    sender_name: str | None = None
    identities: list[Identity] = []
    subject: str | None = None
    text: str = ""
    sent_at: datetime
    received_at: datetime
    attachments: list[Attachment] = []
    attributes: dict[str, Any] = {}
    kind: MessageKind = "message"
    edited_at: datetime | None = None
    """When the sender last edited it (a Telegram ``edited_message``, a Slack edit)."""
    revisions: list[Revision] = []
    """The texts it had before each edit, oldest first."""


class Revision(msgspec.Struct, kw_only=True):
    """A text a stored message had until the sender edited it."""

    text: str
    replaced_at: datetime


class SuggestedLink(msgspec.Struct, kw_only=True):
    """An identifier the customer merely typed; an agent or the API confirms it."""

    identity: Identity
    other_customer_id: str | None = None
    """The customer who owns this identifier (verified), when there is one."""
    message_id: str
    at: datetime


class Customer(msgspec.Struct, kw_only=True):
    customer_id: str
    name: str | None = None
    identities: list[Identity] = []
    suggested: list[SuggestedLink] = []
    attributes: dict[str, Any] = {}
    created_at: datetime
    merged_into: str | None = None
    merged_from: list[str] = []


class MergeRecord(msgspec.Struct, kw_only=True):
    winner: str
    loser: str
    at: datetime
    reason: str
    """``identity:<key>`` for an automatic merge, ``api`` for a confirmed one."""


class SlaClock(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One service-level clock of a conversation (``router.sla`` moves it).

    ``due`` is when it breaches while it runs; while paused the clock keeps the business
    seconds it had left in ``remaining_s`` and ``due`` is None."""

    kind: ClockKind
    target_s: int
    """The target in business seconds of the conversation's calendar."""
    started_at: datetime
    status: ClockStatus = "running"
    due: datetime | None = None
    warning_at: datetime | None = None
    """When the warning timer fires (``sla.warning``), while running and not yet warned."""
    remaining_s: float | None = None
    paused_at: datetime | None = None
    paused_s: float = 0.0
    """Wall-clock seconds spent paused (waiting on the customer) so far."""
    met_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None


class ConversationSla(msgspec.Struct, kw_only=True):
    """The clocks of a conversation and what they were computed from."""

    policy: str
    calendar: str
    warning_ratio: float
    """The warning fires when this share of the target has passed (0.75)."""
    clocks: list[SlaClock] = []

    @property
    def awaiting_response(self) -> bool:
        """A first- or next-response clock runs: the customer is owed a reply, so a
        further message from them moves no clock. A paused clock does not count: the next
        message must resume it (even if the update after a pending conversation's message
        was lost, the one after it still resumes the clocks)."""
        return any(
            c.kind in ("first_response", "next_response") and c.status == "running"
            for c in self.clocks
        )


class Conversation(msgspec.Struct, kw_only=True):
    conversation_id: str
    customer_id: str
    channel: str
    source: str
    thread: str | None = None
    state: ConversationState = "open"
    queue: str
    priority: int
    deadline: datetime
    message_count: int = 0
    created_at: datetime
    updated_at: datetime
    version: int = 0
    """Bumped by every ``Store.update_conversation``: the compare-and-set token."""
    item_id: str | None = None
    """The backlog item waiting for an agent, if any."""
    assignee: str | None = None
    """The agent who accepted or last replied."""
    resolved_at: datetime | None = None
    previous_conversation_id: str | None = None
    """The resolved conversation on the same thread this one follows (reopen window past)."""
    skills: list[str] = []
    tags: list[str] = []
    sla: ConversationSla | None = None
    awaiting_response: bool = False
    """``sla.awaiting_response`` as of the last write of ``sla``, kept by the store so
    that ``Store.ingest`` can report it without the caller reading the conversation.
    False when there is no SLA, and for conversations stored before the hint existed
    (then the caller reads the conversation, as it must anyway)."""
    recorded_only: bool = False
    """True while every message of the conversation was recorded, not routed: created by
    an auto-reply or bounce. The first routed message on its thread key adopts it
    (``Store.ingest``), and from then on it is an ordinary conversation."""


# --- routing --------------------------------------------------------------------------


class Reason(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why an item went where it went: which rule or policy decided what."""

    kind: str
    """``rule``, ``sla``, ``default``."""
    name: str
    decided: dict[str, Any] = {}


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    """An armed escalation timer. ``key`` is unique: arming the same key again moves it.

    ``ref`` is the clock kind for ``warning`` / ``breach``, the item id for ``overflow``
    and ``sticky``."""

    conversation_id: str
    kind: TimerKind
    ref: str
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.conversation_id}|{self.kind}|{self.ref}"


class Decision(msgspec.Struct, kw_only=True):
    queue: str
    priority: int
    deadline: datetime
    reasons: list[Reason] = []
    score: int | None = None
    """The backlog urgency score (``router.urgency``); None: from deadline and priority."""
    skills: list[str] = []
    tags: list[str] = []
    sla: ConversationSla | None = None
    """The clocks a new conversation starts with (ignored for an existing one)."""
    timers: list[Timer] = []
    """Timers to arm when the message opens a new conversation (its conversation id is
    the request's ``new_conversation_id``)."""


class RoutingContext(msgspec.Struct, kw_only=True):
    """What the store knows about a message's sender before it is stored (rules read it)."""

    customer_id: str | None = None
    attributes: dict[str, Any] = {}
    """The stored profile attributes (the message's own are not merged in)."""
    recent: list[datetime] = []
    """``sent_at`` of the customer's messages since the asked time, newest first."""
    last_agent: str | None = None
    last_agent_at: datetime | None = None


class ItemChange(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What ``update_conversation`` does to the conversation's backlog item."""

    priority: int | None = None
    deadline: datetime | None = None
    """With ``priority``: the waiting item takes both, and its score becomes
    ``min(current deadline part, deadline) * 8 + priority`` (``router.urgency``): a
    change never makes an item less urgent than it was."""
    withdraw: bool = False
    """Take the waiting item out of every backlog (the conversation was resolved)."""
    move_to: str | None = None
    """Move the waiting item to this queue's backlog (transfer, overflow)."""
    also_offer: str | None = None
    """Offer the waiting item in this queue too; the first claim takes it from both."""
    create_item_id: str | None = None
    """No item waiting: queue a new one with this id (in ``move_to`` or the conversation's
    queue) carrying the conversation's newest customer message."""
    reasons: list[Reason] = []
    """Added to the item's reasons."""


class ConversationUpdate(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A compare-and-set change of one conversation (``Store.update_conversation``).

    Fields left at ``UNSET`` keep their value."""

    expected_version: int
    state: ConversationState | msgspec.UnsetType = msgspec.UNSET
    queue: str | msgspec.UnsetType = msgspec.UNSET
    priority: int | msgspec.UnsetType = msgspec.UNSET
    deadline: datetime | msgspec.UnsetType = msgspec.UNSET
    assignee: str | msgspec.UnsetType | None = msgspec.UNSET
    resolved_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    sla: ConversationSla | msgspec.UnsetType | None = msgspec.UNSET
    item: ItemChange | None = None
    arm: list[Timer] = []
    """Timers to arm (or move, same key)."""
    disarm: list[str] = []
    """Timer keys to remove."""
    served_by: str | None = None
    """Record that this agent served the customer now (sticky routing reads it back as
    ``RoutingContext.last_agent``)."""
    at: datetime | None = None
    """When this change happens (``updated_at``, the served-by time)."""


# --- the store's boundary types ------------------------------------------------------


class IngestRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One message for ``Store.ingest``; the ids are drawn by the caller and used if new."""

    message: NormalizedMessage
    decision: Decision
    message_id: str
    new_customer_id: str
    new_conversation_id: str
    new_item_id: str
    reopen_window_s: float = 0.0
    """A message on a thread whose conversation was resolved at most this long ago
    reopens it; later, it opens a new conversation linked to the old one."""


class IngestResult(msgspec.Struct, kw_only=True):
    message_id: str
    customer_id: str
    conversation_id: str
    queue: str
    priority: int
    deadline: datetime
    duplicate: bool = False
    item_id: str | None = None
    """The backlog item that carries this message (new or updated); None for a duplicate."""
    new_customer: bool = False
    merged: list[str] = []
    """Customers merged into ``customer_id`` by this message (verified identifiers)."""
    conversation_created: bool = False
    reopened: bool = False
    """The message reopened a resolved conversation (within the reopen window)."""
    previous_state: ConversationState | None = None
    """The conversation's state before this message; None when the message created it
    (and for a duplicate)."""
    awaiting_response: bool = False
    """The conversation's ``awaiting_response`` hint as stored with this message (ingest
    never changes an existing conversation's ``sla``, so for one it is the hint it had);
    False for a duplicate."""
    routed: bool = True
    """False for an auto-reply or bounce: recorded in history, no backlog item."""


class HistoryPage(msgspec.Struct, kw_only=True):
    messages: list[StoredMessage]
    next_before: str | None = None
    """Cursor for the next (older) page; None on the last page."""


class BacklogItem(msgspec.Struct, kw_only=True):
    item_id: str
    conversation_id: str
    queue: str
    priority: int
    deadline: datetime
    message_id: str
    """The newest customer message this item carries."""
    reasons: list[Reason] = []
    created_at: datetime


class ClaimedItem(msgspec.Struct, kw_only=True):
    """Everything the dispatcher needs to build a work item, read in one step."""

    item: BacklogItem
    conversation: Conversation
    customer: Customer
    message: StoredMessage
    history: list[StoredMessage]
    """Recent messages of the customer across channels, newest first, the new one included."""


class BacklogStats(msgspec.Struct, kw_only=True):
    depth: int
    oldest_deadline: datetime | None = None
    """The most urgent waiting item's urgency deadline (``router.urgency.deadline_of``
    its score: the SLA deadline, capped by the aging bound)."""
    released: int = 0
    at_risk: int = 0
    """Waiting items whose urgency deadline is at or before ``at_risk_before``."""


# --- what agent tools receive --------------------------------------------------------


class WorkSender(msgspec.Struct, kw_only=True):
    name: str | None
    identities: list[Identity]


class WorkMessage(msgspec.Struct, kw_only=True):
    message_id: str
    channel: str
    source: str
    subject: str | None
    text: str
    sender: WorkSender
    sent_at: datetime
    attachments: list[Attachment]
    attributes: dict[str, Any]


class CustomerSummary(msgspec.Struct, kw_only=True):
    name: str | None
    identities: list[Identity]
    attributes: dict[str, Any]


class HistoryEntry(msgspec.Struct, kw_only=True):
    message_id: str
    conversation_id: str
    channel: str
    source: str
    subject: str | None
    text: str
    sent_at: datetime
    kind: MessageKind = "message"
    """``auto_reply`` and ``bounce`` entries were recorded, not routed."""


class WorkItem(msgspec.Struct, kw_only=True):
    """The JSON body of one message on ``omniroute.queue.<name>``."""

    version: int = 1
    item_id: str
    conversation_id: str
    customer_id: str
    queue: str
    priority: int
    deadline: datetime
    channel: str
    message: WorkMessage
    customer: CustomerSummary
    history: list[HistoryEntry]
    reasons: list[Reason]
    created_at: datetime
    released_at: datetime
    clocks: list[SlaClock] = []
    """The conversation's SLA clocks when the item was released (due, status, ...)."""
    skills: list[str] = []
    """Skills the routing rules require of the agent who takes it."""
    tags: list[str] = []
