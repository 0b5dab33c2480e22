"""A minimal agent tool on RabbitMQ: prefetch is its capacity; ack after handling."""

import asyncio
import json
import os

import aio_pika

AMQP_URL = os.environ.get("OMNIROUTE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def main() -> None:
    async with await aio_pika.connect_robust(AMQP_URL) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=3)
        queue = await channel.declare_queue("omniroute.queue.default", passive=True)
        async with queue.iterator() as items:
            async for message in items:
                item = json.loads(message.body)
                print(item["priority"], item["deadline"], item["message"]["text"], flush=True)
                await message.ack()


asyncio.run(main())
