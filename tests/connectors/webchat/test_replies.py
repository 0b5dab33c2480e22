"""Agent replies to web chat visitors (``POST /v1/conversations/{id}/replies``), on both
backends: the reply goes through the broker's events exchange, so on the production
backends a reply posted to one router process reaches a socket held by another."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from connectors.webchat.hub import ROUTING_KEY
from router.app import create_app
from router.clock import ManualClock
from router.http.keys import BROKER
from router.settings import Settings
from tests.connectors.webchat.chat import POLICY, connect, receive, send_message, start_session
from tests.http.conftest import AUTH, Client, message

REPLY_POLICY = (
    POLICY
    + """
[routing]
default_sla = "standard"

[sla.standard]
[[sla.standard.targets]]
first_response = "5m"
next_response = "10m"
resolution = "2h"
"""
)


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def policy() -> str:
    return REPLY_POLICY


@pytest.fixture
async def other(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    clock: ManualClock,
    backend: str,
    client: Client,
) -> Client:
    """A second router process on the same Redis and RabbitMQ (production); the same
    one on the embedded default, which is one process by design."""
    if backend == "embedded":
        return client
    return await aiohttp_client(create_app(settings, clock=clock))


async def reply(client: Client, conversation_id: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/v1/conversations/{conversation_id}/replies", json=body, headers=AUTH
    )
    return response.status, dict(await response.json())


async def test_an_agent_reply_reaches_every_socket_of_the_visitor(
    client: Client, other: Client, clock: ManualClock
) -> None:
    started = await start_session(client)
    tab = await connect(client, started["token"])
    second_tab = await connect(other, started["token"])
    ack = await send_message(tab, "c-1", "Where is my parcel?")
    conversation_id = ack["conversation_id"]

    clock.advance(60)
    status, answer = await reply(other, conversation_id, agent_id="ana", text="On its way!")
    assert status == 200, answer
    expected = {
        "type": "reply",
        "text": "On its way!",
        "agent_id": "ana",
        "at": "2026-11-22T10:01:00Z",
        "conversation_id": conversation_id,
    }
    assert await receive(tab) == expected
    assert await receive(second_tab) == expected
    # the agent event moved the conversation: assigned, first response met
    conversation = answer["conversation"]
    assert conversation["assignee"] == "ana"
    [first_response] = [c for c in conversation["clocks"] if c["kind"] == "first_response"]
    assert first_response["status"] == "met"
    assert answer["reply"]["text"] == "On its way!"
    await tab.close()
    await second_tab.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_replies_to_other_channels_are_409_outbound_unsupported(client: Client) -> None:
    response = await client.post("/v1/messages", json=message(), headers=AUTH)
    assert response.status == 202
    conversation_id = (await response.json())["conversation_id"]
    status, answer = await reply(client, conversation_id, agent_id="ana", text="Hi")
    assert status == 409
    assert answer["error"]["code"] == "outbound_unsupported"
    assert "chat channel (source 'acme-webchat')" in answer["error"]["message"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_reply_refusals(client: Client) -> None:
    status, answer = await reply(client, "con_nope", agent_id="ana", text="Hi")
    assert (status, answer["error"]["code"]) == (404, "not_found")
    ws = await connect(client, (await start_session(client))["token"])
    conversation_id = (await send_message(ws, "c-1", "hello"))["conversation_id"]
    status, answer = await reply(client, conversation_id, agent_id="ana", text="")
    assert status == 400
    minted = await client.post("/v1/agents/bob/token", json={}, headers=AUTH)
    assert minted.status == 201, await minted.text()
    bob = {"Authorization": f"Bearer {(await minted.json())['token']}"}
    url = f"/v1/conversations/{conversation_id}/replies"
    response = await client.post(url, json={"agent_id": "ana", "text": "Hi"}, headers=bob)
    assert response.status == 403
    response = await client.post(url, json={"agent_id": "bob", "text": "Hi"}, headers=bob)
    assert response.status == 200
    assert (await receive(ws))["agent_id"] == "bob"
    # a stray event on the reply routing key is dropped; the hub goes on forwarding
    await client.app[BROKER].publish_event(ROUTING_KEY, b"not a reply")
    response = await client.post(url, json={"agent_id": "bob", "text": "Hi again"}, headers=bob)
    assert response.status == 200
    assert (await receive(ws))["text"] == "Hi again"
    events = f"/v1/conversations/{conversation_id}/events"
    resolved = await client.post(events, json={"type": "resolved", "agent_id": "bob"}, headers=AUTH)
    assert resolved.status == 200
    status, answer = await reply(client, conversation_id, agent_id="bob", text="Hi later")
    assert (status, answer["error"]["code"]) == (409, "conflict")
    await ws.close()
