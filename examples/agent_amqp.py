"""A minimal agent tool on RabbitMQ, on ``router.client``: prefetch is its capacity;
ack after handling. The same ``Offer`` objects as over the WebSocket."""

import asyncio
import os

from router.client import AmqpSubscriber

AMQP_URL = os.environ.get("OMNIROUTE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def main() -> None:
    async with (
        AmqpSubscriber(AMQP_URL) as rabbit,
        rabbit.subscribe("default", prefetch=3) as offers,
    ):
        async for offer in offers:
            item = offer.item
            print(item.priority, item.deadline, item.message.text, flush=True)
            await offer.ack()


asyncio.run(main())
