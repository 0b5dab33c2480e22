"""Bad input: a clear 4xx with {"error": {"code", "message"}}, nothing stored, and the
daemon keeps serving."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.http.conftest import AUTH, Client, message

pytestmark = pytest.mark.parametrize("backend", ["embedded"], indirect=True)


async def assert_nothing_stored(client: Client) -> None:
    resp = await client.get("/v1/queues", headers=AUTH)
    (queue,) = (await resp.json())["queues"]
    assert queue["depth"] == 0
    resp = await client.get("/v1/customers?identity=chat_visitor:v-991", headers=AUTH)
    assert (await resp.json())["customers"] == []


async def expect_error(resp: Any, status: int, code: str) -> None:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def without(key: str) -> dict[str, Any]:
    body = message()
    del body[key]
    return body


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"[]", 422, "invalid_message"),
        (without("external_id"), 422, "invalid_message"),
        (message(external_id=""), 422, "invalid_message"),
        (message(channel="pigeon"), 422, "invalid_message"),
        (message(surprise=1), 422, "invalid_message"),
        (
            message(sender={"identities": [{"kind": "email", "value": "nope", "verified": True}]}),
            422,
            "invalid_identity",
        ),
        (
            message(sender={"identities": [{"kind": "phone", "value": "12", "verified": True}]}),
            422,
            "invalid_identity",
        ),
        (message(sender={"identities": []}, thread=None), 422, "invalid_message"),
        (message(sent_at="yesterday"), 422, "invalid_message"),
    ],
)
async def test_bad_messages_get_a_clear_error_and_nothing_is_stored(
    client: Client, body: Any, status: int, code: str
) -> None:
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    resp = await client.post("/v1/messages", headers=AUTH, **kwargs)
    await expect_error(resp, status, code)
    await assert_nothing_stored(client)
    ok = await client.post("/v1/messages", json=message(), headers=AUTH)
    assert ok.status == 202


async def test_oversized_body_is_413(client: Client) -> None:
    body = io.BytesIO(json.dumps(message(text="x" * (1024 * 1024 + 10))).encode())
    resp = await client.post("/v1/messages", data=body, headers=AUTH)
    await expect_error(resp, 413, "payload_too_large")
    await assert_nothing_stored(client)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}]
)
async def test_missing_or_wrong_token_is_401(client: Client, headers: dict[str, str]) -> None:
    resp = await client.post("/v1/messages", json=message(), headers=headers)
    await expect_error(resp, 401, "unauthorized")
    await assert_nothing_stored(client)
    resp = await client.get("/v1/queues", headers=headers)
    await expect_error(resp, 401, "unauthorized")


async def test_unknown_routes_and_methods_are_json_errors(client: Client) -> None:
    await expect_error(await client.get("/v1/nowhere", headers=AUTH), 404, "not_found")
    await expect_error(await client.delete("/v1/messages", headers=AUTH), 405, "method_not_allowed")
    await expect_error(await client.get("/v1/conversations/con_x", headers=AUTH), 404, "not_found")
    await expect_error(await client.get("/v1/customers/cus_x", headers=AUTH), 404, "not_found")
    await expect_error(
        await client.get("/v1/queues/nope/subscribe", headers=AUTH), 404, "not_found"
    )


@pytest.mark.parametrize("query", ["", "?identity=", "?identity=nokind", "?identity=email:bad"])
async def test_bad_lookups_are_4xx(client: Client, query: str) -> None:
    resp = await client.get(f"/v1/customers{query}", headers=AUTH)
    assert resp.status in (400, 422)
    assert "error" in await resp.json()


async def test_bad_paging_parameters_are_400(client: Client) -> None:
    resp = await client.post("/v1/messages", json=message(), headers=AUTH)
    customer = (await resp.json())["customer_id"]
    for query in ("limit=0", "limit=abc", "limit=100000", "before=%%%"):
        resp = await client.get(f"/v1/customers/{customer}/history?{query}", headers=AUTH)
        assert resp.status == 400, query
        assert "error" in await resp.json()
