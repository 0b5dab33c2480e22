"""The reference: the most naive pipeline that still keeps the durability promise.

``POST /v1/messages`` → read and parse the JSON (stdlib ``json``) → ONE Redis pipeline
of three commands (``SET NX`` the dedupe key, ``SET`` the message, ``ZADD`` it to a
backlog) → ONE persistent publish with publisher confirms (aio-pika, default exchange)
to a durable queue → ``202``. The work item it publishes is ``{"item_id", "queue",
"message"}`` with the message as received plus its ``message_id`` (also in the 202
answer), so the consumer finds ``message.attributes.bench_t`` and ``message.message_id``
where it finds them in omniroute's work items.

No identity, threading, history, rules, SLA, backlog ordering, metrics or logs: this is
the floor a real router pays for "stored, then queued" on the same servers.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import redis.asyncio as aioredis
from aiohttp import web

REDIS = web.AppKey("redis", aioredis.Redis)
EXCHANGE = web.AppKey("exchange", aio_pika.abc.AbstractExchange)
OPTIONS = web.AppKey("options", argparse.Namespace)


async def post_message(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {request.app[OPTIONS].token}":
        return web.json_response({"error": {"code": "unauthorized"}}, status=401)
    body = await request.read()
    try:
        message = json.loads(body)
        dedupe = f"{message['source']}\x00{message['external_id']}"
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": {"code": "bad_request"}}, status=400)
    prefix = request.app[OPTIONS].prefix
    item_id = uuid.uuid4().hex
    pipe = request.app[REDIS].pipeline(transaction=False)
    pipe.set(f"{prefix}:dedupe:{dedupe}", item_id, nx=True)
    pipe.set(f"{prefix}:msg:{item_id}", body)
    pipe.zadd(f"{prefix}:backlog", {item_id: time.time()})
    fresh, _, _ = await pipe.execute()
    if not fresh:
        return web.json_response({"duplicate": True}, status=200)
    message["message_id"] = item_id
    item = {"item_id": item_id, "queue": "default", "message": message}
    await request.app[EXCHANGE].publish(
        aio_pika.Message(
            json.dumps(item).encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=item_id,
        ),
        routing_key=request.app[OPTIONS].queue,
    )
    return web.json_response({"message_id": item_id}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _backends(app: web.Application) -> AsyncIterator[None]:
    options = app[OPTIONS]
    app[REDIS] = aioredis.Redis.from_url(options.redis_url)
    connection = await aio_pika.connect_robust(options.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(options.queue, durable=True)
    app[EXCHANGE] = channel.default_exchange
    try:
        yield
    finally:
        await connection.close()
        await app[REDIS].aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True, help="Redis key prefix")
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--queue", required=True, help="durable queue to publish to")
    options = parser.parse_args()
    app = web.Application()
    app[OPTIONS] = options
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(_backends)
    web.run_app(app, host="127.0.0.1", port=options.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
