"""What a consumer of the RabbitMQ broker holds: ``AmqpSubscription``, a consumer on a
channel of its own, and the ``AmqpDelivery`` messages it yields (also what the inbound
handler gets). Settling and closing go through the same error boundary as the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from router.backends.amqp_errors import translated
from router.errors import BackendUnavailable

log = structlog.get_logger(__name__)


class AmqpDelivery:
    """One message handed to an ``AmqpSubscription`` (or the inbound handler).

    Settling it twice raises ``Conflict``: aio-pika refuses it locally, where RabbitMQ
    would close the whole channel (PRECONDITION_FAILED, unknown delivery tag)."""

    __slots__ = ("_message",)

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def message_id(self) -> str:
        return self._message.message_id or ""

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    async def ack(self) -> None:
        with translated("ack"):
            await self._message.ack()

    async def nack(self, *, requeue: bool = True) -> None:
        with translated("nack"):
            await self._message.nack(requeue=requeue)


_CLOSED: Final = None


class AmqpSubscription:
    """A consumer on its own channel (``basic_qos(prefetch)``); closing the channel
    hands every unacked delivery back to the queue."""

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        *,
        on_close: Callable[[AmqpSubscription], None],
        timeout_s: float,
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._on_close = on_close
        self._timeout_s = timeout_s
        self._inbox: asyncio.Queue[AmqpDelivery | None] = asyncio.Queue()
        self._consumer_tag: str | None = None
        self._closed = False

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(AmqpDelivery(message))

    def __aiter__(self) -> AmqpSubscription:
        return self

    async def __anext__(self) -> AmqpDelivery:
        delivery = _CLOSED if self._closed else await self._inbox.get()
        if delivery is _CLOSED:
            raise StopAsyncIteration
        return delivery

    async def close(self) -> None:
        """Cancel the consumer and close the channel. Deliveries still buffered here
        are unacked, so they go back to the queue with the rest."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(_CLOSED)
        self._on_close(self)
        try:
            with translated("close subscription"):
                async with asyncio.timeout(self._timeout_s):
                    await self._stop_consuming()
        except BackendUnavailable as exc:
            # The connection is gone: the broker already took the deliveries back.
            log.info("amqp.subscription_closed_uncleanly", error=exc.message)

    async def _stop_consuming(self) -> None:
        if self._consumer_tag is not None and not self._channel.is_closed:
            await self._queue.cancel(self._consumer_tag)
        await self._channel.close()
