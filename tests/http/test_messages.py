"""POST /v1/messages → stored → released → received by an agent tool, on both backends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import pytest

from router.settings import Settings
from tests.http.conftest import AUTH, Client, message


async def post(client: Client, body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/v1/messages", json=body, headers=kw.pop("headers", AUTH), **kw)
    return resp.status, await resp.json()


async def receive(client: Client, queue: str = "default", capacity: int = 1) -> dict[str, Any]:
    async with client.ws_connect(
        f"/v1/queues/{queue}/subscribe?capacity={capacity}", headers=AUTH
    ) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        assert frame["type"] == "item"
        await ws.send_json({"ack": frame["item"]["item_id"]})
        return dict(frame["item"])


async def test_example_message_is_accepted_and_reaches_an_agent_tool(client: Client) -> None:
    status, accepted = await post(client, message(external_id="msg-123"))
    assert status == 202
    assert set(accepted) == {
        "message_id",
        "customer_id",
        "conversation_id",
        "queue",
        "priority",
        "deadline",
        "duplicate",
    }
    assert accepted["queue"] == "default"
    assert accepted["priority"] == 3
    assert accepted["deadline"] == "2026-11-22T11:00:00Z"
    assert accepted["duplicate"] is False

    item = await receive(client)
    assert item["item_id"].startswith("itm_")
    assert item["conversation_id"] == accepted["conversation_id"]
    assert item["customer_id"] == accepted["customer_id"]
    assert item["queue"] == "default"
    assert item["priority"] == 3
    assert item["deadline"] == "2026-11-22T11:00:00Z"
    assert item["channel"] == "chat"
    assert item["message"]["text"] == "My order arrived broken"
    assert item["message"]["sender"]["name"] == "Maria Lopez"
    assert item["message"]["attachments"][0]["name"] == "photo.jpg"
    assert item["customer"]["name"] == "Maria Lopez"
    assert {"kind": "chat_visitor", "value": "v-991", "verified": True} in item["customer"][
        "identities"
    ]
    assert item["history"][0]["message_id"] == accepted["message_id"]
    assert {r["kind"] for r in item["reasons"]} >= {"default", "sla"}


async def test_a_repeat_is_a_duplicate_and_changes_nothing(client: Client) -> None:
    body = message(external_id="msg-dup")
    _, first = await post(client, body)
    status, second = await post(client, body)
    assert status == 200
    assert second["duplicate"] is True
    assert {k: second[k] for k in ("message_id", "customer_id", "conversation_id")} == {
        k: first[k] for k in ("message_id", "customer_id", "conversation_id")
    }
    resp = await client.get(f"/v1/customers/{first['customer_id']}/history", headers=AUTH)
    assert len((await resp.json())["messages"]) == 1
    resp = await client.get(f"/v1/conversations/{first['conversation_id']}", headers=AUTH)
    assert (await resp.json())["message_count"] == 1


async def test_messages_of_one_thread_join_one_conversation(client: Client) -> None:
    _, one = await post(client, message())
    _, two = await post(client, message(text="Hello?"))
    _, other = await post(client, message(thread="another-session"))
    assert one["conversation_id"] == two["conversation_id"]
    assert other["conversation_id"] != one["conversation_id"]
    assert one["customer_id"] == two["customer_id"] == other["customer_id"]
    resp = await client.get(f"/v1/conversations/{one['conversation_id']}", headers=AUTH)
    conv = await resp.json()
    assert conv["message_count"] == 2
    assert conv["state"] == "open"


async def test_items_arrive_most_urgent_first(
    client: Client, clock: Any, settings: Settings
) -> None:
    # Arrivals later in time have later deadlines; fill more than the ready depth so the
    # backlog, not the agent queue, decides the order.
    count = settings.dispatch.ready_depth + 5
    for i in range(count):
        await post(
            client,
            message(
                thread=f"t{i}",
                sender={
                    "identities": [{"kind": "chat_visitor", "value": f"v-{i}", "verified": True}]
                },
            ),
        )
        clock.advance(60)
    deadlines = []
    async with client.ws_connect("/v1/queues/default/subscribe?capacity=1", headers=AUTH) as ws:
        for _ in range(count):
            frame = await asyncio.wait_for(ws.receive_json(), 10)
            deadlines.append(frame["item"]["deadline"])
            await ws.send_json({"ack": frame["item"]["item_id"]})
    assert deadlines == sorted(deadlines)
    assert len(set(deadlines)) == count


async def test_unacked_items_return_when_the_socket_closes(client: Client) -> None:
    _, accepted = await post(client, message())
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as ws:
        first = await asyncio.wait_for(ws.receive_json(), 10)
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as ws:
        again = await asyncio.wait_for(ws.receive_json(), 10)
        await ws.send_json({"nack": again["item"]["item_id"], "requeue": False})
    assert again["item"]["item_id"] == first["item"]["item_id"]
    assert again["redelivered"] is True
    assert again["item"]["conversation_id"] == accepted["conversation_id"]


async def test_unknown_ack_gets_an_error_frame(client: Client) -> None:
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as ws:
        await ws.send_json({"ack": "itm_nope"})
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        assert frame == {
            "type": "error",
            "error": {"code": "unknown_item", "message": frame["error"]["message"]},
        }
        await ws.send_str("not json")
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        assert frame["error"]["code"] == "bad_frame"


async def test_queue_list_reports_depth_oldest_deadline_and_items_at_risk(
    client: Client, clock: Any
) -> None:
    _, accepted = await post(client, message())
    for _ in range(200):  # the item may be in transit from the backlog to the agent queue
        resp = await client.get("/v1/queues", headers=AUTH)
        assert resp.status == 200
        (queue,) = (await resp.json())["queues"]
        if queue["depth"] == 1:
            break
        await asyncio.sleep(0.01)  # waiting for the dispatcher, not for time
    assert queue["name"] == "default"
    assert queue["depth"] == 1
    assert queue["consumers"] == 0
    assert queue["oldest_deadline"] == accepted["deadline"]  # no consumer: it waits
    assert queue["at_risk"] == 0  # due in an hour, not within routing.at_risk_s
    clock.advance(3600 - 600)  # ten minutes left
    (queue,) = (await (await client.get("/v1/queues", headers=AUTH)).json())["queues"]
    assert queue["at_risk"] == 1


@pytest.mark.parametrize("backend", ["production"], indirect=True)
async def test_amqp_agent_tool_consumes_omniroute_queue_default(
    client: Client, settings: Settings
) -> None:
    _, accepted = await post(client, message())
    connection = await aio_pika.connect(settings.amqp.url.get())
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(f"{settings.amqp.prefix}.queue.default", passive=True)
        async with queue.iterator() as messages:
            async for incoming in messages:
                item = json.loads(incoming.body)
                await incoming.ack()
                break
    assert item["conversation_id"] == accepted["conversation_id"]
    assert incoming.message_id == item["item_id"]


@pytest.mark.parametrize("backend", ["production"], indirect=True)
async def test_messages_published_to_omniroute_inbound_are_ingested(
    client: Client, settings: Settings
) -> None:
    body = message(external_id="via-amqp")
    connection = await aio_pika.connect(settings.amqp.url.get())
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"{settings.amqp.prefix}.inbound")
        await exchange.publish(aio_pika.Message(json.dumps(body).encode()), routing_key="")
    item = await receive(client)
    assert item["message"]["text"] == body["text"]
    _, again = await post(client, body)
    assert again["duplicate"] is True


async def test_the_inbox_is_kept_on_the_stored_message(client: Client) -> None:
    body = message(inbox="email:sales@acme.example")
    response = await client.post("/v1/messages", json=body, headers=AUTH)
    assert response.status == 202, await response.text()
    customer_id = (await response.json())["customer_id"]
    page = await client.get(f"/v1/customers/{customer_id}/history", headers=AUTH)
    [stored] = (await page.json())["messages"]
    assert stored["attributes"]["inbox"] == "email:sales@acme.example"
