"""What the web chat tests share: the connector's configuration, a visitor's session
and socket, and reading frames with a bound (never sleeping)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMessage, WSMsgType

from tests.http.conftest import Client

SECRET = "webchat-test-secret-0123456789abcdef"
POLICY = f"""
[connectors.webchat]
secret = "{SECRET}"
token_ttl_s = 3600
max_message_chars = 50
"""
WAIT_S = 10


async def start_session(
    client: Client, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.post("/v1/chat/sessions", json=body or {}, headers=headers)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def connect(
    client: Client, token: str, headers: dict[str, str] | None = None
) -> ClientWebSocketResponse:
    """A visitor socket, past its ``ready`` frame."""
    ws = await client.ws_connect(f"/v1/chat/ws?token={token}", headers=headers)
    ready = await receive(ws)
    assert ready["type"] == "ready", ready
    return ws


async def receive(ws: ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert message.type == WSMsgType.TEXT, message
    return dict(json.loads(message.data))


async def closing(ws: ClientWebSocketResponse) -> WSMessage:
    message = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert message.type == WSMsgType.CLOSE, message
    return message


async def send_message(ws: ClientWebSocketResponse, frame_id: str, text: str) -> dict[str, Any]:
    """Send one message frame and return the answer (an ack, or an error)."""
    await ws.send_json({"type": "message", "id": frame_id, "text": text})
    return await receive(ws)
