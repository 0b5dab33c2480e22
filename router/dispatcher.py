"""Just-in-time release from the backlog into the agent queues.

Each agent queue is kept shallow (``dispatch.ready_depth`` items ready); everything else
waits in the store's backlog in urgency order. A dispatcher task per queue wakes when
a message is queued (or every ``poll_ms``, to see consumers drain the agent queue and
to pick up work queued by other router processes), claims as many items as the agent
queue has room for, publishes them with confirms and settles them. Claims are atomic in
the store, so any number of router processes can dispatch from the same backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from router.clock import Clock
from router.errors import BackendUnavailable
from router.metrics import Metrics
from router.models import ClaimedItem
from router.ports import Broker, Store
from router.settings import DispatchSettings
from router.workitem import build, encode

log = structlog.get_logger("router.dispatcher")


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
        self._wake = {queue: asyncio.Event() for queue in queues}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, queue: str) -> None:
        event = self._wake.get(queue)
        if event is not None:
            event.set()

    async def start(self) -> None:
        for queue in self._wake:
            await self._broker.declare_queue(queue)
        if not self._broker.durable:
            requeued = await self._store.requeue_released()
            if requeued:
                log.info("dispatch.requeued_after_restart", items=requeued)
        self._tasks = [asyncio.create_task(self._run(q), name=f"dispatch:{q}") for q in self._wake]
        self._tasks.append(asyncio.create_task(self._sweep(), name="dispatch:leases"))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Let each task finish its round (a release in flight completes), then end.

        A stop flag rather than cancellation: on Python 3.11 ``wait_for`` can swallow a
        cancel that lands as its inner wait completes, and the loop would run on."""
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        self._tasks = []

    async def _run(self, queue: str) -> None:
        wake = self._wake[queue]
        poll_s = self._settings.poll_ms / 1000
        while not self._stopping.is_set():
            wake.clear()
            try:
                full = await self.release(queue)
            except BackendUnavailable as exc:
                log.warning("dispatch.backend_unavailable", queue=queue, error=exc.message)
                full = False
            except Exception:  # a bug must not stop dispatching: log it, retry next round
                log.exception("dispatch.failed", queue=queue)
                full = False
            if full:
                continue  # the backlog may hold more than one batch: go again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_s)

    async def release(self, queue: str) -> bool:
        """One round: fill the agent queue up to its ready depth. True when it released
        as many items as there was room for (there may be more waiting)."""
        depth = await self._broker.depth(queue)
        room = min(self._settings.ready_depth - depth.ready, self._settings.batch_max)
        if room <= 0:
            return False
        now = self._clock.now()
        lease = now + timedelta(seconds=self._settings.lease_s) if self._broker.durable else None
        claimed = await self._store.claim(
            queue, room, now=now, lease_until=lease, history_limit=self._settings.history_limit
        )
        if claimed:
            await self._publish(queue, claimed)
        return len(claimed) == room

    async def _publish(self, queue: str, claimed: list[ClaimedItem]) -> None:
        now = self._clock.now()
        bodies = [(c.item.item_id, encode(build(c, released_at=now))) for c in claimed]
        await self._broker.publish(queue, bodies)
        if self._broker.durable:
            await self._store.settle([item_id for item_id, _ in bodies])
        self._metrics.released.labels(queue).inc(len(bodies))
        for c in claimed:
            waited_s = (now - c.message.received_at).total_seconds()
            self._metrics.release_latency.observe(max(waited_s, 0.0))
        log.debug("dispatch.released", queue=queue, items=len(bodies))

    async def _sweep(self) -> None:
        """Released items whose publish never got confirmed (a router died between
        claim and confirm) go back to the backlog when their lease ends."""
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
                for queue in self._wake:
                    self.wake(queue)
