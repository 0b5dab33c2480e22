"""Publishing a batch with publisher confirms on the aiormq channel under aio-pika:
send every message at once (no waiting between them), then wait for all the confirms.

Every message carries ``message_id``, ``content_type=application/json`` and
``delivery_mode=2``. This is the broker's hot path. Measured CPU per message
(persistent 1 KB bodies, same box): aio-pika ``Exchange.publish`` awaited one at a time
~435 µs; a ``basic_publish`` task per message (``_send_each``) ~165 µs; the batch in one
write (``_send_in_one_write``) ~93 µs at 10 messages, ~52 µs at 100.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, Final

import aiormq
import structlog
from aiormq.abc import ChannelFrame, DeliveredMessage
from pamqp.body import ContentBody
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from router.errors import BackendUnavailable

log = structlog.get_logger(__name__)

_CONTENT_TYPE: Final = "application/json"
_PERSISTENT: Final = 2
ONE_WRITE_SUPPORTED: Final = version("aiormq").split(".")[0] == "7" and hasattr(
    ChannelFrame, "marshall"
)
"""``_send_in_one_write`` mirrors aiormq 7's ``basic_publish``; other versions take the
public path."""


def _properties(message_id: str) -> Basic.Properties:
    return Basic.Properties(
        content_type=_CONTENT_TYPE, delivery_mode=_PERSISTENT, message_id=message_id
    )


async def publish_confirmed(
    raw: aiormq.Channel,
    exchange: str,
    routing_key: str,
    bodies: Sequence[tuple[str, bytes]],
    *,
    mandatory: bool,
    one_write: bool,
) -> int:
    """Send every message at once (no waiting between them), then wait for all the
    confirms. Returns how many came back unroutable (``mandatory``); raises if any
    was refused or lost. ``one_write`` takes ``_send_in_one_write`` when this aiormq
    supports it (``ONE_WRITE_SUPPORTED``)."""
    send = _send_in_one_write if one_write and ONE_WRITE_SUPPORTED else _send_each
    pending = await send(raw, exchange, routing_key, bodies, mandatory=mandatory)
    results = await asyncio.gather(*pending, return_exceptions=True)
    return _count_returned(results, routing_key)


async def _send_each(
    raw: aiormq.Channel,
    exchange: str,
    routing_key: str,
    bodies: Sequence[tuple[str, bytes]],
    *,
    mandatory: bool,
) -> list[asyncio.Future[Any]]:
    """aiormq's public way: one ``basic_publish`` task per message, none waiting for
    the socket (``wait=False``); each resolves on its confirm. The lock inside keeps
    them in order. The fallback when aiormq is not version 7."""
    return [
        asyncio.ensure_future(
            raw.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=_properties(message_id),
                mandatory=mandatory,
                wait=False,
            )
        )
        for message_id, body in bodies
    ]


async def _send_in_one_write(
    raw: aiormq.Channel,
    exchange: str,
    routing_key: str,
    bodies: Sequence[tuple[str, bytes]],
    *,
    mandatory: bool,
) -> list[asyncio.Future[Any]]:
    """The whole batch as one write: what ``basic_publish`` does for one message
    (delivery tag, confirmation future, returned-message lookup), done for all of them
    under the channel lock, then every frame in one ``ChannelFrame``. No task per
    message and one socket write per batch: 2-3x less CPU than ``_send_each``.

    It relies on aiormq 7's channel bookkeeping (``lock``, ``delivery_tag``,
    ``confirmations``, ``message_id_delivery_tag``, ``write_queue``), checked at
    import (``ONE_WRITE_SUPPORTED``); the contract suite runs through it.
    """
    publish = Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory)
    frames: list[Any] = []
    confirmations: list[asyncio.Future[Any]] = []
    async with raw.lock:
        first_tag = raw.delivery_tag
        try:
            for message_id, body in bodies:
                raw.delivery_tag += 1
                confirmation = raw.create_future()
                raw.confirmations[raw.delivery_tag] = confirmation
                if mandatory:
                    _expect_return(raw, message_id, raw.delivery_tag, confirmation)
                confirmations.append(confirmation)
                header = ContentHeader(properties=_properties(message_id), body_size=len(body))
                frames += (publish, header, *_body_frames(raw, body))
            await raw.write_queue.put(ChannelFrame.marshall(raw.number, frames))
        except BaseException:
            _forget(raw, first_tag, confirmations)  # nothing reached the socket
            raise
    return confirmations


def _body_frames(raw: aiormq.Channel, body: bytes) -> list[ContentBody]:
    size = raw.max_content_size
    return [ContentBody(body[i : i + size]) for i in range(0, len(body), size)]


def _expect_return(
    raw: aiormq.Channel, message_id: str, tag: int, confirmation: asyncio.Future[Any]
) -> None:
    """Let aiormq find the confirmation when the broker returns this message."""
    raw.message_id_delivery_tag[message_id] = tag

    def forget(_: asyncio.Future[Any]) -> None:
        if raw.message_id_delivery_tag.get(message_id) == tag:
            del raw.message_id_delivery_tag[message_id]

    confirmation.add_done_callback(forget)


def _forget(raw: aiormq.Channel, first_tag: int, confirmations: list[asyncio.Future[Any]]) -> None:
    for tag in range(first_tag + 1, raw.delivery_tag + 1):
        raw.confirmations.pop(tag, None)
    raw.delivery_tag = first_tag
    for confirmation in confirmations:
        confirmation.cancel()


def _count_returned(results: Sequence[object], routing_key: str) -> int:
    """Raise for the first failed publish (a nack, a closed channel; a publish cancelled
    by a channel close is a failure too, not our cancellation); count the messages
    returned as unroutable."""
    for result in results:
        if isinstance(result, BaseException):
            raise BackendUnavailable(f"RabbitMQ: publish failed: {result!r}") from result
    returned = sum(isinstance(result, DeliveredMessage) for result in results)
    if returned:
        log.warning("amqp.returned", routing_key=routing_key, messages=returned)
    return returned
