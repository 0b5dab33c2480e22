"""The two ports the core talks through. Each has a production and an embedded
implementation (``RedisStore`` / ``SqliteStore``, ``AmqpBroker`` / ``MemoryBroker``)
and one contract suite in ``tests/contract`` that runs against both.

Implementations raise only ``router.errors`` exceptions: ``BackendUnavailable`` when the
server or file cannot be reached (nothing was changed, or the change is atomic and did
not happen), ``NotFound`` / ``Conflict`` where documented.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from router.models import (
    BacklogStats,
    ClaimedItem,
    Conversation,
    ConversationUpdate,
    Customer,
    HistoryPage,
    IngestRequest,
    IngestResult,
    MergeRecord,
    NormalizedMessage,
    RoutingContext,
    StoredMessage,
    Timer,
)


class Store(Protocol):
    """Customers, identities, conversations, history, backlog and dedupe keys.

    Identity invariant: a verified identity key belongs to at most one live customer.
    A merged customer (``merged_into`` set) owns nothing: its identities, suggested
    links, history and conversations belong to the winner.
    """

    async def open(self) -> None:
        """Connect, create the schema or load the scripts. Idempotent."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the backend answers."""
        ...

    async def ingest(self, requests: Sequence[IngestRequest]) -> list[IngestResult]:
        """Store each message atomically and durably, in order; one result per request.

        Per message, as one atomic step:
        1. Dedupe on ``(source, external_id)``: a repeat returns the first result with
           ``duplicate=True`` (customer id followed through merges, current queue,
           priority and deadline of its conversation, ``item_id=None``) and changes nothing.
        2. Identity: the live owners of the message's *verified* identities. One: that
           customer. Several: merge them all into the oldest (``created_at``, then id) with
           reason ``identity:<key>`` and list the losers in ``merged``. None: a new customer
           with ``new_customer_id`` -- except that a message with *no verified identity at
           all* and a thread takes the customer of *the thread's conversation*, whoever's
           it is: of all the conversations on its thread key, the newest open or pending one
           (``created_at``, then the greatest id), else the one resolved last
           (``resolved_at``, then the greatest id; one without ``resolved_at`` counts as
           resolved first). It counts when it is open or pending, or resolved at most
           ``reopen_window_s`` before ``received_at`` (step 3 reopens it), or
           ``recorded_only`` (step 3 adopts it). On a shared thread the message joins the
           conversation going on there: an open one, even when a newer one of someone else
           is resolved; with none open, the one whose resolution it follows. A thread key is
           not a verified identifier (a shared business number, a group chat): a verified
           identity nobody owns yet is never attached to a customer through it, so two
           people writing on one thread stay two customers, each with a conversation of
           their own. Then every verified identity is owned by that customer. Each
           *unverified* identity not already verified on that customer becomes (or stays) a
           suggested link, with ``other_customer_id`` set when another live customer owns it
           verified. ``sender_name`` fills an empty name; ``customer_attributes`` are merged
           into the profile (message wins).
        3. Conversation: the customer's *open or pending* conversation with the same
           thread key (source + thread); or its *resolved* one on that thread key when
           resolved at most ``reopen_window_s`` before ``received_at``, which is
           reopened (state ``open``, ``resolved_at`` cleared, ``reopened=True``); else a
           new one with ``new_conversation_id``, the decision's queue, priority,
           deadline, skills, tags and ``sla``, ``version`` 1, the decision's ``timers``
           armed, ``previous_conversation_id`` naming the resolved conversation on that
           thread key if there is one, and ``conversation_created=True``. A new message
           on an existing conversation sets it ``open`` and increments
           ``message_count``; its queue, priority and deadline change only when the
           conversation had no item waiting; its ``version`` does not change.
           Except: a conversation on the thread key that only recorded messages created
           (``recorded_only``, see below), *in any state*, is *adopted*: it becomes what
           a new conversation would be, keeping its id, channel, ``created_at``,
           ``previous_conversation_id`` and earlier messages: state ``open``,
           ``resolved_at`` and ``assignee`` cleared, ``updated_at`` moved on as for any
           new message, the decision's queue, priority, deadline, skills, tags and
           ``sla``, the decision's ``timers`` armed under *its* id
           (``Timer.conversation_id``; the decision computed them for
           ``new_conversation_id``), ``message_count`` incremented, ``version``
           incremented (as a new conversation's first write does: a caller holding the
           recorded-only version gets ``Conflict``), ``recorded_only`` False, and a new
           item (step 5, ``new_item_id``). Its result has ``conversation_created=True``,
           ``reopened=False`` and ``previous_state=None``, as for a new conversation.
        4. History: the message joins the customer's history (ordered by ``sent_at``).
        5. Backlog: when the conversation already has an item waiting in the backlog
           the item now carries this message (same ``item_id``; its deadline, priority
           and score become the more urgent of the two). Otherwise a new item with
           ``new_item_id`` is queued in the decision's queue with the decision's score
           (``router.urgency.score(deadline, priority)`` when None).

        A message that is not routed (``NormalizedMessage.routed`` False: an auto-reply or a
        bounce) is recorded and nothing else: steps 1, 2 and 4 as above, except that with no
        verified identity at all its customer is the one of the thread's conversation (as
        step 2 picks it) *in any state*; it joins the customer's newest conversation on its
        thread key whatever its state, changing nothing of it but ``message_count`` (no
        state change, no reopen, no backlog item, no timers, ``recorded_only`` as it was);
        with none, a new conversation (``new_conversation_id``) is created already
        ``resolved`` (``resolved_at`` = ``received_at``) with the decision's queue,
        priority, deadline, skills and tags, no ``sla``, no timers and
        ``recorded_only=True``. Its result has ``routed=False`` and ``item_id=None``. A
        routed message with no verified identity whose thread's conversation is
        ``recorded_only`` finds its customer (step 2), so it adopts it (step 3) however long
        ago it was resolved.
        """
        ...

    async def find_thread(self, source: str, external_ids: Sequence[str]) -> str | None:
        """The thread of the conversation holding the first of ``external_ids`` (in the
        given order) stored under ``source``; None when none is stored or its
        conversation has no thread. Email threading: a reply's References, newest first."""
        ...

    async def edit_message(
        self, source: str, external_id: str, *, text: str, edited_at: datetime
    ) -> StoredMessage | None:
        """The sender edited a stored message: its ``text`` becomes ``text``, the old text
        is appended to ``revisions`` (``replaced_at=edited_at``) and ``edited_at`` is set;
        returns the message after it. Idempotent: when ``text`` is already the text,
        nothing changes (a provider re-delivering the edit); nor does an edit older than
        the last one applied (a late retry never reverts the text). None when ``(source,
        external_id)`` was never stored. A waiting work item carrying the message picks
        the new text up when it is claimed."""
        ...

    async def get_customer(self, customer_id: str) -> Customer | None:
        """The record as stored; a merged customer comes back with ``merged_into``."""
        ...

    async def resolve_customer(self, customer_id: str) -> str | None:
        """Follow ``merged_into`` to the live customer; None when unknown."""
        ...

    async def find_customer(self, identity_key: str) -> str | None:
        """The live customer owning the *verified* identity ``kind:value``."""
        ...

    async def history(
        self, customer_id: str, *, limit: int, before: str | None = None
    ) -> HistoryPage:
        """Every message of the customer (all channels), newest ``sent_at`` first.

        ``before`` is a cursor from a previous page's ``next_before``. Raises
        ``NotFound`` for an unknown customer; ``InputError`` for a malformed cursor.
        """
        ...

    async def merge(
        self, winner_id: str, loser_id: str, *, at: datetime, reason: str
    ) -> MergeRecord:
        """Merge ``loser`` into ``winner`` atomically: identities, suggested links,
        history and conversations move; no message is lost or duplicated; the loser
        keeps ``merged_into``. ``NotFound`` if either is unknown, ``Conflict`` if they
        are the same live customer or either is already merged away."""
        ...

    async def merges(self, customer_id: str) -> list[MergeRecord]:
        """Merge records naming the customer, oldest first."""
        ...

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def contexts(
        self,
        messages: Sequence[NormalizedMessage],
        *,
        since: datetime,
        limit: int,
        reopen_window_s: float = 0.0,
    ) -> list[RoutingContext]:
        """What the rules need to know about each message's sender, one per message.

        The customer is the one ``ingest`` step 2 picks, without merging or creating anyone:
        the oldest (``created_at``, then id) live owner of the message's *verified*
        identities; with none owned, only a message with no verified identity at all and a
        thread gets the customer of the thread's conversation (as step 2 picks it) when it
        is open or pending, ``recorded_only``, or resolved at most ``reopen_window_s``
        before the message's ``received_at``, or (a message routed nowhere) in any state;
        else None (an empty context: ingest makes a new customer). ``reopen_window_s``
        stands for the window the message's ``IngestRequest`` will carry: pass the same one,
        or a message that would reopen a resolved conversation gets an empty context while
        ingest gives it that conversation's customer. ``recent`` holds the ``sent_at`` of
        that customer's stored messages with ``sent_at >= since``, newest first, at most
        ``limit``. ``last_agent`` is the agent of the customer's newest ``served_by``
        record."""
        ...

    async def update_conversation(
        self, conversation_id: str, update: ConversationUpdate
    ) -> Conversation:
        """Apply ``update`` atomically if the conversation's version is still
        ``update.expected_version``; returns the conversation after it (version + 1).

        ``Conflict`` when the version moved (re-read and try again), ``NotFound`` for
        an unknown conversation. In the same step: the item change (see ``ItemChange``;
        nothing when no item waits, except ``create_item_id``), timers disarmed then
        armed, and the ``served_by`` record. A conversation set ``resolved`` keeps its
        thread key, so a customer message within the reopen window finds it."""
        ...

    async def fire_timers(self, now: datetime, limit: int) -> list[Timer]:
        """Remove and return up to ``limit`` timers due at or before ``now``, earliest
        first. Atomic: across any number of processes each armed timer is returned to
        exactly one caller, once."""
        ...

    async def next_timer(self) -> datetime | None:
        """When the earliest armed timer is due; None when none is armed."""
        ...

    async def claim(
        self,
        queue: str,
        limit: int,
        *,
        now: datetime,
        lease_until: datetime | None,
        history_limit: int,
    ) -> list[ClaimedItem]:
        """Take up to ``limit`` items off the queue's backlog, most urgent first, and
        hold them as *released* until ``settle``. Atomic: two processes never claim the
        same item. With ``lease_until`` a released item not settled by then goes back
        to the backlog in ``requeue_expired``; with None it stays released until
        ``settle`` or ``requeue_released``. The conversation's waiting item is cleared,
        so its next message opens a new item. An item also offered in other queues
        (``ItemChange.also_offer``) leaves their backlogs too; ``BacklogItem.queue`` is
        the queue it was claimed from."""
        ...

    async def settle(self, item_ids: Sequence[str]) -> None:
        """Forget released items: the broker now holds them durably, or a tool acked."""
        ...

    async def requeue_expired(self, now: datetime) -> int:
        """Released items whose lease ended go back to their backlog; returns how many."""
        ...

    async def requeue_released(self) -> int:
        """Every released item goes back to its backlog (the embedded broker restarted)."""
        ...

    async def backlog_stats(
        self, *, at_risk_before: datetime | None = None
    ) -> dict[str, BacklogStats]:
        """Per queue with anything waiting or released: depth, oldest deadline, released,
        and with ``at_risk_before`` the waiting items due by then (``at_risk``)."""
        ...


