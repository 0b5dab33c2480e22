"""One person, one customer, across channels — and never two people made one.

Maria writes by WhatsApp, by SMS through Twilio and by email, through the real
connectors. Her number is verified by WhatsApp and by the SMS network, her address by
email: each channel alone joins its messages to one customer per verified identifier.
When a message proves both (her login on the company's portal posts a canonical message
with both verified), the two customers become one, with one history holding every
channel's messages. A different person with a similar name, on another number and
address, never merges. Runs on both backends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest

from connectors.twilio.signature import compute
from tests.connectors.conftest import AUTH, Client, customer_of, history, post_webhook

APP_SECRET = "meta-app-secret"
TWILIO_TOKEN = "twilio-auth-token"
TWILIO_URL = "https://omni.example.com/v1/connectors/twilio/webhook"
BUSINESS_NUMBER = "+14155550199"


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def policy() -> str:
    return (
        f'[connectors.whatsapp]\napp_secret = "{APP_SECRET}"\nverify_token = "verify-me"\n'
        f'[connectors.twilio]\nauth_token = "{TWILIO_TOKEN}"\nwebhook_url = "{TWILIO_URL}"\n'
        '[connectors.email]\nown_addresses = ["support@acme.example"]\n'
    )


async def whatsapp(client: Client, wa_id: str, name: str, text: str) -> dict[str, Any]:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "14155550199",
                                    "phone_number_id": "106540352242922",
                                },
                                "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": f"wamid.{uuid.uuid4().hex}",
                                        "timestamp": "1795341540",
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
    status, answer = await post_webhook(client, "whatsapp", body, headers)
    assert status == 200, answer
    assert answer["accepted"] == 1, answer
    return dict(answer)


async def sms(client: Client, number: str, text: str) -> dict[str, Any]:
    params = [
        ("MessageSid", f"SM{uuid.uuid4().hex}"),
        ("AccountSid", "AC5ef872f6da5a21de157d80997a64bd33"),
        ("From", number),
        ("To", BUSINESS_NUMBER),
        ("Body", text),
        ("NumMedia", "0"),
    ]
    body = "&".join(f"{k}={v}" for k, v in params).replace("+", "%2B").replace(" ", "+")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": compute(TWILIO_TOKEN, TWILIO_URL, params),
    }
    status, answer = await post_webhook(client, "twilio", body.encode(), headers)
    assert status == 200, answer
    return {}


async def email(client: Client, address: str, name: str, text: str) -> dict[str, Any]:
    raw = (
        f"From: {name} <{address}>\r\nTo: support@acme.example\r\n"
        f"Subject: My order\r\nMessage-ID: <{uuid.uuid4().hex}@mail.example.com>\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    response = await client.post(
        "/v1/connectors/email/raw",
        data=raw,
        headers={**AUTH, "Content-Type": "message/rfc822"},
    )
    assert response.status == 202, await response.text()
    return dict(await response.json())


async def portal_login(client: Client, address: str, number: str) -> str:
    """The company's portal, where Maria is logged in, vouches for both identifiers."""
    message = {
        "channel": "other",
        "source": "acme-portal",
        "external_id": f"login-{uuid.uuid4().hex}",
        "sender": {
            "name": "Maria Lopez",
            "identities": [
                {"kind": "email", "value": address, "verified": True},
                {"kind": "phone", "value": number, "verified": True},
            ],
        },
        "text": "Updated contact details",
    }
    response = await client.post("/v1/messages", json=message, headers=AUTH)
    assert response.status == 202, await response.text()
    return str((await response.json())["customer_id"])


async def test_one_person_on_three_channels_is_one_customer(client: Client) -> None:
    await whatsapp(client, "34600111222", "Maria Lopez", "Hola, mi pedido llegó roto")
    await sms(client, "+34600111222", "Sent you a WhatsApp about order A-1001")
    by_phone = await customer_of(client, "phone:+34600111222")
    assert by_phone is not None, "WhatsApp and SMS from one number: one customer"
    channels = sorted(m["source"] for m in await history(client, by_phone["customer_id"]))
    assert channels == ["twilio", "whatsapp"]

    await email(client, "Maria.Lopez@example.com", "Maria Lopez", "Photos attached.")
    await email(client, "maria.lopez@example.com", "Maria Lopez", "Any news?")
    by_email = await customer_of(client, "email:maria.lopez@example.com")
    assert by_email is not None
    assert by_email["customer_id"] != by_phone["customer_id"], (
        "an email alone proves nothing about a phone number: no merge on a name"
    )

    merged = await portal_login(client, "maria.lopez@example.com", "+34600111222")
    assert await customer_of(client, "phone:+34600111222") == await customer_of(
        client, "email:maria.lopez@example.com"
    )
    everything = await history(client, merged)
    assert sorted({m["source"] for m in everything}) == [
        "acme-portal",
        "email",
        "twilio",
        "whatsapp",
    ]
    assert len(everything) == 5
    assert len({m["message_id"] for m in everything}) == 5, "nothing lost or doubled"

    await whatsapp(client, "34600111222", "Maria Lopez", "¿Alguna novedad?")
    await email(client, "maria.lopez@example.com", "Maria Lopez", "Following up")
    assert len(await history(client, merged)) == 7, "new messages on any channel join her"


async def test_a_similar_name_never_merges(client: Client) -> None:
    await whatsapp(client, "34600111222", "Maria Lopez", "Hola")
    await email(client, "maria.lopez@example.com", "Maria Lopez", "Hello")
    await whatsapp(client, "34600999888", "María López", "Hola, otra persona")
    await sms(client, "+34600777666", "Maria Lopez here, different phone")
    await sms(client, "+34600555444", "Maria Lopez again? No: another one, same business number")
    await email(client, "maria.lopez@example.org", "Maria Lopez", "A different Maria")
    owners = {
        key: await customer_of(client, key)
        for key in (
            "phone:+34600111222",
            "email:maria.lopez@example.com",
            "phone:+34600999888",
            "phone:+34600777666",
            "phone:+34600555444",
            "email:maria.lopez@example.org",
        )
    }
    ids = {key: c["customer_id"] for key, c in owners.items() if c is not None}
    assert len(ids) == 6
    assert len(set(ids.values())) == 6, f"people with similar names were merged: {ids}"
    for customer_id in ids.values():
        assert len(await history(client, customer_id)) == 1
