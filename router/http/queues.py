"""Agent queues: ``GET /v1/queues`` (depth, oldest deadline, consumers) and
``GET /v1/queues/{name}/subscribe``, the WebSocket agent tools consume over.

Socket protocol: JSON text frames, see ``router.http.frames``. The daemon sends each
delivery as an item frame, at most ``capacity`` unacknowledged at once, and an error
frame for a frame it cannot use; the tool answers ack or nack. Items not acked when the
socket closes go back to the queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from aiohttp import WSMsgType, web

from router.errors import InputError, NotFound
from router.http.frames import Answer, decode_json, item_frame, send_error, to_answer
from router.http.keys import BROKER, CLOCK, SETTINGS, SOCKETS, STORE
from router.http.responses import json_response
from router.ports import Delivery, Subscription
from router.queue_spec import is_agent_queue

log = structlog.get_logger("router.http.queues")
routes = web.RouteTableDef()

MAX_CAPACITY = 1000


class _ItemId(msgspec.Struct):
    item_id: str


@routes.get("/v1/queues")
async def list_queues(request: web.Request) -> web.Response:
    return json_response({"queues": await queue_states(request.app)})


async def queue_states(app: web.Application) -> list[dict[str, Any]]:
    """Per configured queue: waiting in the backlog, ready in the agent queue, consumers,
    the oldest deadline waiting, and the items at risk (waiting and due within
    ``routing.at_risk_s``, or overdue). ``GET /v1/queues`` and the gauges read this."""
    broker = app[BROKER]
    horizon = timedelta(seconds=app[SETTINGS].routing.at_risk_s)
    stats = await app[STORE].backlog_stats(at_risk_before=app[CLOCK].now() + horizon)
    configured = app[SETTINGS].queue_names
    names = configured + tuple(sorted(q for q in stats if q not in configured))
    depths = await asyncio.gather(*(broker.depth(name) for name in names))
    out = []
    for name, depth in zip(names, depths, strict=True):
        backlog = stats.get(name)
        waiting = backlog.depth if backlog else 0
        out.append(
            {
                "name": name,
                "backlog": waiting,
                "ready": depth.ready,
                "depth": waiting + depth.ready,
                "consumers": depth.consumers,
                "oldest_deadline": backlog.oldest_deadline if backlog else None,
                "at_risk": backlog.at_risk if backlog else 0,
            }
        )
    return out


@routes.get("/v1/queues/{name}/subscribe")
async def subscribe(request: web.Request) -> web.WebSocketResponse:
    name = request.match_info["name"]
    if name not in request.app[SETTINGS].queue_names and not is_agent_queue(name):
        raise NotFound(f"no queue {name!r}")
    capacity = _capacity(request)
    subscription = await request.app[BROKER].subscribe(name, prefetch=capacity)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    log.info("agent.subscribed", queue=name, capacity=capacity)
    try:
        await _serve(ws, subscription)
    finally:
        request.app[SOCKETS].discard(ws)
        # aiohttp cancels the handler when the peer goes away; the subscription must
        # still close so its unacked items return to the queue at once
        await asyncio.shield(subscription.close())
        log.info("agent.unsubscribed", queue=name)
    return ws


def _capacity(request: web.Request) -> int:
    raw = request.query.get("capacity", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CAPACITY:
        raise InputError(f"capacity must be a whole number from 1 to {MAX_CAPACITY}")
    return int(raw)


async def _serve(ws: web.WebSocketResponse, subscription: Subscription) -> None:
    held: dict[str, Delivery] = {}
    sender = asyncio.create_task(_send_items(ws, subscription, held))
    try:
        await _read_answers(ws, held)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _send_items(
    ws: web.WebSocketResponse, subscription: Subscription, held: dict[str, Delivery]
) -> None:
    async for delivery in subscription:
        item_id = msgspec.json.decode(delivery.body, type=_ItemId).item_id
        held[item_id] = delivery
        await ws.send_str(item_frame(delivery.body, redelivered=delivery.redelivered))


async def _read_answers(ws: web.WebSocketResponse, held: dict[str, Delivery]) -> None:
    async for frame in ws:
        if frame.type != WSMsgType.TEXT:
            continue
        try:
            answer = to_answer(decode_json(frame.data))
        except InputError as exc:
            await send_error(ws, "bad_frame", exc.message)
            continue
        await _settle(ws, held, answer)


async def _settle(ws: web.WebSocketResponse, held: dict[str, Delivery], answer: Answer) -> None:
    item_id = answer.item_id
    delivery = held.pop(item_id, None) if item_id else None
    if delivery is None:
        await send_error(ws, "unknown_item", f"no unacknowledged item {item_id!r} on this socket")
    elif answer.ack:
        await delivery.ack()
    else:
        await delivery.nack(requeue=answer.requeue)
