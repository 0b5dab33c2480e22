"""What only the RabbitMQ broker promises: the topology agent tools rely on (names,
durability, dead letters, message properties), failing fast when RabbitMQ is away, and
recovering by itself when it comes back."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from router.backends.amqp_broker import AmqpBroker
from router.errors import BackendUnavailable, ConfigError, InputError
from tests.contract.test_broker import (
    RECEIVE_TIMEOUT_S,
    Recorder,
    batch,
    message_id,
    take,
    take_one,
)

pytestmark = pytest.mark.amqp

CLOSED_PORT_URL = "amqp://guest:guest@127.0.0.1:1/"


def _vhost(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.removeprefix("/"))


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 — fixed argv, the broker's own CLI
        ["rabbitmqctl", "-q", *args],  # noqa: S607 — found on PATH like in tests/conftest.py
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[AmqpBroker]:
    """A broker with the default prefix, as the daemon runs it."""
    broker = AmqpBroker(amqp_url)
    await broker.open()
    yield broker
    await broker.close()


async def _own_broker(amqp_url: str, queue_type: str) -> AmqpBroker:
    """A broker with a prefix of its own: its dead letters are this test's alone."""
    broker = AmqpBroker(
        amqp_url,
        prefix=f"omniroute-{queue_type}-{uuid.uuid4().hex[:8]}",
        queue_type=queue_type,
        inbound_prefetch=1,
        inbound_retry_delay_s=0.01,
        reconnect_interval_s=0.2,
    )
    await broker.open()
    return broker


@pytest.fixture
async def private(amqp_url: str) -> AsyncIterator[AmqpBroker]:
    broker = await _own_broker(amqp_url, "classic")
    yield broker
    await broker.close()


