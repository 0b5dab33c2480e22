"""What the daemon does with whatever a connector parsed, whoever the connector is:
attachments kept as files before the message, bad messages quarantined without losing
the others, delivery reports once, replayed nonces refused, edits."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import Edit, Parsed, Quarantined
from router.http.keys import BLOBS, INTAKE
from router.ledger import DeliveryReport
from router.models import Attachment, IdentityIn, InboundMessage, Sender
from tests.connectors.conftest import AUTH, Client, customer_of, history, post_webhook, quarantine

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def policy(acme_installed: None) -> str:
    return '[connectors.acme]\ntoken = "acme-token"\n'


def message(external_id: str, *, user: str = "u-1", **fields: Any) -> InboundMessage:
    sender = Sender(identities=[IdentityIn(kind="acme", value=user, verified=True)])
    return InboundMessage(
        channel="chat", source="acme", external_id=external_id, sender=sender, **fields
    )


async def test_attachment_content_is_a_file_served_by_its_hash(client: Client) -> None:
    content = b"\x89PNG fake image bytes"
    key = hashlib.sha256(content).hexdigest()
    photo = Attachment(name="photo.png", content_type="image/png", size=len(content), blob=key)
    parsed = Parsed(messages=[message("m-1", text="see photo", attachments=[photo])])
    parsed.blobs[key] = content
    accepted = await client.app[INTAKE].accept("acme", parsed)
    assert accepted.accepted == 1
    assert client.app[BLOBS].path(key).read_bytes() == content
    response = await client.get(f"/v1/attachments/{key}", headers=AUTH)
    assert response.status == 200
    assert await response.read() == content
    customer = await customer_of(client, "acme:u-1")
    assert customer is not None
    [stored] = await history(client, customer["customer_id"])
    assert stored["attachments"][0]["blob"] == key
    assert (await client.get(f"/v1/attachments/{key}")).status == 401
    assert (await client.get("/v1/attachments/nothex", headers=AUTH)).status == 400
    assert (await client.get("/v1/attachments/" + "0" * 64, headers=AUTH)).status == 404


async def test_a_bad_message_is_quarantined_and_the_others_stored(client: Client) -> None:
    nobody = InboundMessage(channel="chat", source="acme", external_id="m-bad", sender=Sender())
    parsed = Parsed(messages=[message("m-1", text="one"), nobody, message("m-2", text="two")])
    accepted = await client.app[INTAKE].accept("acme", parsed)
    assert (accepted.accepted, accepted.quarantined) == (2, 1)
    [entry] = await quarantine(client)
    assert entry["connector"] == "acme"
    assert "sender identity" in entry["reason"]
    raw = await client.get(f"/v1/quarantine/{entry['quarantine_id']}/raw", headers=AUTH)
    assert json.loads(await raw.read())["external_id"] == "m-bad"
    one = await client.get(f"/v1/quarantine/{entry['quarantine_id']}", headers=AUTH)
    assert (await one.json())["size"] > 0
    dropped = await client.delete(f"/v1/quarantine/{entry['quarantine_id']}", headers=AUTH)
    assert dropped.status == 204
    assert await quarantine(client) == []
    gone = await client.delete(f"/v1/quarantine/{entry['quarantine_id']}", headers=AUTH)
    assert gone.status == 404


async def test_quarantining_the_same_raw_twice_is_one_entry(client: Client) -> None:
    item = Quarantined(reason="broken boundary", raw=b"From: ?\r\n\r\n--x", summary={"from": "?"})
    for _ in range(2):
        assert (await client.app[INTAKE].accept("acme", Parsed(quarantined=[item]))).quarantined
    [entry] = await quarantine(client)
    assert entry["summary"] == {"from": "?"}


async def test_delivery_reports_are_kept_once(client: Client) -> None:
    sent = DeliveryReport(source="acme", external_id="out-1", status="sent", at=AT)
    read = DeliveryReport(source="acme", external_id="out-1", status="read", at=AT)
    first = await client.app[INTAKE].accept("acme", Parsed(deliveries=[sent, read]))
    again = await client.app[INTAKE].accept("acme", Parsed(deliveries=[sent]))
    assert (first.deliveries, again.deliveries) == (2, 0)
    response = await client.get("/v1/deliveries/acme/out-1", headers=AUTH)
    statuses = [d["status"] for d in (await response.json())["deliveries"]]
    assert statuses == ["sent", "read"]


async def test_an_edit_replaces_the_text_and_keeps_the_old_one(client: Client) -> None:
    intake = client.app[INTAKE]
    await intake.accept("acme", Parsed(messages=[message("m-1", text="helo")]))
    edit = Edit(message=message("m-1", text="hello"), edited_at=AT)
    accepted = await intake.accept("acme", Parsed(edits=[edit]))
    assert (accepted.edited, accepted.accepted) == (1, 0)
    customer = await customer_of(client, "acme:u-1")
    assert customer is not None
    [stored] = await history(client, customer["customer_id"])
    assert stored["text"] == "hello"
    assert [r["text"] for r in stored["revisions"]] == ["helo"]


async def test_an_edit_of_a_message_never_seen_is_stored_as_new(client: Client) -> None:
    edit = Edit(message=message("m-9", text="edited before we saw it"), edited_at=AT)
    accepted = await client.app[INTAKE].accept("acme", Parsed(edits=[edit]))
    assert (accepted.edited, accepted.accepted) == (0, 1)


async def test_a_replayed_nonce_with_another_body_is_refused(client: Client) -> None:
    def body(text: str) -> bytes:
        return json.dumps({"id": "n-1", "user": "u-1", "text": text}).encode()

    headers = {"X-Acme-Token": "acme-token", "X-Acme-Nonce": "nonce-1"}
    status, answer = await post_webhook(client, "acme", body("hi"), headers)
    assert (status, answer["accepted"]) == (200, 1)
    status, answer = await post_webhook(client, "acme", body("hi"), headers)
    assert (status, answer["duplicates"]) == (200, 1), "a retry of the same request is fine"
    status, answer = await post_webhook(client, "acme", body("forged"), headers)
    assert status == 401
    assert "replay" in answer["error"]["message"]


async def test_an_oversized_webhook_is_413_and_stores_nothing(client: Client) -> None:
    big = json.dumps({"id": "b-1", "user": "u-1", "text": "x" * 2_000_000}).encode()
    response = await client.post(
        "/v1/connectors/acme/webhook", data=io.BytesIO(big), headers={"X-Acme-Token": "acme-token"}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert await customer_of(client, "acme:u-1") is None


async def test_a_message_over_the_model_limits_is_quarantined(client: Client) -> None:
    too_long = message("x" * 600, text="the id is longer than the model allows")
    accepted = await client.app[INTAKE].accept("acme", Parsed(messages=[too_long]))
    assert (accepted.accepted, accepted.quarantined) == (0, 1)
    [entry] = await quarantine(client)
    assert "canonical model" in entry["reason"]


async def test_a_chunked_body_over_the_limit_is_413(client: Client) -> None:
    """A chunked body declares no length: the limit holds as it is read."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/v1/connectors/acme/webhook", data=chunks(), headers={"X-Acme-Token": "acme-token"}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_a_signature_header_that_is_not_text_is_401(client: Client) -> None:
    """Raw bytes no provider would send (not UTF-8) are a bad signature, not a 500."""
    assert client.server.host is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = b'{"id": "a", "user": "u", "text": "t"}'
    writer.write(
        b"POST /v1/connectors/acme/webhook HTTP/1.1\r\nHost: test\r\n"
        b"X-Acme-Token: \xe9\xff\xfe\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401"


async def test_an_agent_token_reads_attachments(client: Client) -> None:
    content = b"a receipt"
    key = hashlib.sha256(content).hexdigest()
    await client.app[BLOBS].put_all({key: content})
    minted = await client.post("/v1/agents/ana/token", json={}, headers=AUTH)
    assert minted.status == 201, await minted.text()
    agent = {"Authorization": f"Bearer {(await minted.json())['token']}"}
    response = await client.get(f"/v1/attachments/{key}", headers=agent)
    assert response.status == 200
    assert await response.read() == content
    assert (await client.get("/v1/quarantine", headers=agent)).status == 403
