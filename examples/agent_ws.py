"""A minimal agent tool over WebSocket, on ``router.client``: print each work item, then
ack it. ``omniroute agent`` (router/agent_cli.py) is the fuller example."""

import asyncio
import os

from router.client import Client

URL = os.environ.get("OMNIROUTE_URL", "http://127.0.0.1:8080")
TOKEN = os.environ["OMNIROUTE_API_TOKEN"]


async def main() -> None:
    async with (
        Client(URL, TOKEN) as omniroute,
        omniroute.subscribe("default", capacity=3) as offers,
    ):
        async for offer in offers:
            item = offer.item
            print(item.priority, item.deadline, item.message.text, flush=True)
            await offer.ack()


asyncio.run(main())
