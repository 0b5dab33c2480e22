"""The ingest pipeline: validate → normalize identities → decide (policy) → store
(dedupe, identity, thread, history, backlog in one atomic step per message) → wake the
dispatcher. Connectors and the inbound AMQP consumer both enter through ``Ingestor``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
import structlog

from router.batching import Batcher
from router.clock import Clock
from router.errors import InputError, InvalidMessage
from router.identity import normalize_all
from router.ids import new_suffix
from router.metrics import Metrics
from router.models import (
    Decision,
    InboundMessage,
    IngestRequest,
    IngestResult,
    NormalizedMessage,
    RoutingContext,
)
from router.ports import Store
from router.queue_spec import QueueSpec
from router.routing import Policy

if TYPE_CHECKING:
    from prometheus_client import Counter

log = structlog.get_logger("router.pipeline")

_decoder = msgspec.json.Decoder(InboundMessage)


def decode_message(body: bytes) -> InboundMessage:
    """Parse one canonical message; ``InvalidMessage`` says what is wrong with it."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidMessage(f"message does not fit the canonical model: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}") from None


def normalize(
    message: InboundMessage, *, received_at: datetime, default_region: str | None
) -> NormalizedMessage:
    """Normalize identities and stamp the receipt time; ``InvalidMessage`` when the
    message could be attached to no one."""
    identities = normalize_all(message.sender.identities, default_region=default_region)
    if not identities and message.thread is None:
        raise InvalidMessage(
            "message needs at least one sender identity or a thread to attach it to"
        )
    return NormalizedMessage(
        channel=message.channel,
        source=message.source,
        external_id=message.external_id,
        sender_name=message.sender.name,
        identities=identities,
        customer_attributes=message.sender.attributes,
        thread=message.thread,
        subject=message.subject,
        text=message.text,
        sent_at=message.sent_at or received_at,
        received_at=received_at,
        attachments=tuple(message.attachments),
        attributes=(
            message.attributes | {"inbox": message.inbox} if message.inbox else message.attributes
        ),
        kind=message.kind,
        inbox=message.inbox,
    )


def request(
    message: NormalizedMessage,
    decision: Decision,
    *,
    suffix: str | None = None,
    reopen_window_s: float = 0.0,
) -> IngestRequest:
    """The store request for a message: one id suffix, from which the ids of everything
    the message may create derive (it creates at most one of each)."""
    suffix = suffix or new_suffix()
    return IngestRequest(
        message=message,
        decision=decision,
        message_id=f"msg_{suffix}",
        new_customer_id=f"cus_{suffix}",
        new_conversation_id=f"con_{suffix}",
        new_item_id=f"itm_{suffix}",
        reopen_window_s=reopen_window_s,
    )


def may_move_clocks(
    result: IngestResult, new_item: bool, overflow_queues: Collection[str] | None = None
) -> bool:
    """Whether ``on_stored`` (read the conversation, ``lifecycle.on_customer_message``)
    can change anything after this message, judged from the ingest result alone.

    It cannot when the conversation was already open (no paused clocks to resume), was
    not reopened (no resolution clock to restart), still owes a response (a running or
    paused first- or next-response clock, so no next-response clock starts) and got no
    new backlog item whose queue arms an overflow timer: then the read would only find
    nothing to change, and skipping it saves a store round trip on the commonest
    follow-up. The hint is False when unknown (no SLA, or stored before the hint
    existed), which keeps the read. ``overflow_queues`` (``timed_overflow_queues``):
    None when not known, so every new item is read for its overflow timer."""
    timed_item = new_item and (overflow_queues is None or result.queue in overflow_queues)
    skippable = (
        result.previous_state == "open"
        and result.awaiting_response
        and not result.reopened
        and not timed_item
    )
    return not skippable


def timed_overflow_queues(queues: Mapping[str, QueueSpec]) -> frozenset[str]:
    """The queues whose new items get an overflow timer (``lifecycle.overflow_timers``);
    the new item of a message in any other queue needs nothing after the ingest."""
    return frozenset(
        name
        for name, spec in queues.items()
        if spec.overflow is not None and spec.overflow.after_s is not None
    )


CONTEXT_RECENT_LIMIT = 100
"""Most recent-message times read for the rules' repeat-contact conditions."""


