"""Work items straight from RabbitMQ, as the same ``Offer`` objects the sockets give.

::

    async with AmqpSubscriber("amqp://guest:guest@127.0.0.1:5672/") as rabbit:
        async with rabbit.subscribe("default", prefetch=3) as offers:
            async for offer in offers:
                ...
                await offer.ack()

The daemon declares the queues (``<prefix>.queue.<name>``, ``<prefix>.agent.<id>``)
when it starts; the subscriber only checks that they exist (a passive declare), so it
needs to know neither their arguments nor their type (classic or quorum). Prefetch is
the tool's capacity; ack is manual; ``nack(requeue=False)`` dead-letters to
``<prefix>.dead``. Unsettled items go back when the channel closes, as RabbitMQ does.
"""

from __future__ import annotations

from typing import Self

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueueIterator,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelNotFoundEntity

from router.client.models import ClientError, Offer, Resource, Settle, decode_item

AGENT_QUEUE_PREFIX = "agent."


class AmqpSubscriber(Resource):
    """One robust connection to RabbitMQ; ``subscribe`` opens a channel per queue."""

    def __init__(self, amqp_url: str, prefix: str = "omniroute") -> None:
        self._url = amqp_url
        self.prefix = prefix
        self._connection: AbstractRobustConnection | None = None

    def queue_name(self, queue: str) -> str:
        """The RabbitMQ name of an omniroute queue (``agent.<id>``: a personal queue)."""
        if queue.startswith(AGENT_QUEUE_PREFIX):
            return f"{self.prefix}.{queue}"
        return f"{self.prefix}.queue.{queue}"

    async def open(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(self._url)
        except (AMQPError, OSError) as exc:
            raise ClientError(503, "unreachable", f"cannot reach RabbitMQ: {exc!r}") from None

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def subscribe(self, queue: str, prefetch: int = 1) -> AmqpSubscription:
        if self._connection is None:
            raise ClientError(0, "not_open", "use `async with AmqpSubscriber(...)` or open()")
        return AmqpSubscription(self._connection, self.queue_name(queue), prefetch)


class AmqpSubscription(Resource):
    """One queue consumed with manual ack: iterate it for offers, inside ``async with``."""

    def __init__(self, connection: AbstractRobustConnection, name: str, prefetch: int) -> None:
        self._connection = connection
        self.name = name
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._messages: AbstractQueueIterator | None = None

    async def open(self) -> None:
        self._channel = await self._connection.channel()
        try:
            await self._channel.set_qos(prefetch_count=self._prefetch)
            queue = await self._channel.declare_queue(self.name, passive=True)
        except ChannelNotFoundEntity:
            await self.close()
            raise ClientError(
                404, "not_found", f"no queue {self.name!r}: is the daemon up?"
            ) from None
        except (AMQPError, OSError) as exc:
            await self.close()
            raise ClientError(503, "unreachable", f"cannot consume {self.name}: {exc!r}") from None
        self._messages = queue.iterator()

    async def close(self) -> None:
        """Stop consuming; RabbitMQ gives the unsettled items back to the queue."""
        if self._messages is not None:
            await self._messages.close()
            self._messages = None
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Offer:
        if self._messages is None:
            await self.open()
        assert self._messages is not None
        message = await self._messages.__anext__()
        try:
            item = decode_item(message.body)
        except ClientError:
            await message.nack(requeue=False)  # not a work item: dead-lettered, not looped
            raise
        return Offer(item, bool(message.redelivered), _settler(message))


def _settler(message: AbstractIncomingMessage) -> Settle:
    async def settle(ack: bool, requeue: bool) -> None:
        try:
            if ack:
                await message.ack()
            else:
                await message.nack(requeue=requeue)
        except (AMQPError, OSError, RuntimeError) as exc:
            raise ClientError(503, "disconnected", f"cannot settle: {exc!r}") from None

    return settle
