"""A minimal agent tool over WebSocket: print each work item, then ack it."""

import asyncio
import os

import aiohttp

URL = os.environ.get("OMNIROUTE_URL", "http://127.0.0.1:8080")
TOKEN = os.environ["OMNIROUTE_API_TOKEN"]


async def main() -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.ws_connect(f"{URL}/v1/queues/default/subscribe?capacity=3") as ws:
            async for frame in ws:
                item = frame.json()["item"]
                print(item["priority"], item["deadline"], item["message"]["text"], flush=True)
                await ws.send_json({"ack": item["item_id"]})


asyncio.run(main())
