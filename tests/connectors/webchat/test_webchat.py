"""The web chat through the running app (embedded default): a session, the visitor's
socket, messages stored then acked, reconnects, identify, bad frames, expiry, origins."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from router.clock import ManualClock
from tests.connectors.conftest import customer_of, history
from tests.connectors.webchat.chat import (
    POLICY,
    closing,
    connect,
    receive,
    send_message,
    start_session,
)
from tests.http.conftest import AUTH, Client, message

SHOP = "https://shop.example.com"


@pytest.fixture
def policy() -> str:
    return POLICY


async def test_a_message_is_stored_then_acked_as_the_visitors(client: Client) -> None:
    started = await start_session(client, {"name": "Ana"})
    assert started["resumed"] is False
    assert started["ws_url"].startswith("ws://")
    assert started["ws_url"].endswith(f"/v1/chat/ws?token={started['token']}")
    ws = await connect(client, started["token"])
    ack = await send_message(ws, "c-1", "My order arrived broken")
    assert ack["type"] == "ack"
    assert ack["id"] == "c-1"
    assert ack["duplicate"] is False
    # acked means stored: the history has it the moment the ack is in
    customer = await customer_of(client, f"webchat:{started['visitor_id']}")
    assert customer is not None
    assert customer["name"] == "Ana"
    assert {"kind": "webchat", "value": started["visitor_id"], "verified": True} in customer[
        "identities"
    ]
    [stored] = await history(client, customer["customer_id"])
    assert stored["message_id"] == ack["message_id"]
    assert stored["conversation_id"] == ack["conversation_id"]
    assert (stored["channel"], stored["source"]) == ("chat", "webchat")
    assert stored["text"] == "My order arrived broken"
    assert stored["external_id"] == f"{started['visitor_id']}:c-1"
    assert stored["attributes"]["inbox"] == "webchat:webchat"
    await ws.close()


async def test_a_reconnect_resumes_the_conversation_and_a_resent_frame_is_a_duplicate(
    client: Client, clock: ManualClock
) -> None:
    started = await start_session(client)
    first = await connect(client, started["token"])
    ack = await send_message(first, "c-1", "Hello?")
    await first.close()

    clock.advance(600)
    resumed = await start_session(client, {"visitor_token": started["token"]})
    assert resumed["visitor_id"] == started["visitor_id"]
    assert resumed["resumed"] is True
    assert resumed["expires_at"] > started["expires_at"]
    second = await connect(client, resumed["token"])
    again = await send_message(second, "c-1", "Hello?")
    assert again["duplicate"] is True
    assert (again["message_id"], again["conversation_id"]) == (
        ack["message_id"],
        ack["conversation_id"],
    )
    later = await send_message(second, "c-2", "Anyone there?")
    assert later["duplicate"] is False
    assert later["conversation_id"] == ack["conversation_id"]
    await second.close()

    customer = await customer_of(client, f"webchat:{started['visitor_id']}")
    assert customer is not None
    texts = [m["text"] for m in await history(client, customer["customer_id"])]
    assert sorted(texts) == ["Anyone there?", "Hello?"]


async def test_an_email_given_in_the_chat_is_a_suggestion_never_a_merge(client: Client) -> None:
    owner = message(
        channel="email",
        source="email",
        external_id="<m1@example.com>",
        sender={"identities": [{"kind": "email", "value": "maria@example.com", "verified": True}]},
        thread=None,
        attachments=[],
    )
    response = await client.post("/v1/messages", json=owner, headers=AUTH)
    assert response.status == 202, await response.text()
    maria = await customer_of(client, "email:maria@example.com")
    assert maria is not None

    started = await start_session(client)
    ws = await connect(client, started["token"])
    await ws.send_json({"type": "identify", "name": "Maria", "email": "Maria@Example.com"})
    identified = await receive(ws)
    assert identified["type"] == "identified"
    assert (identified["name"], identified["email"]) == ("Maria", "maria@example.com")
    ack = await send_message(ws, "c-1", "It's me, Maria")
    assert ack["type"] == "ack"
    await ws.close()

    visitor = await customer_of(client, f"webchat:{started['visitor_id']}")
    assert visitor is not None
    assert visitor["customer_id"] != maria["customer_id"]
    assert visitor["merged_into"] is None
    assert [i["kind"] for i in visitor["identities"]] == ["webchat"]
    [link] = visitor["suggested"]
    assert link["identity"] == {"kind": "email", "value": "maria@example.com", "verified": False}
    assert link["other_customer_id"] == maria["customer_id"]
    assert link["message_id"] == ack["message_id"]
    still = await customer_of(client, "email:maria@example.com")
    assert still is not None
    assert still["customer_id"] == maria["customer_id"]
    assert len(await history(client, maria["customer_id"])) == 1

    # the renewed token remembers the name and email on the next visit
    back = await connect(client, identified["token"])
    assert (await send_message(back, "c-2", "Still me"))["type"] == "ack"
    await back.close()
    [first, *_] = await history(client, visitor["customer_id"])
    assert first["sender_name"] == "Maria"
    assert {"kind": "email", "value": "maria@example.com", "verified": False} in first["identities"]


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(client: Client) -> None:
    ws = await connect(client, (await start_session(client))["token"])
    refused = [
        ("not json", None, "not valid JSON"),
        ('{"type": "shout"}', None, "message, identify or ping"),
        ('{"type": "message", "text": "no id"}', None, "id"),
        ('{"type": "message", "id": "c-1", "text": "x", "extra": 1}', "c-1", "unknown field"),
        ('{"type": "message", "id": "c-2", "text": "' + "x" * 51 + '"}', "c-2", "50 limit"),
        ('{"type": "message", "id": "c-3", "text": ""}', "c-3", "text or an attachment"),
    ]
    for text, frame_id, problem in refused:
        await ws.send_str(text)
        error = await receive(ws)
        assert (error["type"], error["code"], error.get("id")) == ("error", "bad_frame", frame_id)
        assert problem in error["message"]
    await ws.send_bytes(b"\x00\x01")
    assert (await receive(ws))["message"] == "frames are JSON text"
    await ws.send_json({"type": "identify", "email": "not-an-address"})
    assert (await receive(ws))["code"] == "invalid_identity"
    await ws.send_json({"type": "ping"})
    assert await receive(ws) == {"type": "pong"}
    assert (await send_message(ws, "c-4", "still here"))["type"] == "ack"
    await ws.close()


async def test_attachments_are_kept_or_linked(client: Client) -> None:
    started = await start_session(client)
    ws = await connect(client, started["token"])
    content = b"\x89PNG broken box"
    await ws.send_json(
        {
            "type": "message",
            "id": "c-1",
            "text": "",
            "attachments": [
                {
                    "name": "box.png",
                    "content_type": "image/png",
                    "data": base64.b64encode(content).decode(),
                },
                {"name": "receipt.pdf", "url": "https://shop.example.com/r/1.pdf"},
            ],
        }
    )
    assert (await receive(ws))["type"] == "ack"
    await ws.close()
    customer = await customer_of(client, f"webchat:{started['visitor_id']}")
    assert customer is not None
    [stored] = await history(client, customer["customer_id"])
    kept, linked = stored["attachments"]
    assert (kept["name"], kept["size"]) == ("box.png", len(content))
    response = await client.get(f"/v1/attachments/{kept['blob']}", headers=AUTH)
    assert await response.read() == content
    assert linked["url"] == "https://shop.example.com/r/1.pdf"


async def test_expired_tampered_and_missing_tokens_are_refused(
    client: Client, clock: ManualClock
) -> None:
    started = await start_session(client)
    token = started["token"]
    for bad in ("", "wct.abc.def", token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        ws = await client.ws_connect(f"/v1/chat/ws?token={bad}")
        assert (await closing(ws)).data == 4401
    clock.advance(3600)
    ws = await client.ws_connect(f"/v1/chat/ws?token={token}")
    refused = await closing(ws)
    assert (refused.data, refused.extra) == (
        4401,
        "visitor token expired at 2026-11-22T11:00:00+00:00",
    )
    response = await client.post("/v1/chat/sessions", json={"visitor_token": token})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_a_token_that_expires_while_connected_closes_the_socket(
    client: Client, clock: ManualClock
) -> None:
    ws = await connect(client, (await start_session(client))["token"])
    clock.advance(3600)
    await ws.send_json({"type": "ping"})
    refused = await closing(ws)
    assert (refused.data, refused.extra) == (4401, "visitor token expired")


@pytest.mark.parametrize("policy", [POLICY + f'allowed_origins = ["{SHOP}"]\n'])
async def test_only_allowed_origins_may_use_the_chat(client: Client) -> None:
    for headers in ({}, {"Origin": "https://evil.example.com"}):
        response = await client.post("/v1/chat/sessions", json={}, headers=headers)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
        assert "Access-Control-Allow-Origin" not in response.headers
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/v1/chat/ws?token=x", headers=headers)
        assert refused.value.status == 403

    preflight = await client.options(
        "/v1/chat/sessions",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]

    started = await start_session(client, headers={"Origin": SHOP})
    ws = await connect(client, started["token"], headers={"Origin": SHOP})
    assert (await send_message(ws, "c-1", "hi"))["type"] == "ack"
    await ws.close()
    response = await client.post(
        "/v1/chat/sessions", json={"visitor_token": "wct.x.y"}, headers={"Origin": SHOP}
    )
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == SHOP  # the widget reads why


async def test_bad_session_bodies_are_400_or_422(client: Client) -> None:
    response = await client.post("/v1/chat/sessions", data=b"{not json")
    assert response.status == 400
    response = await client.post("/v1/chat/sessions", json={"email": "nope"})
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "invalid_identity"
    response = await client.post("/v1/chat/sessions")  # no body at all: a new visitor
    assert response.status == 200


async def test_the_socket_wants_a_websocket_and_the_webhook_is_not_there(client: Client) -> None:
    response = await client.get("/v1/chat/ws?token=x")
    assert response.status == 400
    response = await client.post("/v1/connectors/webchat/webhook", data=b"{}")
    assert response.status == 404


@pytest.mark.parametrize("policy", [None])
async def test_an_unconfigured_chat_is_not_found(client: Client) -> None:
    response = await client.post("/v1/chat/sessions", json={})
    assert response.status == 404
    assert "[connectors.webchat]" in (await response.json())["error"]["message"]


@pytest.mark.parametrize("policy", [POLICY + "sessions_per_minute = 2\nmessages_per_minute = 2\n"])
async def test_public_chat_clients_are_rate_limited(client: Client, clock: ManualClock) -> None:
    first = await start_session(client)
    await start_session(client)
    refused = await client.post("/v1/chat/sessions", json={})
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1

    ws = await connect(client, first["token"])
    assert (await send_message(ws, "f1", "one"))["type"] == "ack"
    assert (await send_message(ws, "f2", "two"))["type"] == "ack"
    limited = await send_message(ws, "f3", "three")
    assert (limited["type"], limited["code"]) == ("error", "rate_limited")
    clock.advance(60)
    assert (await send_message(ws, "f3", "three"))["type"] == "ack", "the socket stayed open"
    await ws.close()
    assert (await client.post("/v1/chat/sessions", json={})).status == 200
