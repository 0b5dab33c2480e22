"""Presence, capacity per channel, the agent socket and lease expiry, on both backends.

The daemon runs on a manual clock with ``run_timers=False``: a lease lapses when the
test moves the clock and calls ``app[AGENTS].sweep()``, never by waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from router.clock import ManualClock
from router.http.keys import AGENTS
from tests.http.conftest import AUTH, Client, message

POLICY = """
[routing]
queues = ["default", "billing"]
sticky_days = 7
reopen_window_s = 3600
"""

Socket = ClientWebSocketResponse


@pytest.fixture
def policy() -> str:
    return POLICY


@pytest.fixture
def client(app_client: Client) -> Client:
    return app_client


def customer(n: int, channel: str = "chat", **overrides: Any) -> dict[str, Any]:
    """A message from customer ``n`` on ``channel``, in a conversation of its own."""
    kind = "email" if channel == "email" else "chat_visitor"
    value = f"c{n}@example.com" if channel == "email" else f"v-{n}"
    body = message(
        channel=channel,
        source="mail" if channel == "email" else "acme-webchat",
        thread=f"t-{n}",
        sender={"name": f"Customer {n}", "identities": [{"kind": kind, "value": value}]},
        attachments=[],
    )
    body["sender"]["identities"][0]["verified"] = True
    return body | overrides


async def post(client: Client, body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def announce(client: Client, agent_id: str, **body: Any) -> dict[str, Any]:
    resp = await client.post(f"/v1/agents/{agent_id}/presence", json=body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def agent(client: Client, agent_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/agents/{agent_id}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def next_frame(ws: Socket, kind: str = "item") -> dict[str, Any]:
    """The next frame of ``kind``, skipping heartbeats."""
    while True:
        frame = dict(await asyncio.wait_for(ws.receive_json(), 10))
        if frame["type"] == kind:
            return frame
        assert frame["type"] == "heartbeat", frame


async def nothing_pending(client: Client, ws: Socket, queue: str = "default") -> None:
    """Everything released to ``queue`` was delivered to a consumer, and the socket's
    next frame answers a heartbeat: no item was forwarded in between."""
    for _ in range(500):  # waiting for the dispatcher and the broker, not for time
        queues = (await (await client.get("/v1/queues", headers=AUTH)).json())["queues"]
        (state,) = [q for q in queues if q["name"] == queue]
        if state["depth"] == 0:
            break
        await asyncio.sleep(0.01)
    assert state["depth"] == 0
    await ws.send_json({"type": "heartbeat"})
    frame = await asyncio.wait_for(ws.receive_json(), 10)
    assert frame["type"] == "heartbeat", frame


def subscribe(client: Client, agent_id: str) -> Any:
    return client.ws_connect(f"/v1/agents/{agent_id}/subscribe", headers=AUTH)


async def test_announce_and_list_agents(client: Client, clock: ManualClock) -> None:
    state = await announce(
        client, "ana", status="available", queues=["default"], capacity={"chat": 3}, lease_s=60
    )
    assert state["agent_id"] == "ana"
    assert state["status"] == "available"
    assert state["lease_until"] == "2026-11-22T10:01:00Z"
    await announce(client, "bob", status="away", skills=["es"])
    resp = await client.get("/v1/agents", headers=AUTH)
    assert resp.status == 200
    agents = (await resp.json())["agents"]
    assert [a["agent_id"] for a in agents] == ["ana", "bob"]
    ana, bob = agents
    assert ana["queues"] == ["default"]
    assert ana["capacity"] == {"chat": 3}
    assert ana["holding"] == []
    assert ana["load"] == {}
    assert bob["status"] == "away"
    assert bob["skills"] == ["es"]
    assert bob["lease_until"] == "2026-11-22T10:00:30Z"  # agents.lease_s
    clock.advance(31)
    assert (await agent(client, "bob"))["status"] == "offline"


async def test_capacity_is_per_channel(client: Client, clock: ManualClock) -> None:
    await announce(
        client, "ana", status="available", queues=["default"], capacity={"chat": 1, "email": 1}
    )
    async with subscribe(client, "ana") as ws:
        first = await post(client, customer(1))
        clock.advance(1)
        second = await post(client, customer(2))
        clock.advance(1)
        mail = await post(client, customer(3, channel="email"))
        received = [await next_frame(ws), await next_frame(ws)]
        ids = [frame["item"]["conversation_id"] for frame in received]
        assert ids == [first["conversation_id"], mail["conversation_id"]]
        await nothing_pending(client, ws)  # the second chat waits for a free chat slot
        state = await agent(client, "ana")
        assert state["load"] == {"chat": 1, "email": 1}
        assert {h["item_id"] for h in state["holding"]} == {
            frame["item"]["item_id"] for frame in received
        }
        await ws.send_json({"ack": received[0]["item"]["item_id"]})
        freed = await next_frame(ws)
        assert freed["item"]["conversation_id"] == second["conversation_id"]
        assert freed["item"]["channel"] == "chat"
        await ws.send_json({"ack": freed["item"]["item_id"]})
        await ws.send_json({"ack": received[1]["item"]["item_id"]})
        await nothing_pending(client, ws)
    assert (await agent(client, "ana"))["holding"] == []


async def test_more_items_than_a_full_channel_holds_back_go_to_other_agents(
    client: Client, clock: ManualClock
) -> None:
    await announce(client, "ana", status="available", queues=["default"], capacity={"chat": 1})
    async with subscribe(client, "ana") as ws:
        accepted = []
        for n in range(3):
            accepted.append(await post(client, customer(n)))
            clock.advance(1)
        first = await next_frame(ws)
        assert first["item"]["conversation_id"] == accepted[0]["conversation_id"]
        await nothing_pending(client, ws)  # the second waits here, the third is given back
        async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as other:
            given_back = await next_frame(other)
            await other.send_json({"ack": given_back["item"]["item_id"]})
        assert given_back["item"]["conversation_id"] == accepted[2]["conversation_id"]
        assert given_back["redelivered"] is True
        assert (await agent(client, "ana"))["load"] == {"chat": 1}
        await ws.send_json({"ack": first["item"]["item_id"]})
        second = await next_frame(ws)
        assert second["item"]["conversation_id"] == accepted[1]["conversation_id"]
        await ws.send_json({"ack": second["item"]["item_id"]})
        await nothing_pending(client, ws)


async def test_lease_expiry_closes_the_socket_and_returns_the_item(
    client: Client, clock: ManualClock
) -> None:
    await announce(client, "ana", status="available", queues=["default"], lease_s=30)
    async with subscribe(client, "ana") as ws:
        accepted = await post(client, customer(1))
        offered = await next_frame(ws)
        assert (await agent(client, "ana"))["load"] == {"chat": 1}
        clock.advance(31)
        await client.server.app[AGENTS].sweep()
        closing = await asyncio.wait_for(ws.receive(), 10)
        while closing.type == WSMsgType.TEXT:  # a heartbeat sent before the close
            closing = await asyncio.wait_for(ws.receive(), 10)
        assert closing.type == WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (4000, "lease expired")
    state = await agent(client, "ana")
    assert (state["status"], state["holding"]) == ("offline", [])
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as other:
        again = await next_frame(other)
        await other.send_json({"ack": again["item"]["item_id"]})
    assert again["item"]["item_id"] == offered["item"]["item_id"]
    assert again["item"]["conversation_id"] == accepted["conversation_id"]
    assert again["redelivered"] is True


async def test_a_dropped_socket_returns_its_items_at_once(client: Client) -> None:
    await announce(client, "ana", status="available", queues=["default"])
    async with subscribe(client, "ana") as ws:
        await post(client, customer(1))
        offered = await next_frame(ws)
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as other:
        again = await next_frame(other)
        await other.send_json({"ack": again["item"]["item_id"]})
    assert again["item"]["item_id"] == offered["item"]["item_id"]
    assert (await agent(client, "ana"))["holding"] == []


async def test_the_personal_queue_reaches_the_agent_socket(
    client: Client, clock: ManualClock
) -> None:
    conv = (await post(client, customer(1)))["conversation_id"]
    for kind in ("replied", "resolved"):
        resp = await client.post(
            f"/v1/conversations/{conv}/events", json={"type": kind, "agent_id": "ana"}, headers=AUTH
        )
        assert resp.status == 200, await resp.text()
    clock.advance(2 * 86400)  # past the reopen window: a new conversation, offered to ana
    again = await post(client, customer(1, thread="t-back", external_id="back"))
    assert again["queue"] == "agent.ana"
    await announce(client, "ana", status="available", queues=["billing"])
    async with subscribe(client, "ana") as ws:
        frame = await next_frame(ws)
        await ws.send_json({"ack": frame["item"]["item_id"]})
    assert frame["item"]["conversation_id"] == again["conversation_id"]
    assert frame["item"]["queue"] == "agent.ana"


async def test_away_stops_new_items_until_available(client: Client) -> None:
    await announce(client, "ana", status="away", queues=["default"])
    async with subscribe(client, "ana") as ws:
        accepted = await post(client, customer(1))
        await nothing_pending(client, ws)
        await ws.send_json({"type": "presence", "status": "available", "queues": ["default"]})
        frame = await next_frame(ws)
        assert frame["item"]["conversation_id"] == accepted["conversation_id"]
        await ws.send_json({"ack": frame["item"]["item_id"]})
        await nothing_pending(client, ws)


async def test_heartbeats_renew_the_lease(client: Client, clock: ManualClock) -> None:
    await announce(client, "ana", status="available", queues=["default"], lease_s=30)
    async with subscribe(client, "ana") as ws:
        first = await next_frame(ws, "heartbeat")
        assert first == {"type": "heartbeat", "lease_until": "2026-11-22T10:00:30Z"}
        clock.advance(20)
        await ws.send_json({"type": "heartbeat"})
        renewed = await next_frame(ws, "heartbeat")
        assert renewed["lease_until"] == "2026-11-22T10:00:50Z"
        clock.advance(11)  # a heartbeat is due (agents.heartbeat_s); the lease holds
        await client.server.app[AGENTS].sweep()
        due = await next_frame(ws, "heartbeat")
        assert due["lease_until"] == "2026-11-22T10:00:50Z"
    assert (await agent(client, "ana"))["status"] == "available"


async def test_bad_presence_is_refused(client: Client) -> None:
    cases = [
        ("ana", {"status": "available", "queues": ["nope"]}, 422, "unknown_queue"),
        ("-ana", {"status": "available"}, 422, "invalid_agent_id"),
        ("ana", {"status": "busy"}, 400, "bad_request"),
        ("ana", {"status": "available", "mood": "good"}, 400, "bad_request"),
    ]
    for agent_id, body, status, code in cases:
        resp = await client.post(f"/v1/agents/{agent_id}/presence", json=body, headers=AUTH)
        assert resp.status == status, body
        assert (await resp.json())["error"]["code"] == code
    resp = await client.post("/v1/agents/ana/presence", data=b"{", headers=AUTH)
    assert resp.status == 400
    resp = await client.get("/v1/agents/nobody", headers=AUTH)
    assert resp.status == 404
    resp = await client.get("/v1/agents/-ana/subscribe", headers=AUTH)
    assert resp.status == 422


async def test_bad_frames_get_error_frames_and_the_socket_keeps_working(client: Client) -> None:
    async with subscribe(client, "ana") as ws:  # no presence yet: no lease, no heartbeat
        for bad, code in [
            ("not json", "bad_frame"),
            ('{"type": "dance"}', "bad_frame"),
            ('{"type": "presence", "status": "busy"}', "bad_frame"),
            ('{"type": "presence", "status": "available", "queues": ["x"]}', "unknown_queue"),
            ('{"ack": "itm_nope"}', "unknown_item"),
            ('{"type": "heartbeat"}', "not_found"),  # nothing to renew yet
        ]:
            await ws.send_str(bad)
            frame = await next_frame(ws, "error")
            assert frame["error"]["code"] == code, bad
        await ws.send_json({"type": "presence", "status": "available", "queues": ["default"]})
        assert (await next_frame(ws, "heartbeat"))["lease_until"] == "2026-11-22T10:00:30Z"
        accepted = await post(client, customer(1))
        frame = await next_frame(ws)
        assert frame["item"]["conversation_id"] == accepted["conversation_id"]
        await ws.send_json({"nack": frame["item"]["item_id"], "requeue": False})
        await nothing_pending(client, ws)
    assert (await agent(client, "ana"))["holding"] == []