@pytest.fixture(params=["classic", "quorum"])
async def either(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[AmqpBroker]:
    """A private broker declaring classic, then quorum queues."""
    broker = await _own_broker(amqp_url, request.param)
    yield broker
    await broker.close()


@pytest.fixture
async def raw(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A plain aio-pika connection, as an agent tool would open."""
    connection = await aio_pika.connect_robust(amqp_url)
    yield connection
    await connection.close()


async def _get(connection: AbstractRobustConnection, queue: str) -> AbstractIncomingMessage:
    """The first message waiting in ``queue`` (which must exist)."""
    channel = await connection.channel()
    declared = await channel.get_queue(queue, ensure=True)
    message = await declared.get(timeout=RECEIVE_TIMEOUT_S, fail=False)
    assert message is not None, f"{queue} is empty"
    await message.ack()
    await channel.close()
    return message


async def test_agent_queue_is_durable_with_the_documented_name(
    amqp: AmqpBroker, amqp_url: str, queue_name: str
) -> None:
    await amqp.declare_queue(queue_name)
    listing = _rabbitmqctl(
        "list_queues", "--vhost", _vhost(amqp_url), "--no-table-headers", "name", "durable"
    )
    rows = {tuple(line.split("\t")) for line in listing.splitlines()}
    assert (f"omniroute.queue.{queue_name}", "true") in rows
    assert ("omniroute.inbound", "true") in rows
    assert ("omniroute.dead", "true") in rows


async def test_an_agents_personal_queue_is_named_omniroute_agent_id(
    amqp: AmqpBroker, raw: AbstractRobustConnection, queue_name: str
) -> None:
    [(mid, body)] = batch(1)
    await amqp.publish(f"agent.{queue_name}", [(mid, body)])
    message = await _get(raw, f"omniroute.agent.{queue_name}")
    assert (message.message_id, message.body) == (mid, body)


async def test_messages_are_persistent_json_with_their_id(
    amqp: AmqpBroker, raw: AbstractRobustConnection, queue_name: str
) -> None:
    [(mid, body)] = batch(1)
    await amqp.publish(queue_name, [(mid, body)])
    message = await _get(raw, f"omniroute.queue.{queue_name}")
    assert (message.message_id, message.body) == (mid, body)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"


async def test_nack_without_requeue_dead_letters(
    private: AmqpBroker, raw: AbstractRobustConnection, queue_name: str
) -> None:
    [(mid, body)] = batch(1)
    await private.publish(queue_name, [(mid, body)])
    subscription = await private.subscribe(queue_name, prefetch=1)
    await (await take_one(subscription)).nack(requeue=False)
    await subscription.close()

    dead = await _get(raw, f"{private.prefix}.dead")
    assert (dead.message_id, dead.body) == (mid, body)


async def test_inbound_input_error_is_dead_lettered(
    either: AmqpBroker, raw: AbstractRobustConnection
) -> None:
    broker = either
    handler = Recorder({b"bad": [InputError("not a message")]})
    await broker.consume_inbound(handler)
    await broker.publish_inbound(b"bad")
    await broker.publish_inbound(b"good")
    await handler.wait_for(b"good")

    dead = await _get(raw, f"{broker.prefix}.dead")
    assert dead.body == b"bad"


@pytest.fixture(params=["one_write", "each"])
async def publisher(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[AmqpBroker]:
    """Both publish paths: the whole batch in one write, and aiormq's public
    ``basic_publish`` per message (taken when aiormq is not version 7)."""
    broker = AmqpBroker(amqp_url, one_write_publish=request.param == "one_write")
    await broker.open()
    yield broker
    await broker.close()


async def test_publish_paths_deliver_every_message_intact(
    publisher: AmqpBroker, queue_name: str
) -> None:
    """Including a body larger than a frame, which goes out in several body frames."""
    bodies = [*batch(20), ("large", b'"' + b"x" * 300_000 + b'"'), ("empty", b"")]
    await publisher.publish(queue_name, bodies)
    subscription = await publisher.subscribe(queue_name, prefetch=50)
    received = await take(subscription, len(bodies))
    assert [(message_id(d), d.body) for d in received] == bodies
    await subscription.close()


async def test_a_deleted_queue_is_declared_again(
    publisher: AmqpBroker, raw: AbstractRobustConnection, queue_name: str
) -> None:
    """A publish the broker cannot route is never taken as delivered."""
    await publisher.publish(queue_name, batch(1))
    channel = await raw.channel()
    await channel.queue_delete(f"omniroute.queue.{queue_name}")
    await channel.close()

    with pytest.raises(BackendUnavailable):
        await publisher.publish(queue_name, batch(3))
    await publisher.publish(queue_name, batch(1))
    assert (await publisher.depth(queue_name)).ready == 1


async def test_open_against_a_closed_port_fails_fast() -> None:
    broker = AmqpBroker(CLOSED_PORT_URL)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await broker.open()
    assert time.monotonic() - started < 2.0


async def test_ping_fails_fast_when_there_is_no_connection() -> None:
    broker = AmqpBroker(CLOSED_PORT_URL)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        await broker.ping()
    with pytest.raises(BackendUnavailable):
        await broker.publish("q", batch(1))
    assert time.monotonic() - started < 2.0


async def _until_ping_succeeds(broker: AmqpBroker) -> None:
    """Waits on the reconnect, not on a clock: asks again until the broker answers."""
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        while True:
            try:
                await broker.ping()
            except BackendUnavailable:
                await asyncio.sleep(0.05)
            else:
                return


async def test_recovers_by_itself_when_the_connection_drops(
    private: AmqpBroker, amqp_url: str, queue_name: str
) -> None:
    subscription = await private.subscribe(queue_name, prefetch=10)
    _rabbitmqctl("close_all_connections", "--vhost", _vhost(amqp_url), "test: drop")

    # Calls fail fast while it is down; the broker reconnects without help.
    await _until_ping_succeeds(private)
    bodies = batch(2)
    await private.publish(queue_name, bodies)

    # The subscription made before the drop was restored on the new connection.
    received = await take_one(subscription)
    assert received.body == bodies[0][1]
    await received.ack()
    await subscription.close()


class TcpProxy:
    """Stands between the broker and RabbitMQ so a test can make RabbitMQ go away
    (connections cut, new ones refused) and come back, without touching the server
    other tests share."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)


async def _until_ping_fails(broker: AmqpBroker) -> None:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        while True:
            try:
                await broker.ping()
            except BackendUnavailable:
                return
            await asyncio.sleep(0.01)


async def test_fails_fast_while_rabbitmq_is_away_and_recovers_when_it_returns(
    amqp_url: str, queue_name: str
) -> None:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    via_proxy = parts._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}").geturl()
    broker = AmqpBroker(
        via_proxy, prefix=f"omniroute-test-{uuid.uuid4().hex[:8]}", reconnect_interval_s=0.1
    )
    await broker.open()
    subscription = await broker.subscribe(queue_name, prefetch=10)
    try:
        await proxy.stop()
        await _until_ping_fails(broker)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await broker.publish(queue_name, batch(1))
        with pytest.raises(BackendUnavailable):
            await broker.depth(queue_name)
        assert time.monotonic() - started < 1.0

        await proxy.start()  # RabbitMQ is back
        await _until_ping_succeeds(broker)
        bodies = batch(2)
        await broker.publish(queue_name, bodies)
        received = await take(subscription, 2)
        assert [message_id(d) for d in received] == [mid for mid, _ in bodies]
    finally:
        await broker.close()
        await proxy.stop()


# --- quorum queues --------------------------------------------------------------------


@pytest.fixture
async def quorum(amqp_url: str) -> AsyncIterator[AmqpBroker]:
    broker = await _own_broker(amqp_url, "quorum")
    yield broker
    await broker.close()


def _queue_types(amqp_url: str, prefix: str) -> dict[str, str]:
    listing = _rabbitmqctl(
        "list_queues", "--vhost", _vhost(amqp_url), "--no-table-headers", "name", "type"
    )
    rows = (line.split("\t") for line in listing.splitlines())
    return {name: kind for name, kind in rows if name.startswith(f"{prefix}.")}


async def test_quorum_declares_agent_inbound_and_dead_queues_as_quorum(
    quorum: AmqpBroker, amqp_url: str, queue_name: str
) -> None:
    """Event subscriptions stay classic: quorum queues cannot be exclusive or auto-delete."""
    await quorum.declare_queue(queue_name)
    await quorum.publish(f"agent.{queue_name}", batch(1))
    events = await quorum.subscribe_events("#")
    types = _queue_types(amqp_url, quorum.prefix)
    await events.close()

    p = quorum.prefix
    assert types.pop(f"{p}.queue.{queue_name}") == "quorum"
    assert types.pop(f"{p}.agent.{queue_name}") == "quorum"
    assert types.pop(f"{p}.inbound") == "quorum"
    assert types.pop(f"{p}.dead") == "quorum"
    [(event_queue, kind)] = types.items()
    assert event_queue.startswith(f"{p}.events.")
    assert kind == "classic"


async def test_classic_is_the_default_queue_type(
    private: AmqpBroker, amqp_url: str, queue_name: str
) -> None:
    await private.declare_queue(queue_name)
    types = _queue_types(amqp_url, private.prefix)
    assert set(types.values()) == {"classic"}


async def test_quorum_queues_deliver_ack_requeue_and_dead_letter(
    quorum: AmqpBroker, raw: AbstractRobustConnection, queue_name: str
) -> None:
    bodies = batch(3)
    await quorum.publish(queue_name, bodies)
    subscription = await quorum.subscribe(queue_name, prefetch=3)
    first, second, third = await take(subscription, 3)
    assert [message_id(d) for d in (first, second, third)] == [mid for mid, _ in bodies]
    assert not any(d.redelivered for d in (first, second, third))

    await first.ack()
    await second.nack(requeue=True)
    again = await take_one(subscription)
    assert (message_id(again), again.redelivered) == (bodies[1][0], True)
    await again.ack()
    await third.nack(requeue=False)
    await subscription.close()

    dead = await _get(raw, f"{quorum.prefix}.dead")
    assert (dead.message_id, dead.body) == bodies[2]
    assert (await quorum.depth(queue_name)).ready == 0


async def test_quorum_queue_returns_unacked_deliveries_when_a_consumer_closes(
    quorum: AmqpBroker, queue_name: str
) -> None:
    bodies = batch(2)
    await quorum.publish(queue_name, bodies)
    first = await quorum.subscribe(queue_name, prefetch=2)
    await take(first, 2)
    await first.close()

    second = await quorum.subscribe(queue_name, prefetch=2)
    received = await take(second, 2)
    assert sorted(message_id(d) for d in received) == sorted(mid for mid, _ in bodies)
    assert all(d.redelivered for d in received)
    for delivery in received:
        await delivery.ack()
    await second.close()


async def test_switching_the_queue_type_of_existing_queues_stops_start_up(
    private: AmqpBroker, amqp_url: str
) -> None:
    """RabbitMQ keeps a queue's type: a new prefix or deleting the old queues is the way."""
    switched = AmqpBroker(amqp_url, prefix=private.prefix, queue_type="quorum")
    with pytest.raises(ConfigError, match=r"amqp\.queue_type: .*new amqp\.prefix"):
        await switched.open()
    await private.ping()  # the running broker is not disturbed


def test_an_unknown_queue_type_is_refused() -> None:
    with pytest.raises(InputError, match="queue_type"):
        AmqpBroker(CLOSED_PORT_URL, queue_type="lazy")
