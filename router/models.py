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


# --- routing --------------------------------------------------------------------------


class Reason(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why an item went where it went: which rule or policy decided what."""

    kind: str
    """``rule``, ``sla``, ``default``."""
    name: str
    decided: dict[str, Any] = {}


class Decision(msgspec.Struct, kw_only=True):
    queue: str
    priority: int
    deadline: datetime
    reasons: list[Reason] = []


# --- the store's boundary types ------------------------------------------------------


class IngestRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One message for ``Store.ingest``; the ids are drawn by the caller and used if new."""

    message: NormalizedMessage
    decision: Decision
    message_id: str
    new_customer_id: str
    new_conversation_id: str
    new_item_id: str


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
    released: int = 0


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