class Ingestor:
    def __init__(
        self,
        *,
        store: Store,
        policy: Policy,
        clock: Clock,
        metrics: Metrics,
        default_region: str | None,
        batch_max: int,
        reopen_window_s: float,
        on_queued: Callable[[str], None],
        on_merged: Callable[[IngestResult], None],
        on_stored: Callable[[IngestResult, bool], Awaitable[None]] | None = None,
        overflow_queues: Collection[str] | None = None,
    ) -> None:
        """``overflow_queues``: ``timed_overflow_queues`` of the configured queues, so
        a follow-up queueing a new item elsewhere skips ``on_stored`` (None: unknown)."""
        self._store = store
        self._policy = policy
        self._clock = clock
        self._metrics = metrics
        self._region = default_region
        self._reopen_window_s = reopen_window_s
        self._on_queued = on_queued
        self._on_merged = on_merged
        self._on_stored = on_stored
        self._overflow_queues = overflow_queues
        self._counters: dict[tuple[str, str], Counter] = {}
        self._batcher: Batcher[IngestRequest, IngestResult] = Batcher(
            store.ingest, max_batch=batch_max
        )
        self._contexts: Batcher[NormalizedMessage, RoutingContext] = Batcher(
            self._read_contexts, max_batch=batch_max
        )

    async def _read_contexts(self, messages: Sequence[NormalizedMessage]) -> list[RoutingContext]:
        since = self._clock.now() - timedelta(seconds=self._policy.context_window_s)
        return await self._store.contexts(
            messages,
            since=since,
            limit=CONTEXT_RECENT_LIMIT,
            reopen_window_s=self._reopen_window_s,
        )

    def normalize(self, message: InboundMessage) -> NormalizedMessage:
        return normalize(message, received_at=self._clock.now(), default_region=self._region)

    async def ingest_json(self, body: bytes) -> IngestResult:
        """Decode one canonical message and ingest it (HTTP and AMQP connectors)."""
        try:
            message = decode_message(body)
        except InputError:
            self._count("unknown", "rejected")
            raise
        return await self.ingest(message)

    async def ingest(self, message: InboundMessage) -> IngestResult:
        """Store one message durably; raises ``InputError`` for bad input and
        ``BackendUnavailable`` when it could not be stored."""
        started = time.perf_counter()
        if message.references or message.conversation_hint:
            message = await self._threaded(message)
        try:
            normalized = self.normalize(message)
        except InvalidMessage:
            self._count(message.channel, "rejected")
            raise
        context = (
            await self._contexts.submit(normalized)
            if self._policy.needs_context
            else RoutingContext()
        )
        suffix = new_suffix()
        decision = self._policy.decide(
            normalized, context, conversation_id=f"con_{suffix}", item_id=f"itm_{suffix}"
        )
        result = await self._batcher.submit(
            request(normalized, decision, suffix=suffix, reopen_window_s=self._reopen_window_s)
        )
        new_item = result.item_id == f"itm_{suffix}"
        if (
            self._on_stored is not None
            and result.routed
            and may_move_clocks(result, new_item, self._overflow_queues)
        ):
            await self._on_stored(result, new_item)
        self._after(normalized, result, started)
        return result

    async def _threaded(self, message: InboundMessage) -> InboundMessage:
        """The message on the thread it answers: the thread of its first stored reference,
        else of the conversation its token names (same source), else its own."""
        thread = None
        if message.references:
            thread = await self._store.find_thread(message.source, message.references)
        if thread is None and message.conversation_hint:
            hinted = await self._store.get_conversation(message.conversation_hint)
            if hinted is not None and hinted.source == message.source:
                thread = hinted.thread
        if thread is None or thread == message.thread:
            return message
        return msgspec.structs.replace(message, thread=thread)

    def _after(self, message: NormalizedMessage, result: IngestResult, started: float) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        outcome = "duplicate" if result.duplicate else "accepted" if result.routed else "recorded"
        self._count(message.channel, outcome)
        if result.duplicate:
            log.info("message.duplicate", message_id=result.message_id, source=message.source)
            return
        if not result.routed:
            log.info(
                "message.recorded",
                message_id=result.message_id,
                conversation_id=result.conversation_id,
                channel=message.channel,
                kind=message.kind,
            )
            return
        self._metrics.ingest_latency.observe(latency_ms / 1000)
        log.info(
            "message.routed",
            message_id=result.message_id,
            conversation_id=result.conversation_id,
            customer_id=result.customer_id,
            channel=message.channel,
            queue=result.queue,
            priority=result.priority,
            deadline=result.deadline.isoformat(),
            latency_ms=round(latency_ms, 2),
        )
        if result.merged:
            self._on_merged(result)
        self._on_queued(result.queue)

    def _count(self, channel: str, outcome: str) -> None:
        """``messages{channel, outcome}`` += 1, the labelled child kept (``labels()``
        costs a lock and a lookup on every message)."""
        key = (channel, outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._metrics.messages.labels(channel, outcome)
        counter.inc()

    async def close(self) -> None:
        await self._batcher.close()
        await self._contexts.close()
