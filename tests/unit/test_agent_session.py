"""An agent session subscribes each queue once, even when its socket's presence frame
and the lease sweeper follow the agent's queues at the same moment."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from router.agents import Agents
from router.backends.memory_broker import MemoryBroker
from router.backends.memory_presence import MemoryPresence
from router.clock import ManualClock
from router.ports import Subscription
from router.presence import PresenceIn
from router.settings import AgentsSettings


class SlowSubscribe:
    """A broker whose subscribe takes a round trip, as RabbitMQ's does."""

    def __init__(self, inner: MemoryBroker) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.opened: list[Subscription] = []

    async def subscribe(self, queue: str, *, prefetch: int) -> Subscription:
        self.calls.append(queue)
        await asyncio.sleep(0)  # let the other caller in, as a network wait would
        subscription = await self.inner.subscribe(queue, prefetch=prefetch)
        self.opened.append(subscription)
        return subscription

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class QuietSocket:
    async def send_item(self, body: bytes, *, redelivered: bool) -> None: ...

    async def send_heartbeat(self, lease_until: datetime) -> None: ...

    async def close(self, *, code: int, reason: str) -> None: ...


async def test_concurrent_follows_subscribe_each_queue_once_and_finish_closes_all() -> None:
    inner = MemoryBroker()
    await inner.open()
    broker = SlowSubscribe(inner)
    agents = Agents(
        presence=MemoryPresence(),
        broker=broker,  # type: ignore[arg-type]
        clock=ManualClock(),
        settings=AgentsSettings(),
        queues=["default"],
    )
    session = await agents.open_session("ana", QuietSocket())  # type: ignore[arg-type]
    await session.start()
    await asyncio.gather(
        agents.announce("ana", PresenceIn(status="available", queues=["default"])),
        agents.sweep(),
    )
    assert sorted(broker.calls) == ["agent.ana", "default"]
    await session.finish()
    await inner.close()
