"""The dispatcher on the embedded implementations: shallow queues, urgency order, and a
window that grows only while consumers keep up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from router.backends.memory_broker import MemoryBroker
from router.backends.sqlite_store import SqliteStore
from router.clock import ManualClock
from router.dispatcher import Dispatcher
from router.metrics import Metrics
from router.models import Decision, IdentityIn, InboundMessage, IngestRequest, Sender
from router.pipeline import normalize
from router.pipeline import request as pipeline_request
from router.settings import DispatchSettings

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SETTINGS = DispatchSettings(ready_depth=4, poll_ms=10, batch_max=64)


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, MemoryBroker, Dispatcher]]:
    store, broker = SqliteStore(tmp_path / "s.sqlite3"), MemoryBroker()
    await store.open()
    await broker.open()
    broker.on_settled(store.settle)
    dispatcher = Dispatcher(
        store=store,
        broker=broker,
        clock=ManualClock(START),
        metrics=Metrics(),
        settings=SETTINGS,
        queues=("q",),
    )
    yield store, broker, dispatcher
    await dispatcher.stop()
    await broker.close()
    await store.close()


def request(i: int, deadline_min: int) -> IngestRequest:
    message = InboundMessage(
        channel="chat",
        source="s",
        external_id=f"e{i}",
        sender=Sender(identities=[IdentityIn(kind="chat_visitor", value=f"v{i}", verified=True)]),
        thread=f"t{i}",
        text="hi",
    )
    normalized = normalize(message, received_at=START, default_region=None)
    deadline = START + timedelta(minutes=deadline_min)
    return pipeline_request(normalized, Decision(queue="q", priority=3, deadline=deadline))


async def test_without_consumers_nothing_leaves_the_backlog(
    parts: tuple[SqliteStore, MemoryBroker, Dispatcher],
) -> None:
    store, broker, dispatcher = parts
    await store.ingest([request(i, deadline_min=60 - i) for i in range(20)])
    await dispatcher.start()
    for _ in range(5):  # several rounds of the claimer (poll_ms is 10 ms)
        dispatcher.wake("q")
        await asyncio.sleep(SETTINGS.poll_ms / 1000)
    assert (await broker.depth("q")).ready == 0
    assert (await store.backlog_stats())["q"].depth == 20


async def test_a_consumer_receives_everything_most_urgent_first(
    parts: tuple[SqliteStore, MemoryBroker, Dispatcher],
) -> None:
    store, broker, dispatcher = parts
    await store.ingest([request(i, deadline_min=200 - i) for i in range(150)])
    await dispatcher.start()
    subscription = await broker.subscribe("q", prefetch=1)
    deadlines = []
    async for delivery in subscription:
        deadlines.append(msgspec.json.decode(delivery.body)["deadline"])
        await delivery.ack()
        if len(deadlines) == 150:
            break
    await subscription.close()
    # Nothing was released before the consumer came: every item is the most urgent left.
    assert deadlines == sorted(deadlines)
    lane = dispatcher._lanes["q"]
    assert lane.window > SETTINGS.ready_depth
