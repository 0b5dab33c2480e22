"""Just-in-time release from the backlog into the agent queues.

Each agent queue is kept shallow: at most ``dispatch.ready_depth`` items wait in it for
a consumer; everything else waits in the store's backlog in urgency order, where a
change of urgency still counts. Consumers with free capacity (prefetch) take released
items at once, so the ready count only builds up when every consumer is busy.

Per queue, a *lane* runs two stages, so claiming the next batch overlaps publishing the
last one:

- the claimer wakes when a message is queued (or every ``poll_ms``, to notice consumers
  draining the agent queue and work queued by other router processes), works out the
  room left (the lane's window minus the last known ready count minus items claimed
  since), claims that many most-urgent items atomically and hands the batch on;
- the publisher builds the work items, publishes each batch in order with confirms,
  then reads the queue's ready count and settles the batch in the store, together.

The window is how many items may be ready or in flight at once. It follows the rate
at which consumers drain the queue: ``release_horizon_ms`` worth of that rate (at
least ``ready_depth``, at most ``batch_max``), so whatever sits in the agent queue is
taken within about the horizon, and a change of urgency in the backlog (an escalation,
a new message, a transfer) reaches consumers within it too. The rate is measured from
the ready count after each publish; while consumers keep up the window may double
towards that cap, and each reading that finds more items waiting than that cap halves
it. A queue without any consumer gets a window of 0: nothing is released
into it, so its items stay in the backlog where escalation, transfer and overflow can
still move them; the lane looks again every ``poll_ms``.

Lanes are made on demand: a wake for a queue without one (an agent's personal queue,
an overflow target) starts it, and the lease sweeper starts one for any queue the
store reports items waiting in (queued by another router process).

Claims are atomic in the store, so any number of router processes dispatch from the same
backlog. A router that dies between claim and confirm leaves its items leased; the
sweeper returns them to the backlog when the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog

from router.clock import Clock
from router.errors import BackendUnavailable
from router.metrics import Metrics
from router.models import ClaimedItem
from router.ports import Broker, QueueDepth, Store
from router.settings import DispatchSettings
from router.workitem import build, encode

log = structlog.get_logger("router.dispatcher")

HANDOFF_BATCHES = 2
"""Batches claimed ahead of the publisher: enough to overlap, few enough to stay fresh."""
PUBLISHES_IN_FLIGHT = 4
"""Batches sent and waiting for their confirms at once, per queue."""
FULL_RECHECK_S = 0.01
"""How soon a lane whose agent queue was full looks at it again."""
RATE_SAMPLE_S = 0.05
"""Shortest interval a drain-rate sample is taken over."""
RATE_WEIGHT = 0.3
"""Weight of the newest sample in the drain rate's moving average."""


