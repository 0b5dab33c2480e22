"""The production broker: RabbitMQ through aio-pika (robust connection, publisher
confirms, persistent messages).

Topology (``<prefix>`` is ``omniroute`` unless configured), declared by ``open()`` and
``declare_queue()``; every exchange and queue is durable except event subscriptions:

- ``<prefix>.queue.<name>``: one queue per agent queue, published to through the
  default exchange (routing key = queue name), with
  ``x-dead-letter-exchange=<prefix>.dead`` so ``nack(requeue=False)`` dead-letters.
- ``<prefix>.agent.<agent_id>``: an agent's personal queue (the store's queue
  ``agent.<agent_id>``), declared like the others when sticky routing first uses it.
- ``<prefix>.events`` (topic): SLA warnings and breaches, assignments, merges.
  ``subscribe_events`` binds an exclusive, auto-delete queue to it.
- ``<prefix>.inbound`` (fanout) bound to the queue ``<prefix>.inbound``: canonical
  messages for ``consume_inbound``. Fanout, so a producer needs to know only the
  exchange, never a routing key; the queue dead-letters rejected input like the agent
  queues do.
- ``<prefix>.dead`` (fanout) bound to the queue ``<prefix>.dead``: dead letters, kept
  for an operator to inspect or shovel back.

Queue type: classic by default; ``queue_type="quorum"`` declares the agent, inbound and
dead-letter queues with ``x-queue-type=quorum`` (replicated across a cluster, always
durable). Event subscriptions stay classic: they are exclusive and auto-delete, which
quorum queues cannot be. RabbitMQ refuses to declare an existing queue with another
type (PRECONDITION_FAILED), so switching a running deployment needs a new ``prefix``
or the old queues deleted (drain them first).

``publish`` is the hot path: it writes a whole batch to the aiormq channel under
aio-pika in one go and then waits for every confirm (``amqp_publish``, with the
measurements). Consumers get an ``AmqpSubscription`` of ``AmqpDelivery`` messages
(``amqp_subscription``); errors cross the boundary in ``amqp_errors``.

The robust connection reconnects by itself and restores channels, event queues and
consumers; while it is down every call raises ``BackendUnavailable`` at once instead
of waiting for it. Deliveries received before a drop cannot be settled any more (their
ack raises ``BackendUnavailable``); RabbitMQ redelivers them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from router.backends.amqp_errors import refused_arguments, translated
from router.backends.amqp_publish import publish_confirmed
from router.backends.amqp_subscription import AmqpDelivery, AmqpSubscription
from router.backends.inbound import handle_inbound
from router.backends.memory_broker import DEFAULT_INBOUND_PREFETCH, DEFAULT_INBOUND_RETRY_DELAY_S
from router.errors import BackendUnavailable, InputError
from router.ports import InboundHandler, QueueDepth

__all__ = ["QUEUE_TYPES", "AmqpBroker", "AmqpDelivery", "AmqpSubscription", "SettledCallback"]

log = structlog.get_logger(__name__)

SettledCallback = Callable[[Sequence[str]], Awaitable[None]]
_T = TypeVar("_T")

QUEUE_TYPES: Final = ("classic", "quorum")


def _check_prefetch(prefetch: int) -> None:
    if prefetch < 1:
        raise InputError("prefetch must be at least 1")


class AmqpBroker:
    """RabbitMQ implementation of ``router.ports.Broker``; see the module docstring.

    Every operation runs through ``_call``: errors translated, a deadline of
    ``timeout_s``, and an early ``BackendUnavailable`` when the connection drops while
    the operation waits for an answer that will never come.
    """

    durable = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "omniroute",
        inbound_prefetch: int = DEFAULT_INBOUND_PREFETCH,
        inbound_retry_delay_s: float = DEFAULT_INBOUND_RETRY_DELAY_S,
        reconnect_interval_s: float = 1.0,
        timeout_s: float = 10.0,
        one_write_publish: bool = True,
        queue_type: str = "classic",
    ) -> None:
        _check_prefetch(inbound_prefetch)
        if queue_type not in QUEUE_TYPES:
            raise InputError(f"queue_type must be one of {', '.join(QUEUE_TYPES)}")
        self._url = url
        self.prefix = prefix
        self._events = f"{prefix}.events"
        self._inbound = f"{prefix}.inbound"
        self._dead = f"{prefix}.dead"
        self.queue_type = queue_type
        self._inbound_prefetch = inbound_prefetch
        self._inbound_retry_delay_s = inbound_retry_delay_s
        self._reconnect_interval_s = reconnect_interval_s
        self._timeout_s = timeout_s
        self._one_write = one_write_publish
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._lost: asyncio.Future[None] | None = None
        """Resolved when the current connection drops; a new one per reconnect."""
        self._declared: set[str] = set()
        self._subscriptions: set[AmqpSubscription] = set()
        self._settled_callback: SettledCallback | None = None

    def queue_name(self, queue: str) -> str:
        """``agent.<id>`` is an agent's personal queue, ``<prefix>.agent.<id>``."""
        if queue.startswith("agent."):
            return f"{self.prefix}.{queue}"
        return f"{self.prefix}.queue.{queue}"

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        if self._connection is not None:
            return
        with translated("connect"):
            connection = await aio_pika.connect_robust(
                self._url,
                timeout=self._timeout_s,
                reconnect_interval=self._reconnect_interval_s,
                client_properties={"connection_name": f"{self.prefix} router"},
            )
        try:
            with translated("declare topology"), refused_arguments():
                async with asyncio.timeout(self._timeout_s):
                    self._channel = await connection.channel(publisher_confirms=True)
                    await self._declare_topology(self._channel)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._on_connection_lost)
        connection.reconnect_callbacks.add(self._on_reconnected)
        self._lost = asyncio.get_running_loop().create_future()
        self._connection = connection
        log.info("amqp.connected", prefix=self.prefix)

    async def _declare_topology(self, channel: AbstractChannel) -> None:
        await channel.declare_exchange(self._events, aio_pika.ExchangeType.TOPIC, durable=True)
        dead = await channel.declare_exchange(
            self._dead, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            self._dead, durable=True, arguments=self._type_arguments()
        )
        await dead_queue.bind(dead)
        inbound = await channel.declare_exchange(
            self._inbound, aio_pika.ExchangeType.FANOUT, durable=True
        )
        inbound_queue = await self._declare_inbound_queue(channel)
        await inbound_queue.bind(inbound)

    async def _declare_inbound_queue(self, channel: AbstractChannel) -> AbstractQueue:
        return await channel.declare_queue(
            self._inbound, durable=True, arguments=self._dead_letter_arguments()
        )

    def _type_arguments(self) -> dict[str, Any]:
        """Classic queues are declared without ``x-queue-type``, as before the option."""
        return {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}

    def _dead_letter_arguments(self) -> dict[str, Any]:
        """The arguments of every agent and inbound queue (a redeclare must match)."""
        return {"x-dead-letter-exchange": self._dead, **self._type_arguments()}

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._channel = None
        self._declared.clear()
        try:
            with translated("close"):
                async with asyncio.timeout(self._timeout_s):
                    await connection.close()
        except BackendUnavailable as exc:
            log.warning("amqp.closed_uncleanly", error=exc.message)

    def _on_connection_lost(self, _sender: object, exc: BaseException | None) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._connection is not None:  # not our own close()
            log.warning("amqp.connection_lost", error=repr(exc))

    def _on_reconnected(self, _sender: object) -> None:
        self._lost = asyncio.get_running_loop().create_future()
        log.info("amqp.reconnected", prefix=self.prefix)

    async def ping(self) -> None:
        await self._call("ping", self._ping())

    async def _ping(self) -> None:
        # Declaring it again (same arguments) is a round trip that also heals a deleted
        # exchange, where a passive declare would close the channel.
        raw = await self._raw_channel()
        await raw.exchange_declare(self._events, exchange_type="topic", durable=True)

    # --- agent queues -------------------------------------------------------------------

    async def declare_queue(self, queue: str) -> None:
        await self._call("declare queue", self._declare_agent_queue(self.queue_name(queue)))

    async def _declare_agent_queue(self, name: str) -> aiormq.spec.Queue.DeclareOk:
        raw = await self._raw_channel()
        declared = await raw.queue_declare(
            name, durable=True, arguments=self._dead_letter_arguments()
        )
        self._declared.add(name)
        return declared

    async def depth(self, queue: str) -> QueueDepth:
        declared = await self._call("depth", self._declare_agent_queue(self.queue_name(queue)))
        return QueueDepth(ready=declared.message_count or 0, consumers=declared.consumer_count or 0)

    async def publish(self, queue: str, bodies: Sequence[tuple[str, bytes]]) -> None:
        if bodies:
            await self._call("publish", self._publish_to_queue(self.queue_name(queue), bodies))

    async def _publish_to_queue(self, name: str, bodies: Sequence[tuple[str, bytes]]) -> None:
        if name not in self._declared:
            await self._declare_agent_queue(name)
        returned = await self._publish_confirmed("", name, bodies, mandatory=True)
        if returned:
            # The queue was deleted behind our back: declare it again on the next publish.
            self._declared.discard(name)
            raise BackendUnavailable(f"RabbitMQ returned {returned} messages for {name}")

    async def _publish_confirmed(
        self,
        exchange: str,
        routing_key: str,
        bodies: Sequence[tuple[str, bytes]],
        *,
        mandatory: bool,
    ) -> int:
        """``amqp_publish.publish_confirmed`` on the current publishing channel."""
        raw = await self._raw_channel()
        return await publish_confirmed(
            raw, exchange, routing_key, bodies, mandatory=mandatory, one_write=self._one_write
        )

    async def subscribe(self, queue: str, *, prefetch: int) -> AmqpSubscription:
        _check_prefetch(prefetch)
        name = self.queue_name(queue)

        async def declare(channel: AbstractChannel) -> AbstractQueue:
            arguments = self._dead_letter_arguments()
            return await channel.declare_queue(name, durable=True, arguments=arguments)

        return await self._call("subscribe", self._subscribe(prefetch, declare))

    async def _subscribe(
        self,
        prefetch: int,
        declare: Callable[[AbstractChannel], Awaitable[AbstractQueue]],
    ) -> AmqpSubscription:
        channel = await self._live_connection().channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=prefetch)
            subscription = AmqpSubscription(
                channel,
                await declare(channel),
                on_close=self._subscriptions.discard,
                timeout_s=self._timeout_s,
            )
            await subscription.start()
        except BaseException:
            await channel.close()
            raise
        self._subscriptions.add(subscription)
        return subscription

    # --- events -------------------------------------------------------------------------

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        # Not mandatory: an event nobody subscribed to is dropped, as a topic should.
        message = [(uuid.uuid4().hex, body)]
        await self._call(
            "publish event",
            self._publish_confirmed(self._events, routing_key, message, mandatory=False),
        )

    async def subscribe_events(self, pattern: str, *, prefetch: int = 100) -> AmqpSubscription:
        _check_prefetch(prefetch)
        name = f"{self._events}.{uuid.uuid4().hex[:12]}"

        async def declare(channel: AbstractChannel) -> AbstractQueue:
            queue = await channel.declare_queue(name, exclusive=True, auto_delete=True)
            await queue.bind(self._events, routing_key=pattern)
            return queue

        return await self._call("subscribe events", self._subscribe(prefetch, declare))

    # --- inbound ------------------------------------------------------------------------

    async def publish_inbound(self, body: bytes) -> None:
        message = [(uuid.uuid4().hex, body)]
        returned = await self._call(
            "publish inbound",
            self._publish_confirmed(self._inbound, "", message, mandatory=True),
        )
        if returned:
            raise BackendUnavailable(f"RabbitMQ: {self._inbound} has no queue bound")

    async def consume_inbound(self, handler: InboundHandler) -> None:
        """Consume on a channel of its own with ``inbound_prefetch``; aio-pika runs each
        delivery in its own task, so at most that many handlers run at once."""
        await self._call("consume inbound", self._consume_inbound(handler))
        log.info("amqp.consuming_inbound", queue=self._inbound, prefetch=self._inbound_prefetch)

    async def _consume_inbound(self, handler: InboundHandler) -> None:
        channel = await self._live_connection().channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._inbound_prefetch)
        queue = await self._declare_inbound_queue(channel)
        await queue.consume(partial(self._on_inbound, handler))

    async def _on_inbound(self, handler: InboundHandler, message: AbstractIncomingMessage) -> None:
        await handle_inbound(
            AmqpDelivery(message), handler, retry_delay_s=self._inbound_retry_delay_s
        )

    def on_settled(self, callback: SettledCallback) -> None:
        """Kept, never called: the broker holds published messages durably, so the
        dispatcher settles on the publisher confirm."""
        self._settled_callback = callback

    # --- internals ----------------------------------------------------------------------

    async def _call(self, action: str, operation: Coroutine[Any, Any, _T]) -> _T:
        """Run ``operation`` with the boundary's guarantees (see the class docstring)."""
        try:
            self._live_connection()
        except BackendUnavailable:
            operation.close()  # never started
            raise
        lost = self._lost
        assert lost is not None  # set together with the connection
        task = asyncio.ensure_future(operation)
        try:
            with translated(action):
                async with asyncio.timeout(self._timeout_s):
                    await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
                if not task.done() or task.cancelled():
                    raise BackendUnavailable(f"RabbitMQ: {action}: the connection dropped")
                return task.result()
        finally:
            if not task.done():
                task.cancel()
                task.add_done_callback(_retrieve_exception)

    def _live_connection(self) -> AbstractRobustConnection:
        """The connection when it is up; fails fast instead of waiting for a reconnect."""
        connection = self._connection
        if connection is None:
            raise BackendUnavailable("RabbitMQ: the broker is not open")
        lost = self._lost is None or self._lost.done()
        if lost or connection.is_closed or not connection.connected.is_set():
            raise BackendUnavailable("RabbitMQ: the connection is down")
        return connection

    async def _raw_channel(self) -> aiormq.Channel:
        """The aiormq channel under the publishing channel (it changes on reconnect)."""
        channel = self._channel
        assert channel is not None  # set together with the connection
        raw = await channel.get_underlay_channel()
        if raw.is_closed:
            raise BackendUnavailable("RabbitMQ: the channel is being reopened")
        assert isinstance(raw, aiormq.Channel)  # the concrete class; it takes wait=False
        return raw


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    """An abandoned operation's failure is expected; do not let asyncio log it."""
    if not task.cancelled():
        task.exception()
