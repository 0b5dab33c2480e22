"""The raw endpoint ``POST /v1/connectors/email/raw`` on the running app: what each
recorded mail becomes in the store (customers, conversations, history, backlog,
quarantine, attachment files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.clock import ManualClock
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    history,
    quarantine,
)
from tests.connectors.email.helpers import AT, TOKEN

RAW = "/v1/connectors/email/raw"
MARIA = "email:maria.lopez@example.com"
MAX_BODY_BYTES = 64 * 1024


@pytest.fixture
def clock() -> ManualClock:
    """After every fixture's Date (a Date ahead of the clock is not believed)."""
    return ManualClock(AT)


@pytest.fixture
def policy() -> str:
    return (
        "[connectors.email]\n"
        'own_addresses = ["support@acme.test"]\n'
        f"max_body_bytes = {MAX_BODY_BYTES}\n"
    )


async def post(client: Client, raw: bytes, *, status: int = 202) -> dict[str, Any]:
    response = await client.post(RAW, data=raw, headers=AUTH | {"Content-Type": "message/rfc822"})
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def post_fixture(client: Client, name: str, conversation_id: str | None = None) -> Any:
    """Post a recorded mail; the token of its outgoing mail made ``conversation_id``."""
    raw = fixture_bytes("email", name)
    if conversation_id is not None:
        raw = raw.replace(TOKEN.encode(), conversation_id.encode())
    return await post(client, raw)


async def backlog(client: Client) -> int:
    response = await client.get("/v1/queues", headers=AUTH)
    return sum(queue["backlog"] + queue["ready"] for queue in (await response.json())["queues"])


async def maria_history(client: Client) -> list[dict[str, Any]]:
    customer = await customer_of(client, MARIA)
    assert customer is not None
    return await history(client, customer["customer_id"])


async def test_a_mail_is_stored_once_for_its_verified_sender(client: Client) -> None:
    first = await post_fixture(client, "plain.eml")
    assert (first["accepted"], first["duplicates"]) == (1, 0)
    again = await post(client, fixture_bytes("email", "plain.eml"), status=200)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert again["conversation_ids"] == first["conversation_ids"]
    [stored] = await maria_history(client)
    assert stored["subject"] == "Order A-1001 arrived broken"
    assert stored["sender_name"] == "Maria Lopez"
    assert stored["text"].startswith("Hello,\n\nmy order A-1001")
    assert stored["attributes"]["via"] == "raw"
    assert await backlog(client) == 1


async def test_a_reply_with_references_joins_the_conversation(client: Client) -> None:
    first = await post_fixture(client, "plain.eml")
    reply = await post_fixture(client, "reply_gmail.eml")
    assert reply["accepted"] == 1
    assert reply["conversation_ids"] == first["conversation_ids"]
    newest, _ = await maria_history(client)
    assert newest["text"] == "Yes, the address is the same. Thank you!\n\nMaria"
    assert "Jon from Acme" in newest["attributes"]["full_text"]


@pytest.mark.parametrize("name", ["token_subject.eml", "token_plus.eml"])
async def test_a_token_joins_its_conversation(client: Client, name: str) -> None:
    [conversation_id] = (await post_fixture(client, "plain.eml"))["conversation_ids"]
    joined = await post_fixture(client, name, conversation_id)
    assert joined["conversation_ids"] == [conversation_id]


async def test_the_same_subject_alone_does_not_join(client: Client) -> None:
    first = await post_fixture(client, "plain.eml")
    second = await post_fixture(client, "same_subject.eml")
    assert second["accepted"] == 1
    assert second["conversation_ids"] != first["conversation_ids"]
    assert {m["customer_id"] for m in await maria_history(client)} == {
        (await customer_of(client, MARIA) or {})["customer_id"]
    }


async def test_an_auto_reply_is_recorded_not_routed(client: Client) -> None:
    [conversation_id] = (await post_fixture(client, "plain.eml"))["conversation_ids"]
    before = await backlog(client)
    answer = await post_fixture(client, "auto_reply_rfc3834.eml", conversation_id)
    assert (answer["accepted"], answer["recorded"]) == (0, 1)
    assert answer["conversation_ids"] == [conversation_id]
    assert await backlog(client) == before
    newest, _ = await maria_history(client)
    assert newest["kind"] == "auto_reply"
    assert newest["attributes"]["auto_reply"] == "Auto-Submitted: auto-replied"


