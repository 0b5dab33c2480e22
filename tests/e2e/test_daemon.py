"""The real daemon process: a newcomer's path on both backends, restart, scale-out."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.e2e.conftest import Daemon, DaemonFactory, session
from tests.http.conftest import message

pytestmark = pytest.mark.e2e


async def post(daemon: Daemon, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with session() as s, s.post(f"{daemon.url}/v1/messages", json=body) as resp:
        return resp.status, await resp.json()


async def receive_ws(daemon: Daemon, ack: bool = True) -> dict[str, Any]:
    url = f"{daemon.url}/v1/queues/default/subscribe"
    async with session() as s, s.ws_connect(url) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 15)
        if ack:
            await ws.send_json({"ack": frame["item"]["item_id"]})
        return dict(frame["item"])


async def test_embedded_daemon_keeps_everything_across_a_restart(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    env = {"OMNIROUTE_DATA_DIR": str(tmp_path / "data")}
    daemon = daemon_factory(env)
    await daemon.start()
    status, first = await post(daemon, message(external_id="msg-123"))
    assert status == 202
    item = await receive_ws(daemon)
    assert item["conversation_id"] == first["conversation_id"]
    _, unacked = await post(daemon, message(external_id="msg-124", thread="other"))
    held = await receive_ws(daemon, ack=False)  # returned to the queue when the socket closes
    assert held["conversation_id"] == unacked["conversation_id"]
    _, waiting = await post(daemon, message(external_id="msg-125", thread="third"))
    assert await daemon.stop() == 0

    again = daemon_factory(env)
    await again.start()
    status, dup = await post(again, message(external_id="msg-123"))
    assert (status, dup["duplicate"], dup["message_id"]) == (200, True, first["message_id"])
    async with session() as s:
        url = f"{again.url}/v1/customers/{first['customer_id']}/history"
        async with s.get(url) as resp:
            history = (await resp.json())["messages"]
    assert len(history) == 3
    received = {(await receive_ws(again))["conversation_id"] for _ in range(2)}
    assert received == {unacked["conversation_id"], waiting["conversation_id"]}


async def test_two_daemons_on_redis_and_rabbitmq_share_work_without_duplicates(
    daemon_factory: DaemonFactory, redis_url: str, redis_prefix: str, amqp_url: str
) -> None:
    amqp_prefix = f"e2e{uuid.uuid4().hex[:6]}.omniroute"
    env = {
        "OMNIROUTE_REDIS_URL": redis_url,
        "OMNIROUTE_REDIS_PREFIX": redis_prefix,
        "OMNIROUTE_AMQP_URL": amqp_url,
        "OMNIROUTE_AMQP_PREFIX": amqp_prefix,
        "OMNIROUTE_DISPATCH_POLL_MS": "20",
    }
    daemons = [daemon_factory(env), daemon_factory(env)]
    await asyncio.gather(*(d.start() for d in daemons))
    bodies = [
        message(
            external_id=f"m{i}",
            thread=f"t{i}",
            sender={"identities": [{"kind": "chat_visitor", "value": f"v{i}", "verified": True}]},
        )
        for i in range(60)
    ]
    # Every message is posted to both daemons at once: one stores it, one sees a duplicate.
    results = await asyncio.gather(*(post(d, b) for b in bodies for d in daemons))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 60 + [202] * 60
    conversations = {r["conversation_id"] for _, r in results}
    assert len(conversations) == 60

    received: list[str] = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=20)
        queue = await channel.declare_queue(f"{amqp_prefix}.queue.default", passive=True)
        async with queue.iterator() as messages:
            async for incoming in messages:
                received.append(json.loads(incoming.body)["conversation_id"])
                await incoming.ack()
                if len(received) == 60:
                    break
        await asyncio.sleep(0.3)  # nothing more may arrive: a duplicate would show up now
        extra = await queue.get(fail=False)
    assert extra is None
    assert sorted(received) == sorted(conversations)
    for daemon in daemons:
        assert await daemon.stop() == 0
