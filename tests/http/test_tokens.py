"""Per-agent tokens through the HTTP API: minting with the API token, what an agent token
may reach (its queues, its own agent paths, conversations, customers), 403 elsewhere,
401 when tampered or expired, and sockets authenticated with ``?access_token=``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from router.clock import ManualClock
from router.http.auth import AGENT_ID, agent_may, auth_middleware
from router.http.keys import CLOCK, TOKEN
from router.http.responses import error_middleware, json_response
from router.http.tokens import mint_token
from router.settings import Secret
from tests.http.conftest import AUTH, Client, message
from tests.http.conftest import TOKEN as API_TOKEN


@pytest.fixture
def backend() -> str:
    """Token checks do not depend on the backend: the embedded one is enough."""
    return "embedded"


async def mint(client: Client, agent_id: str, **body: Any) -> dict[str, Any]:
    resp = await client.post(f"/v1/agents/{agent_id}/token", json=body or None, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def expect_error(resp: aiohttp.ClientResponse, status: int, code: str) -> str:
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code
    return str(error["message"])


async def test_mint_with_the_api_token(client: Client) -> None:
    with capture_logs() as logs:
        minted = await mint(client, "maria.lopez@acme")
    assert set(minted) == {"agent_id", "token", "expires_at"}
    assert minted["agent_id"] == "maria.lopez@acme"
    assert minted["token"].startswith("agt.")
    assert minted["expires_at"] == "2026-12-22T10:00:00Z"  # 30 days by default
    assert {"event": "agent_token.minted", "agent_id": "maria.lopez@acme"}.items() <= next(
        entry.items() for entry in logs if entry["event"] == "agent_token.minted"
    )
    assert minted["token"] not in repr(logs)
    short = await mint(client, "alice", ttl_s=3600)
    assert short["expires_at"] == "2026-11-22T11:00:00Z"


@pytest.mark.parametrize("body", [{"ttl_s": 0}, {"ttl_s": 366 * 86400}, {"ttl": 60}, [1]])
async def test_mint_refuses_a_bad_ttl(client: Client, body: Any) -> None:
    resp = await client.post("/v1/agents/alice/token", json=body, headers=AUTH)
    await expect_error(resp, 400, "bad_request")


@pytest.mark.parametrize("agent_id", ["-leading-dash", "sp ace", "x" * 129, "a%2Fb"])
async def test_mint_refuses_an_invalid_agent_id(client: Client, agent_id: str) -> None:
    resp = await client.post(f"/v1/agents/{agent_id}/token", headers=AUTH)
    await expect_error(resp, 422, "invalid_agent_id")


async def test_only_the_api_token_mints(client: Client) -> None:
    await expect_error(await client.post("/v1/agents/alice/token"), 401, "unauthorized")
    token = (await mint(client, "alice"))["token"]
    for who in ("alice", "bob"):
        resp = await client.post(f"/v1/agents/{who}/token", headers=bearer(token))
        await expect_error(resp, 403, "forbidden")


async def test_agent_token_reaches_what_an_agent_tool_needs(client: Client) -> None:
    agent = bearer((await mint(client, "alice"))["token"])
    resp = await client.post("/v1/messages", json=message(), headers=AUTH)
    accepted = await resp.json()
    conversation = f"/v1/conversations/{accepted['conversation_id']}"
    customer = f"/v1/customers/{accepted['customer_id']}"
    for path in ("/v1/queues", conversation, customer, f"{customer}/history", "/v1/openapi.json"):
        resp = await client.get(path, headers=agent)
        assert resp.status == 200, (path, await resp.text())
    event = {"type": "accepted", "agent_id": "alice"}
    resp = await client.post(f"{conversation}/events", json=event, headers=agent)
    assert resp.status == 200, await resp.text()
    impostor = {"type": "replied", "agent_id": "bob"}  # an agent speaks only for itself
    resp = await client.post(f"{conversation}/events", json=impostor, headers=agent)
    await expect_error(resp, 403, "forbidden")
    # its own agent paths pass authentication and authorization (whatever the handler says)
    resp = await client.post("/v1/agents/alice/presence", json={}, headers=agent)
    assert resp.status not in (401, 403), await resp.text()


async def test_agent_token_is_refused_elsewhere(client: Client) -> None:
    agent = bearer((await mint(client, "alice"))["token"])
    resp = await client.post("/v1/messages", json=message(), headers=agent)
    message_403 = await expect_error(resp, 403, "forbidden")
    assert "agt." not in message_403  # the token is never echoed
    accepted = await (await client.post("/v1/messages", json=message(), headers=AUTH)).json()
    customer = f"/v1/customers/{accepted['customer_id']}"
    refused = [
        ("POST", "/v1/agents/bob/presence"),
        ("GET", "/v1/agents/bob"),
        ("GET", "/v1/agents"),
        ("GET", "/v1/customers?identity=chat_visitor:v-991"),
        ("GET", f"{customer}/merges"),
        ("POST", f"{customer}/merge"),
        ("GET", "/v1/queues/agent.bob/subscribe"),
    ]
    for method, path in refused:
        resp = await client.request(method, path, json={}, headers=agent)
        await expect_error(resp, 403, "forbidden")


async def test_tampered_or_expired_agent_token_is_401(client: Client, clock: ManualClock) -> None:
    token = (await mint(client, "alice", ttl_s=60))["token"]
    head, signature = token.rsplit(".", 1)
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    message_401 = await expect_error(
        await client.get("/v1/queues", headers=bearer(tampered)), 401, "unauthorized"
    )
    assert "signature" in message_401
    await expect_error(
        await client.get("/v1/queues", headers=bearer("agt.garbage")), 401, "unauthorized"
    )
    assert (await client.get("/v1/queues", headers=bearer(token))).status == 200
    clock.advance(60)
    message_401 = await expect_error(
        await client.get("/v1/queues", headers=bearer(token)), 401, "unauthorized"
    )
    assert "expired" in message_401


async def test_socket_with_an_agent_access_token(client: Client) -> None:
    token = (await mint(client, "alice"))["token"]
    await client.post("/v1/messages", json=message(), headers=AUTH)
    url = f"/v1/queues/default/subscribe?capacity=1&access_token={token}"
    async with client.ws_connect(url) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        assert frame["type"] == "item"
        await ws.send_json({"ack": frame["item"]["item_id"]})
    async with client.ws_connect(f"/v1/queues/agent.alice/subscribe?access_token={token}"):
        pass  # its own personal queue
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/v1/queues/agent.bob/subscribe?access_token={token}")
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/v1/queues/default/subscribe?access_token={token}x")
    assert refused.value.status == 401


async def test_handlers_see_the_agent_of_an_agent_token(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    """``request["agent_id"]``: the agent for an agent token, absent for the API token."""

    async def whoami(request: web.Request) -> web.Response:
        return json_response({"agent_id": request.get(AGENT_ID)})

    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[TOKEN] = Secret(API_TOKEN)
    app[CLOCK] = ManualClock(datetime(2026, 11, 22, tzinfo=UTC))
    app.router.add_get("/v1/agents/{id}/whoami", whoami)
    app.router.add_post("/v1/agents/{id}/token", mint_token)
    client = await aiohttp_client(app)
    token = (await mint(client, "alice"))["token"]
    resp = await client.get("/v1/agents/alice/whoami", headers=bearer(token))
    assert await resp.json() == {"agent_id": "alice"}
    resp = await client.get("/v1/agents/alice/whoami", headers=AUTH)
    assert await resp.json() == {"agent_id": None}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/queues", True),
        ("POST", "/v1/queues", False),
        ("GET", "/v1/queues/default/subscribe", True),
        ("GET", "/v1/queues/agent.alice/subscribe", True),
        ("GET", "/v1/queues/agent.bob/subscribe", False),
        ("GET", "/v1/agents/alice", True),
        ("POST", "/v1/agents/alice/presence", True),
        ("GET", "/v1/agents/alice/subscribe", True),
        ("POST", "/v1/agents/alice/token", False),
        ("POST", "/v1/agents/bob/presence", False),
        ("POST", "/v1/agents/alice%2F..%2Fbob/presence", False),
        ("GET", "/v1/agents", False),
        ("GET", "/v1/conversations/con_1", True),
        ("POST", "/v1/conversations/con_1/events", True),
        ("DELETE", "/v1/conversations/con_1", False),
        ("GET", "/v1/conversations", False),
        ("GET", "/v1/customers/cus_1", True),
        ("GET", "/v1/customers/cus_1/history", True),
        ("GET", "/v1/customers/cus_1/merges", False),
        ("POST", "/v1/customers/cus_1/merge", False),
        ("GET", "/v1/customers", False),
        ("POST", "/v1/messages", False),
        ("GET", "/v1/nowhere", False),
    ],
)
def test_agent_may(method: str, path: str, allowed: bool) -> None:
    assert agent_may(method, path, "alice") is allowed