async def test_a_bounce_joins_the_bounced_conversation_flagged(client: Client) -> None:
    [conversation_id] = (await post_fixture(client, "plain.eml"))["conversation_ids"]
    before = await backlog(client)
    answer = await post_fixture(client, "bounce_postfix.eml")
    assert (answer["accepted"], answer["recorded"]) == (0, 1)
    assert answer["conversation_ids"] == [conversation_id]
    assert await backlog(client) == before
    newest, _ = await maria_history(client)
    assert newest["kind"] == "bounce"
    assert newest["attributes"]["flagged"] is True
    assert newest["attributes"]["bounce"]["status"] == "5.2.2"
    assert await customer_of(client, "email:mailer-daemon@mx1.acme.test") is None


async def test_unreadable_mail_waits_in_quarantine(client: Client) -> None:
    raw = fixture_bytes("email", "broken_boundary.eml")
    answer = await post(client, raw)
    assert (answer["accepted"], answer["quarantined"]) == (0, 1)
    missing = await post(client, fixture_bytes("email", "missing_from.eml"))
    assert missing["quarantined"] == 1
    entries = {entry["reason"]: entry for entry in await quarantine(client)}
    assert set(entries) == {
        "broken MIME structure: StartBoundaryNotFoundDefect",
        "missing From header",
    }
    broken = entries["broken MIME structure: StartBoundaryNotFoundDefect"]
    assert broken["connector"] == "email"
    assert broken["content_type"] == "message/rfc822"
    assert broken["summary"]["subject"] == "Your weekly shop report"
    kept = await client.get(f"/v1/quarantine/{broken['quarantine_id']}/raw", headers=AUTH)
    assert await kept.read() == raw
    assert await backlog(client) == 0


async def test_attachments_are_files_served_by_hash_never_in_the_store(
    client: Client, tmp_path: Path
) -> None:
    await post_fixture(client, "attachments.eml")
    [stored] = await maria_history(client)
    image, pdf = stored["attachments"]
    assert (image["name"], image["inline"]) == ("lid.png", True)
    response = await client.get(f"/v1/attachments/{pdf['blob']}", headers=AUTH)
    assert response.status == 200
    content = await response.read()
    assert content.startswith(b"%PDF-1.4")
    assert len(content) == pdf["size"]
    html = await client.get(f"/v1/attachments/{stored['attributes']['html_blob']}", headers=AUTH)
    assert b"cid:ii_lq3x9k2a0" in await html.read()
    data = tmp_path / "data"
    stores = [p for p in data.iterdir() if p.is_file()]
    assert stores, "the embedded store's files are in the data directory"
    for path in stores:
        assert b"%PDF-1.4" not in path.read_bytes(), path


async def test_mail_from_our_own_address_is_ignored(client: Client) -> None:
    raw = fixture_bytes("email", "plain.eml").replace(
        b"Maria Lopez <maria.lopez@example.com>", b"Acme Support <support@acme.test>"
    )
    answer = await post(client, raw, status=200)
    assert (answer["accepted"], answer["ignored"]) == (0, 1)
    assert await customer_of(client, "email:support@acme.test") is None


async def test_the_raw_endpoint_needs_the_api_token(client: Client) -> None:
    response = await client.post(RAW, data=fixture_bytes("email", "plain.eml"))
    assert response.status == 401
    assert await customer_of(client, MARIA) is None


async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    raw = fixture_bytes("email", "plain.eml") + b"x" * MAX_BODY_BYTES
    response = await client.post(RAW, data=raw, headers=AUTH)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


async def test_an_empty_body_is_400(client: Client) -> None:
    response = await client.post(RAW, data=b"\r\n", headers=AUTH)
    assert response.status == 400


async def test_the_email_connector_has_no_webhook(client: Client) -> None:
    response = await client.post("/v1/connectors/email/webhook", data=b"x")
    assert response.status == 404


@pytest.mark.parametrize("policy", [None])
async def test_404_when_the_email_connector_is_not_configured(client: Client) -> None:
    response = await client.post(RAW, data=fixture_bytes("email", "plain.eml"), headers=AUTH)
    assert response.status == 404
