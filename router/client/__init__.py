"""A small typed client for omniroute's agent contract: the HTTP API, the WebSocket
subscriptions and the RabbitMQ queues, all handing out the same ``Offer`` of a
``router.models.WorkItem``. ``omniroute agent`` (``router/agent_cli.py``) is built on it.

::

    from router.client import Client

    async with Client("http://127.0.0.1:8080", token) as omniroute:
        async with omniroute.subscribe("default", capacity=3) as offers:
            async for offer in offers:
                print(offer.item.queue, offer.item.deadline, offer.item.message.text)
                await offer.ack()

``AmqpSubscriber`` (RabbitMQ) is imported on first use, so a WebSocket tool never loads
aio-pika.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.client.http import Client
from router.client.models import ClientError, Offer
from router.client.ws import WsSubscription

if TYPE_CHECKING:
    from router.client.amqp import AmqpSubscriber, AmqpSubscription

__all__ = ["AmqpSubscriber", "AmqpSubscription", "Client", "ClientError", "Offer", "WsSubscription"]


def __getattr__(name: str) -> Any:
    if name in ("AmqpSubscriber", "AmqpSubscription"):
        from router.client import amqp

        return getattr(amqp, name)
    raise AttributeError(f"module 'router.client' has no attribute {name!r}")
