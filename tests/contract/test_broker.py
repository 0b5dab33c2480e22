"""The ``Broker`` contract, run against ``MemoryBroker`` and ``AmqpBroker`` (real
RabbitMQ, a vhost per test run). No test waits for time to pass: where a test must show
that something is *not* delivered it asks ``depth`` or publishes a marker behind it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from router.backends.amqp_broker import AmqpBroker, AmqpDelivery
from router.backends.memory_broker import MemoryBroker, MemoryDelivery, topic_matches
from router.errors import BackendUnavailable, Conflict, InputError
from router.ports import Broker, Delivery, QueueDepth, Subscription

RECEIVE_TIMEOUT_S = 10.0


async def take(subscription: Subscription, count: int) -> list[Delivery]:
    """The next ``count`` deliveries; fails the test instead of hanging."""
    iterator = aiter(subscription)

    async def receive() -> list[Delivery]:
        return [await anext(iterator) for _ in range(count)]

    return await asyncio.wait_for(receive(), RECEIVE_TIMEOUT_S)


async def take_one(subscription: Subscription) -> Delivery:
    [delivery] = await take(subscription, 1)
    return delivery


def message_id(delivery: Delivery) -> str:
    """Both implementations expose the AMQP message id (the port does not)."""
    assert isinstance(delivery, MemoryDelivery | AmqpDelivery)
    return delivery.message_id


def batch(count: int, tag: str = "m") -> list[tuple[str, bytes]]:
    return [(f"{tag}{i}-{uuid.uuid4().hex[:6]}", f'{{"n": {i}}}'.encode()) for i in range(count)]


async def test_publish_then_subscribe_receives_in_order(broker: Broker, queue_name: str) -> None:
    bodies = batch(3)
    await broker.publish(queue_name, bodies)
    subscription = await broker.subscribe(queue_name, prefetch=10)
    received = await take(subscription, 3)
    assert [(message_id(d), d.body) for d in received] == bodies
    assert not any(d.redelivered for d in received)
    for delivery in received:
        await delivery.ack()
    await subscription.close()


async def test_ack_removes_the_message(broker: Broker, queue_name: str) -> None:
    await broker.publish(queue_name, batch(2))
    subscription = await broker.subscribe(queue_name, prefetch=10)
    for delivery in await take(subscription, 2):
        await delivery.ack()
    await subscription.close()
    assert (await broker.depth(queue_name)).ready == 0

    marker = batch(1, "marker")
    await broker.publish(queue_name, marker)
    again = await broker.subscribe(queue_name, prefetch=10)
    first = await take_one(again)
    assert message_id(first) == marker[0][0]
    await again.close()


async def test_settling_twice_is_a_conflict(broker: Broker, queue_name: str) -> None:
    await broker.publish(queue_name, batch(1))
    subscription = await broker.subscribe(queue_name, prefetch=1)
    delivery = await take_one(subscription)
    await delivery.ack()
    with pytest.raises(Conflict):
        await delivery.ack()
    with pytest.raises(Conflict):
        await delivery.nack(requeue=True)
    await subscription.close()


async def test_nack_with_requeue_redelivers(broker: Broker, queue_name: str) -> None:
    first, second = batch(2)
    await broker.publish(queue_name, [first, second])
    subscription = await broker.subscribe(queue_name, prefetch=1)
    delivery = await take_one(subscription)
    await delivery.nack(requeue=True)

    again = await take_one(subscription)
    assert (message_id(again), again.body, again.redelivered) == (*first, True)
    await again.ack()
    after = await take_one(subscription)
    assert (message_id(after), after.redelivered) == (second[0], False)
    await after.ack()
    await subscription.close()


async def test_closing_returns_unacked_to_another_subscriber(
    broker: Broker, queue_name: str
) -> None:
    bodies = batch(3)
    await broker.publish(queue_name, bodies)
    first = await broker.subscribe(queue_name, prefetch=3)
    acked, unacked = await take(first, 2)
    await acked.ack()
    await first.close()

    second = await broker.subscribe(queue_name, prefetch=3)
    received = await take(second, 2)
    assert [message_id(d) for d in received] == [bodies[1][0], bodies[2][0]]
    assert received[0].body == unacked.body
    assert received[0].redelivered
    await second.close()


async def test_prefetch_limits_unacked_deliveries(broker: Broker, queue_name: str) -> None:
    bodies = batch(5)
    await broker.publish(queue_name, bodies)
    subscription = await broker.subscribe(queue_name, prefetch=2)
    one, two = await take(subscription, 2)
    assert [message_id(one), message_id(two)] == [bodies[0][0], bodies[1][0]]
    # The broker still holds the other three: none of them went to the subscriber.
    assert await broker.depth(queue_name) == QueueDepth(ready=3, consumers=1)

    await one.ack()
    three = await take_one(subscription)
    assert message_id(three) == bodies[2][0]
    assert (await broker.depth(queue_name)).ready == 2
    await subscription.close()


async def test_two_consumers_share_the_work(broker: Broker, queue_name: str) -> None:
    await broker.declare_queue(queue_name)
    left = await broker.subscribe(queue_name, prefetch=2)
    right = await broker.subscribe(queue_name, prefetch=2)
    bodies = batch(4)
    await broker.publish(queue_name, bodies)

    left_ids = {message_id(d) for d in await take(left, 2)}
    right_ids = {message_id(d) for d in await take(right, 2)}
    assert not left_ids & right_ids
    assert left_ids | right_ids == {mid for mid, _ in bodies}
    await left.close()
    await right.close()


async def test_depth_reports_ready_and_consumers(broker: Broker, queue_name: str) -> None:
    await broker.declare_queue(queue_name)
    assert await broker.depth(queue_name) == QueueDepth(ready=0, consumers=0)
    await broker.publish(queue_name, batch(3))
    assert await broker.depth(queue_name) == QueueDepth(ready=3, consumers=0)

    first = await broker.subscribe(queue_name, prefetch=1)
    await take_one(first)
    assert await broker.depth(queue_name) == QueueDepth(ready=2, consumers=1)
    second = await broker.subscribe(queue_name, prefetch=1)
    await take_one(second)
    assert await broker.depth(queue_name) == QueueDepth(ready=1, consumers=2)
    await first.close()
    await second.close()


async def test_nack_without_requeue_does_not_redeliver(broker: Broker, queue_name: str) -> None:
    dropped, kept = batch(2)
    await broker.publish(queue_name, [dropped, kept])
    subscription = await broker.subscribe(queue_name, prefetch=1)
    await (await take_one(subscription)).nack(requeue=False)

    # Requeued, the dropped message would come back ahead of the kept one.
    nxt = await take_one(subscription)
    assert (message_id(nxt), nxt.redelivered) == (kept[0], False)
    await nxt.ack()
    assert (await broker.depth(queue_name)).ready == 0
    await subscription.close()


async def test_events_match_the_topic_pattern(broker: Broker) -> None:
    one_word = await broker.subscribe_events("sla.*")
    any_words = await broker.subscribe_events("sla.#")
    await broker.publish_event("customer.merged", b'{"e": "merged"}')
    await broker.publish_event("sla.warning.first_response", b'{"e": "deep"}')
    await broker.publish_event("sla.warning", b'{"e": "warning"}')

    got = await take_one(one_word)
    assert got.body == b'{"e": "warning"}'
    await got.ack()
    assert [d.body for d in await take(any_words, 2)] == [
        b'{"e": "deep"}',
        b'{"e": "warning"}',
    ]
    await one_word.close()
    await any_words.close()


async def test_publish_of_a_batch_confirms_every_message(broker: Broker, queue_name: str) -> None:
    bodies = batch(200)
    await broker.publish(queue_name, bodies)
    assert (await broker.depth(queue_name)).ready == 200

    subscription = await broker.subscribe(queue_name, prefetch=200)
    received = await take(subscription, 200)
    assert [(message_id(d), d.body) for d in received] == bodies
    await subscription.close()


# --- inbound ----------------------------------------------------------------------------


@pytest.fixture
async def inbound_broker(broker: Broker, amqp_url: str) -> AsyncIterator[Broker]:
    """A broker of the same kind whose inbound queue no other test touches, handling
    one message at a time so the order of handler calls is the order of deliveries."""
    impl: Broker
    if isinstance(broker, MemoryBroker):
        impl = MemoryBroker(inbound_prefetch=1, inbound_retry_delay_s=0.01)
    else:
        prefix = f"omniroute-test-{uuid.uuid4().hex[:8]}"
        impl = AmqpBroker(amqp_url, prefix=prefix, inbound_prefetch=1, inbound_retry_delay_s=0.01)
    await impl.open()
    yield impl
    await impl.close()


class Recorder:
    """An inbound handler that records bodies and fails on command."""

    def __init__(self, failures: dict[bytes, list[Exception]] | None = None) -> None:
        self.calls: list[bytes] = []
        self.failures = failures or {}
        self._seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def __call__(self, body: bytes) -> None:
        self.calls.append(body)
        self._seen.put_nowait(body)
        pending = self.failures.get(body)
        if pending:
            raise pending.pop(0)

    async def wait_for(self, body: bytes) -> None:
        async def until_seen() -> None:
            while await self._seen.get() != body:
                pass

        await asyncio.wait_for(until_seen(), RECEIVE_TIMEOUT_S)


async def test_inbound_handler_receives_messages(inbound_broker: Broker) -> None:
    handler = Recorder()
    await inbound_broker.consume_inbound(handler)
    await inbound_broker.publish_inbound(b'{"text": "one"}')
    await inbound_broker.publish_inbound(b'{"text": "two"}')
    await handler.wait_for(b'{"text": "two"}')
    assert handler.calls == [b'{"text": "one"}', b'{"text": "two"}']


async def test_inbound_input_error_is_not_redelivered(inbound_broker: Broker) -> None:
    handler = Recorder({b"bad": [InputError("not a message")]})
    await inbound_broker.consume_inbound(handler)
    await inbound_broker.publish_inbound(b"bad")
    await inbound_broker.publish_inbound(b"good")
    await handler.wait_for(b"good")
    assert handler.calls == [b"bad", b"good"]


async def test_inbound_backend_failure_is_redelivered(inbound_broker: Broker) -> None:
    handler = Recorder({b"flaky": [BackendUnavailable("store down")]})
    await inbound_broker.consume_inbound(handler)
    await inbound_broker.publish_inbound(b"flaky")
    await inbound_broker.publish_inbound(b"next")
    await handler.wait_for(b"next")
    assert handler.calls == [b"flaky", b"flaky", b"next"]


# --- the embedded broker's own guarantees -----------------------------------------------


async def test_memory_broker_reports_settled_ids() -> None:
    broker = MemoryBroker()
    reported: asyncio.Queue[list[str]] = asyncio.Queue()

    async def settled(message_ids: Sequence[str]) -> None:
        reported.put_nowait(list(message_ids))

    broker.on_settled(settled)
    acked, dropped, requeued = batch(3)
    await broker.publish("q", [acked, dropped, requeued])
    subscription = await broker.subscribe("q", prefetch=3)
    first, second, third = await take(subscription, 3)
    await third.nack(requeue=True)
    await first.ack()
    await second.nack(requeue=False)
    await broker.close()

    ids: list[str] = []
    while not reported.empty():
        ids += reported.get_nowait()
    assert ids == [acked[0], dropped[0]]
    assert [d.message_id for d in broker.dead_letters] == [dropped[0]]


async def test_memory_broker_requeues_in_original_order() -> None:
    broker = MemoryBroker()
    bodies = batch(4)
    await broker.publish("q", bodies)
    subscription = await broker.subscribe("q", prefetch=3)
    first, second, third = await take(subscription, 3)
    await third.nack()
    await first.nack()
    await subscription.close()  # returns the second one

    again = await broker.subscribe("q", prefetch=4)
    received = await take(again, 4)
    assert [message_id(d) for d in received] == [mid for mid, _ in bodies]
    assert [d.redelivered for d in received] == [True, True, True, False]
    assert second.body == received[1].body


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("sla.*", "sla.warning", True),
        ("sla.*", "sla", False),
        ("sla.*", "sla.warning.first", False),
        ("sla.#", "sla", True),
        ("sla.#", "sla.warning.first", True),
        ("#", "anything.at.all", True),
        ("#.breach", "sla.breach", True),
        ("*.breach", "sla.warning", False),
        ("sla.#.breach", "sla.breach", True),
        ("sla.#.breach", "sla.a.b.breach", True),
        ("sla.#.breach", "sla.a.b", False),
    ],
)
def test_topic_matching(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches
