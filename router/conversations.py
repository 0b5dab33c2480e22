"""Conversation changes after a message is stored: agent events, a customer's next
message, and escalation timers.

Each change is read → decide (``router.lifecycle``, pure) → compare-and-set
(``Store.update_conversation`` on the version read). A version that moved in between
(another router, another event) means read and decide again. Once a change is stored,
its events go to ``omniroute.events`` and the queues it touched are woken.

``Escalations`` fires the timers: every ``TICK_S`` (sooner when the earliest armed
timer says so) it takes the due ones off the store (atomically: each goes to one
router, once) and applies each. A timer is therefore late by at most a tick plus the
time to apply the timers due before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import msgspec
import structlog

from router import lifecycle
from router.background import Loop
from router.clock import Clock
from router.errors import BackendUnavailable, Conflict, NotFound
from router.ids import new_id
from router.lifecycle import AgentEvent, LifecycleConfig, Outcome
from router.metrics import Metrics
from router.models import Conversation, IngestResult, Timer
from router.ports import Broker, Store

log = structlog.get_logger("router.conversations")

MAX_ATTEMPTS = 20
"""Compare-and-set attempts before giving up (only under heavy contention)."""
TICK_S = 0.2
"""Longest a timer waits to be noticed: a timer armed by another router is seen on the
next tick."""
FIRE_BATCH = 500
FIRE_CONCURRENCY = 50
"""Timers applied at once (each is a read, a compare-and-set and a publish)."""

_encoder = msgspec.json.Encoder()
Decide = Callable[[Conversation], Outcome]


class Conversations:
    def __init__(
        self,
        *,
        store: Store,
        broker: Broker,
        clock: Clock,
        config: LifecycleConfig,
        metrics: Metrics,
        on_queued: Callable[[str], None],
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._config = config
        self._metrics = metrics
        self._on_queued = on_queued

    async def event(self, conversation_id: str, event: AgentEvent) -> Conversation:
        """Apply an agent event; ``NotFound``, ``Conflict`` (impossible now) or the
        input errors of ``lifecycle.on_event``."""
        item_id = new_id("itm")
        updated = await self._change(
            conversation_id,
            lambda conv: lifecycle.on_event(
                conv, event, self._config, self._clock.now(), new_item_id=item_id
            ),
        )
        log.info(
            "conversation.event",
            conversation_id=conversation_id,
            type=event.type,
            state=updated.state,
            queue=updated.queue,
        )
        return updated

    async def customer_message(self, result: IngestResult, new_item: bool) -> None:
        """Move the clocks of an existing conversation a customer wrote to again
        (``new_item``: the message opened a new backlog item for it).

        The message is stored already: a failure here is logged, not raised, so the
        connector is not told to send it again."""
        if result.duplicate or result.conversation_created:
            return
        now = self._clock.now()
        try:
            await self._change(
                result.conversation_id,
                lambda conv: lifecycle.on_customer_message(
                    conv, self._config, now, reopened=result.reopened, new_item=new_item
                ),
            )
        except BackendUnavailable as exc:
            log.warning(
                "conversation.clocks_not_moved",
                conversation_id=result.conversation_id,
                error=exc.message,
            )

    async def fire(self, timer: Timer) -> None:
        now = self._clock.now()
        try:
            await self._change(
                timer.conversation_id,
                lambda conv: lifecycle.on_timer(conv, timer, self._config, now),
            )
        except NotFound:
            log.warning("timer.orphaned", kind=timer.kind, conversation_id=timer.conversation_id)
            return
        self._metrics.timers_fired.labels(timer.kind).inc()
        lateness = (self._clock.now() - timer.at).total_seconds()
        self._metrics.timer_lateness.observe(max(lateness, 0.0))

    async def _change(self, conversation_id: str, decide: Decide) -> Conversation:
        for _ in range(MAX_ATTEMPTS):
            conv = await self._store.get_conversation(conversation_id)
            if conv is None:
                raise NotFound(f"no conversation {conversation_id!r}")
            outcome = decide(conv)
            if outcome.update is None:
                return conv
            try:
                updated = await self._store.update_conversation(conversation_id, outcome.update)
            except Conflict:
                continue  # the version moved since we read it: read and decide again
            await self._after(conv, updated, outcome)
            return updated
        raise BackendUnavailable(f"conversation {conversation_id!r} kept changing; try again")

    async def _after(self, before: Conversation, after: Conversation, outcome: Outcome) -> None:
        for event in outcome.events:
            try:
                await self._broker.publish_event(event.routing_key, _encoder.encode(event.payload))
            except BackendUnavailable as exc:  # the change is stored; the event is lost
                log.warning(
                    "event.publish_failed", routing_key=event.routing_key, error=exc.message
                )
            self._metrics.events.labels(event.routing_key).inc()
        item = outcome.update.item if outcome.update else None
        queues = {after.queue}
        if item is not None:
            queues |= {q for q in (item.move_to, item.also_offer) if q}
        if after.item_id is not None or (item is not None and item.create_item_id):
            for queue in queues:
                self._on_queued(queue)
        if before.queue != after.queue:
            log.info(
                "conversation.moved",
                conversation_id=after.conversation_id,
                from_queue=before.queue,
                to_queue=after.queue,
            )


class Escalations:
    """The timer loop of one router process."""

    def __init__(self, *, store: Store, conversations: Conversations, clock: Clock) -> None:
        self._store = store
        self._conversations = conversations
        self._clock = clock
        self._loop = Loop("escalations", self._tick, retry_s=TICK_S)

    async def fire_due(self, now: datetime | None = None) -> int:
        """Fire every timer due by ``now``; returns how many fired."""
        fired = 0
        while True:
            due = await self._store.fire_timers(now or self._clock.now(), FIRE_BATCH)
            # Applied concurrently (each is a few round trips): a burst of timers due at
            # once, such as every clock of a queue at opening time, is not applied one
            # round trip after another. Two timers of one conversation meet at its
            # compare-and-set, and the second one re-reads.
            for start in range(0, len(due), FIRE_CONCURRENCY):
                await asyncio.gather(
                    *(self._fire(t) for t in due[start : start + FIRE_CONCURRENCY])
                )
            fired += len(due)
            if len(due) < FIRE_BATCH:
                return fired

    async def _fire(self, timer: Timer) -> None:
        try:
            await self._conversations.fire(timer)
        except BackendUnavailable as exc:
            log.warning("timer.failed", kind=timer.kind, error=exc.message)
        except Exception:  # a bug must not stop escalation
            log.exception("timer.failed", kind=timer.kind)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _tick(self) -> float:
        await self.fire_due()
        return await self._wait_s()

    async def _wait_s(self) -> float:
        upcoming = await self._store.next_timer()
        if upcoming is None:
            return TICK_S
        return min(max((upcoming - self._clock.now()).total_seconds(), 0.0), TICK_S)