# --- broker ---------------------------------------------------------------------------


class Delivery(Protocol):
    """One message handed to a consumer; settle it exactly once."""

    @property
    def body(self) -> bytes: ...

    @property
    def redelivered(self) -> bool: ...

    async def ack(self) -> None: ...

    async def nack(self, *, requeue: bool = True) -> None:
        """``requeue=False`` drops it (dead-letters it where the queue has one)."""
        ...


class Subscription(Protocol):
    """A consumer with ``prefetch`` unacked deliveries at most; iterate to receive."""

    def __aiter__(self) -> AsyncIterator[Delivery]: ...

    async def close(self) -> None:
        """Stop consuming; unacked deliveries go back to the queue."""
        ...


class QueueDepth(msgspec.Struct, kw_only=True):
    ready: int
    """Messages waiting for a consumer (not counting delivered, unacked ones)."""
    consumers: int


InboundHandler = Callable[[bytes], Awaitable[None]]
"""Stores one inbound message; raising leaves it for redelivery (or rejects it for
``router.errors.InputError``)."""


class Broker(Protocol):
    """Agent queues (``omniroute.queue.<name>``), the events exchange and inbound."""

    durable: bool
    """True when a published message survives this process (RabbitMQ)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the broker answers."""
        ...

    async def declare_queue(self, queue: str) -> None:
        """Make sure the agent queue for ``queue`` exists (durable on RabbitMQ)."""
        ...

    async def publish(self, queue: str, bodies: Sequence[tuple[str, bytes]]) -> None:
        """Publish ``(message_id, body)`` pairs to the agent queue in order; returns
        once every one is confirmed (persistent, publisher confirms)."""
        ...

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        """Publish to the topic exchange ``omniroute.events``."""
        ...

    async def depth(self, queue: str) -> QueueDepth: ...

    async def subscribe(self, queue: str, *, prefetch: int) -> Subscription: ...

    async def subscribe_events(self, pattern: str, *, prefetch: int = 100) -> Subscription:
        """A consumer of ``omniroute.events`` for routing keys matching the topic
        ``pattern`` (``sla.*``, ``#``); its queue goes away with the subscription."""
        ...

    async def publish_inbound(self, body: bytes) -> None:
        """Publish one canonical message JSON to ``omniroute.inbound``."""
        ...

    async def consume_inbound(self, handler: InboundHandler) -> None:
        """Feed every message published to ``omniroute.inbound`` to ``handler``; ack
        after it returns. Returns once consuming has started."""
        ...

    def on_settled(self, callback: Callable[[Sequence[str]], Awaitable[None]]) -> None:
        """Call ``callback(message_ids)`` when consumers ack or reject messages (the
        non-durable broker uses this to let the store forget released items)."""
        ...