class _Lane:
    """The dispatch state of one queue."""

    def __init__(self, queue: str, window: int) -> None:
        self.queue = queue
        self.wake = asyncio.Event()
        self.window = window
        """How many items may be ready or in flight at once."""
        self.ready = 0
        """The agent queue's ready count at the last reading."""
        self.pending = 0
        """Items claimed since that reading (handed off, in flight or just published)."""
        self.handoff: asyncio.Queue[list[ClaimedItem] | None] = asyncio.Queue(HANDOFF_BATCHES)
        self.released = 0
        """Items this lane published, in total."""
        self.rate = 0.0
        """Items per second consumers take off the agent queue (moving average)."""
        self._drained = 0
        self._sampled_at = time.monotonic()

    def observe(self, ready: int) -> None:
        """Update the drain rate from a reading of the queue's ready count."""
        now = time.monotonic()
        elapsed = now - self._sampled_at
        if elapsed < RATE_SAMPLE_S:
            return
        drained = self.released - ready
        sample = max(drained - self._drained, 0) / elapsed
        self.rate += RATE_WEIGHT * (sample - self.rate)
        self._drained, self._sampled_at = drained, now


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        broker: Broker,
        clock: Clock,
        metrics: Metrics,
        settings: DispatchSettings,
        queues: tuple[str, ...],
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._metrics = metrics
        self._settings = settings
        self._queues = queues
        self._lanes: dict[str, _Lane] = {}
        self._stopping = asyncio.Event()
        self._started = False
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, queue: str) -> None:
        lane = self._lanes.get(queue)
        if lane is not None:
            lane.wake.set()
        elif self._started and not self._stopping.is_set():
            self._spawn(self._open_lane(queue), f"dispatch:{queue}:open")

    async def start(self) -> None:
        for queue in self._queues:
            await self._broker.declare_queue(queue)
        if not self._broker.durable:
            requeued = await self._store.requeue_released()
            if requeued:
                log.info("dispatch.requeued_after_restart", items=requeued)
        for queue in self._queues:
            self._add_lane(queue)
        self._started = True
        await self._open_waiting_lanes()
        self._spawn(self._sweep(), "dispatch:leases")

    def _add_lane(self, queue: str) -> _Lane:
        lane = self._lanes[queue] = _Lane(queue, 0)  # until a reading finds consumers
        self._spawn(self._claimer(lane), f"dispatch:{queue}:claim")
        self._spawn(self._publisher(lane), f"dispatch:{queue}:publish")
        return lane

    async def _open_lane(self, queue: str) -> None:
        """A lane for a queue first seen now (a personal or overflow queue)."""
        try:
            await self._broker.declare_queue(queue)
        except BackendUnavailable as exc:
            log.warning("dispatch.declare_failed", queue=queue, error=exc.message)
            return  # the sweeper tries again while items wait there
        if queue not in self._lanes and not self._stopping.is_set():
            log.info("dispatch.lane_opened", queue=queue)
            self._add_lane(queue)
        self._lanes[queue].wake.set()

    async def _open_waiting_lanes(self) -> None:
        with contextlib.suppress(BackendUnavailable):
            for queue in await self._store.backlog_stats():
                if queue not in self._lanes:
                    await self._open_lane(queue)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop claiming, publish what is already claimed, then end.

        A stop flag rather than cancellation: on Python 3.11 ``wait_for`` can swallow a
        cancel that lands as its inner wait completes, and a loop would run on."""
        self._stopping.set()
        for lane in self._lanes.values():
            lane.wake.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(list(self._tasks), timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        self._tasks = []

    # --- claiming -----------------------------------------------------------------

    async def _claimer(self, lane: _Lane) -> None:
        poll_s = self._settings.poll_ms / 1000
        try:
            await self._refresh(lane)
            while not self._stopping.is_set():
                lane.wake.clear()
                outcome = await self._claim_round(lane)
                if outcome == "more":
                    continue  # there may be more waiting: go again at once
                if outcome == "full":
                    # Waiting for consumers to drain, not for new messages (which keep
                    # waking us under load): look at the queue again shortly.
                    await self._pause(min(poll_s, FULL_RECHECK_S) if lane.window else poll_s)
                    await self._refresh(lane)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), poll_s)
        finally:
            await lane.handoff.put(None)

    async def _claim_round(self, lane: _Lane) -> str:
        """Claim as many items as the agent queue has room for: ``more`` if it filled
        the room, ``full`` if there was none, ``idle`` otherwise."""
        room = lane.window - lane.ready - lane.pending
        if room <= 0:
            return "full"
        room = min(room, max(lane.window // HANDOFF_BATCHES, 1), self._settings.batch_max)
        try:
            claimed = await self._claim(lane.queue, room)
        except BackendUnavailable as exc:
            log.warning("dispatch.claim_failed", queue=lane.queue, error=exc.message)
            return "idle"
        except Exception:  # a bug must not stop dispatching: log it, retry next round
            log.exception("dispatch.claim_failed", queue=lane.queue)
            return "idle"
        if not claimed:
            return "idle"
        lane.pending += len(claimed)
        await lane.handoff.put(claimed)
        return "more" if len(claimed) == room else "idle"

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _claim(self, queue: str, limit: int) -> list[ClaimedItem]:
        now = self._clock.now()
        lease = now + timedelta(seconds=self._settings.lease_s) if self._broker.durable else None
        return await self._store.claim(
            queue, limit, now=now, lease_until=lease, history_limit=self._settings.history_limit
        )

    async def _refresh(self, lane: _Lane) -> None:
        if lane.pending:
            return  # the publisher reads the depth after each batch
        with contextlib.suppress(BackendUnavailable):
            depth = await self._broker.depth(lane.queue)
            lane.ready = depth.ready
            lane.observe(lane.ready)
            if not depth.consumers:
                lane.window = 0
            elif not lane.window:
                lane.window = self._settings.ready_depth

    # --- publishing ---------------------------------------------------------------

    async def _publisher(self, lane: _Lane) -> None:
        """Publish batches in claim order without waiting for one batch's confirms
        before sending the next (a confirm can take a disk write)."""
        inflight: set[asyncio.Task[None]] = set()
        while (claimed := await lane.handoff.get()) is not None:
            task = asyncio.create_task(self._confirmed(lane, claimed))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            await asyncio.sleep(0)  # the task sends its batch before the next is taken
            while len(inflight) >= PUBLISHES_IN_FLIGHT:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
        if inflight:
            await asyncio.wait(inflight)

    async def _confirmed(self, lane: _Lane, claimed: list[ClaimedItem]) -> None:
        try:
            await self._publish_until_done(lane, claimed)
        finally:
            lane.pending -= len(claimed)
            lane.wake.set()

    async def _publish_until_done(self, lane: _Lane, claimed: list[ClaimedItem]) -> None:
        """Publish a claimed batch, retrying while the broker is away: the items are ours
        (leased), and giving up would strand them until the lease ends."""
        backoff_s = 0.05
        while True:
            try:
                await self._publish(lane, claimed)
                return
            except BackendUnavailable as exc:
                log.warning(
                    "dispatch.publish_failed",
                    queue=lane.queue,
                    items=len(claimed),
                    error=exc.message,
                    retry_in_s=backoff_s,
                )
            except Exception:  # a bug must not stop dispatching; the lease returns them
                log.exception("dispatch.publish_failed", queue=lane.queue)
                return
            if self._stopping.is_set():
                return  # leased: the sweeper of a running router returns them to the backlog
            await self._pause(backoff_s)
            backoff_s = min(backoff_s * 2, 2.0)

    async def _publish(self, lane: _Lane, claimed: list[ClaimedItem]) -> None:
        now = self._clock.now()
        bodies = [(c.item.item_id, encode(build(c, released_at=now))) for c in claimed]
        await self._broker.publish(lane.queue, bodies)
        depth, _ = await asyncio.gather(self._broker.depth(lane.queue), self._settle(bodies))
        lane.released += len(bodies)
        lane.ready = depth.ready  # includes this batch; later claims are still pending
        lane.observe(depth.ready)
        self._adapt(lane, depth)
        self._metrics.released.labels(lane.queue).inc(len(bodies))
        for c in claimed:
            waited_s = (now - c.message.received_at).total_seconds()
            self._metrics.release_latency.observe(max(waited_s, 0.0))
        log.debug("dispatch.released", queue=lane.queue, items=len(bodies))

    def _adapt(self, lane: _Lane, depth: QueueDepth) -> None:
        floor = self._settings.ready_depth
        horizon_s = self._settings.release_horizon_ms / 1000
        cap = min(max(math.ceil(lane.rate * horizon_s), floor), self._settings.batch_max)
        if not depth.consumers:
            lane.window = 0
        elif depth.ready > cap:  # more waits than consumers take within the horizon
            lane.window = max(min(lane.window // 2, cap), floor)
        else:
            lane.window = min(lane.window * 2, cap)

    async def _settle(self, bodies: list[tuple[str, bytes]]) -> None:
        if self._broker.durable:  # the broker holds them now; else a consumer's ack settles
            await self._store.settle([item_id for item_id, _ in bodies])

    # --- leases -------------------------------------------------------------------

    async def _sweep(self) -> None:
        """Released items whose publish never got confirmed (a router died between
        claim and confirm, or the broker failed) go back to the backlog when their
        lease ends."""
        interval_s = self._settings.lease_s / 2
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)
                return
            try:
                requeued = await self._store.requeue_expired(self._clock.now())
            except BackendUnavailable as exc:
                log.warning("dispatch.sweep_failed", error=exc.message)
                continue
            if requeued:
                log.warning("dispatch.leases_expired", items=requeued)
                for lane in self._lanes.values():
                    lane.wake.set()
            await self._open_waiting_lanes()
