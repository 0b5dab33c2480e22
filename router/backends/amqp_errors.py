"""The RabbitMQ boundary: aio-pika, aiormq and socket errors become ``router.errors``,
so the core never catches ``aiormq.*``. Shared by the broker and its subscriptions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import aiormq
import pamqp.exceptions
from aio_pika.exceptions import MessageProcessError

from router.errors import BackendUnavailable, ConfigError, Conflict

_BACKEND_ERRORS: Final = (
    aiormq.exceptions.AMQPError,  # connection and channel closes, nacked publishes
    aiormq.exceptions.ChannelInvalidStateError,  # a RuntimeError: channel not open
    pamqp.exceptions.PAMQPException,  # frame errors
    OSError,  # refused, reset, unreachable; TimeoutError of asyncio.timeout too
    RuntimeError,  # aio-pika reports a connection in the middle of reconnecting so
)


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """The boundary: aio-pika, aiormq and socket errors become ``router.errors``."""
    try:
        yield
    except MessageProcessError as exc:
        raise Conflict(f"delivery is already settled ({action})") from exc
    except _BACKEND_ERRORS as exc:
        raise BackendUnavailable(f"RabbitMQ: {action} failed: {exc!r}") from exc


@contextlib.contextmanager
def refused_arguments() -> Iterator[None]:
    """A queue that exists with other arguments (another ``queue_type``) is a setting
    to fix, not an outage: start-up stops with the way out."""
    try:
        yield
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(
            [
                f"amqp.queue_type: RabbitMQ refused a queue declaration ({exc}); a queue "
                "keeps the type it was created with: use a new amqp.prefix, or drain and "
                "delete the old queues"
            ]
        ) from exc
