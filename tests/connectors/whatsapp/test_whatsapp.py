"""The WhatsApp Cloud API connector: Meta's signature and handshake (``connectors.meta``,
checked here once for the three Meta connectors), the parser against the recorded
payloads in ``fixtures/``, and the webhook on the running app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import Parsed, WebhookRequest
from connectors.meta import meta_time, signature, subscription_reply, verify_signature
from connectors.registry import load_settings
from connectors.whatsapp.parse import parse_body
from router.errors import InputError, Unauthorized
from router.settings import Secret
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    fixture_json,
    history,
    post_webhook,
    quarantine,
)
from tests.connectors.meta_hooks import SECRET, VERIFY_TOKEN, policy_for, post_fixture, signed
from tests.connectors.nothing_stored import assert_nothing_stored

POLICY = policy_for("whatsapp")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SHEENA = "phone:+16505551234"
KERRY = "phone:+16315551181"
NUMBER_1 = "106540352242922"
NUMBER_2 = "106540352242923"


def wamid(n: int) -> str:
    return f"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUFERjg0NDEzNDdFODU3MUMx{n:04d}A="


def parse(name: str, **options: Any) -> Parsed:
    return parse_body(fixture_bytes("whatsapp", name), received_at=NOW, **options)


def request(
    body: bytes = b"", headers: dict[str, str] | None = None, **query: str
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://omni.example.com/v1/connectors/whatsapp/webhook",
        headers=headers or {},
        body=body,
        received_at=NOW,
        query=tuple(query.items()),
    )


# --- Meta's signature and handshake (connectors.meta) ------------------------------------


def test_signature_covers_the_raw_body() -> None:
    body = fixture_bytes("whatsapp", "text.json")
    assert b"\\u00f3" in body  # Meta escapes non-ASCII: the signature is over these bytes
    verify_signature(request(body, signed(body)), Secret(SECRET))
    upper = {"X-Hub-Signature-256": signature(body, SECRET).upper().replace("SHA256", "sha256")}
    verify_signature(request(body, upper), Secret(SECRET))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-Hub-Signature-256 header"),
        ({"X-Hub-Signature-256": "sha1=abc"}, "X-Hub-Signature-256 must read sha256="),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "invalid X-Hub-Signature-256"),
    ],
)
def test_bad_signatures_are_unauthorized(headers: dict[str, str], message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        verify_signature(request(b"{}", headers), Secret(SECRET))


def test_tampered_body_and_wrong_secret_are_unauthorized() -> None:
    body = fixture_bytes("whatsapp", "text.json")
    tampered = body.replace(b"A-1001", b"A-1002")
    with pytest.raises(Unauthorized):
        verify_signature(request(tampered, signed(body)), Secret(SECRET))
    with pytest.raises(Unauthorized):
        verify_signature(request(body, signed(body, "another-secret")), Secret(SECRET))


def test_handshake_echoes_the_challenge_for_the_verify_token() -> None:
    ok = request(**{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN})
    reply = subscription_reply(
        request(
            **{
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            }
        ),
        Secret(VERIFY_TOKEN),
    )
    assert (reply.status, reply.body, reply.content_type) == (200, b"1158201444", "text/plain")
    with pytest.raises(InputError, match=r"hub\.challenge"):
        subscription_reply(ok, Secret(VERIFY_TOKEN))
    wrong = request(**{"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    with pytest.raises(Unauthorized, match=r"invalid hub\.verify_token"):
        subscription_reply(wrong, Secret(VERIFY_TOKEN))
    with pytest.raises(InputError, match=r"hub\.mode=subscribe"):
        subscription_reply(request(**{"hub.challenge": "1"}), Secret(VERIFY_TOKEN))


def test_meta_timestamps_in_seconds_or_milliseconds() -> None:
    assert meta_time("1795341540") == datetime(2026, 11, 22, 9, 59, tzinfo=UTC)
    assert meta_time(1795341540000) == datetime(2026, 11, 22, 9, 59, tzinfo=UTC)
    assert meta_time("soon") is None
    assert meta_time(None) is None


def test_settings_need_both_secrets() -> None:
    problems: list[str] = []
    table = {"app_secret": "", "verify_token": "t", "max_body_bytes": -1}
    load_settings({"whatsapp": table}, {}, problems)
    assert problems == [
        "connectors.whatsapp.app_secret (config file): must not be empty",
        "connectors.whatsapp.max_body_bytes (config file): must be 0 (http.max_body_bytes) or more",
    ]


# --- the parser --------------------------------------------------------------------------


def test_text_message() -> None:
    [message] = parse("text.json").messages
    assert (message.channel, message.source, message.external_id) == (
        "social",
        "whatsapp",
        wamid(1),
    )
    assert message.sender.name == "Sheena Nelson"
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == ("whatsapp", "+16505551234", True)
    assert message.thread == f"{NUMBER_1}:16505551234"  # the chat, not the number alone
    assert message.inbox == f"whatsapp:{NUMBER_1}"  # the number alone
    assert message.text == "Hola! Mi pedido #A-1001 lleg\u00f3 roto \U0001f61e"
    assert message.sent_at == datetime(2026, 11, 22, 9, 59, tzinfo=UTC)


def test_batch_is_split_into_every_entry_change_and_message() -> None:
    parsed = parse("batch.json")
    assert [m.external_id for m in parsed.messages] == [wamid(11), wamid(12), wamid(13)]
    assert [m.sender.name for m in parsed.messages] == [
        "Sheena Nelson",
        "Kerry Fisher",
        "Sheena Nelson",
    ]
    assert [m.thread for m in parsed.messages] == [
        f"{NUMBER_1}:16505551234",
        f"{NUMBER_1}:16315551181",
        f"{NUMBER_2}:16505551234",
    ]
    [report] = parsed.deliveries
    assert (report.external_id, report.status) == (wamid(900), "delivered")
    assert parsed.ignored == []
    assert parsed.quarantined == []


def test_media_messages_are_attachments_with_the_media_id() -> None:
    parsed = parse("media.json")
    got = [
        (m.attachments[0].name, m.attachments[0].content_type, m.attachments[0].provider_id)
        for m in parsed.messages
    ]
    assert got == [
        ("image", "image/jpeg", "2754859441498128"),
        ("audio", "audio/ogg; codecs=opus", "1319203765571820"),
        ("video", "video/mp4", "1166846181421424"),
        ("receipt.pdf", "application/pdf", "1003383421387256"),
        ("sticker", "image/webp", "1228540661662765"),
    ]
    assert [m.text for m in parsed.messages] == ["Front of the box", "", "Unboxing", "Receipt", ""]
    image, voice = parsed.messages[0], parsed.messages[1]
    assert image.attachments[0].url is not None
    assert image.attachments[0].url.startswith("https://lookaside.fbsbx.com/")
    assert voice.attributes == {"voice": True}


def test_statuses_only_are_delivery_reports() -> None:
    parsed = parse("statuses.json")
    assert parsed.messages == []
    got = [(r.external_id, r.status, r.at.second, r.error) for r in parsed.deliveries]
    assert got == [
        (wamid(901), "sent", 0, None),
        (wamid(901), "delivered", 2, None),
        (wamid(901), "read", 30, None),
        (wamid(902), "failed", 31, "131026: Message undeliverable"),
    ]
    assert {r.source for r in parsed.deliveries} == {"whatsapp"}
    assert {r.recipient for r in parsed.deliveries} == {"16505551234"}


def test_replies_to_buttons_lists_templates_and_flows() -> None:
    parsed = parse("interactive.json")
    assert [m.text for m in parsed.messages] == [
        "Cancel",
        "Priority Mail Express",
        "Stop promotions",
        "Sent",
    ]
    assert [m.attributes for m in parsed.messages] == [
        {"reply_id": "cancel-button"},
        {"reply_id": "priority_express"},
        {"button_payload": "STOP_PROMOTIONS"},
        {"flow_response": '{"flow_token": "order-A-1001", "reason": "damaged"}'},
    ]
    assert [m.references for m in parsed.messages] == [
        [wamid(903)],
        [wamid(903)],
        [wamid(904)],
        [wamid(903)],
    ]


def test_location_and_shared_contacts() -> None:
    location, contacts = parse("location_contacts.json").messages
    assert location.text == (
        "Location: Meta Headquarters, 1 Hacker Way, Menlo Park, CA 94025 (37.483307, -122.148981)"
    )
    assert location.attributes["location"]["latitude"] == 37.483307
    assert contacts.text == "Contact: Barbara J. Johnson +1 (650) 555-1235 bjohnson@luckyshrub.com"
    # someone else's card: details for the agent, never an identity of the sender
    assert [i.value for i in contacts.sender.identities] == ["+16505551234"]
    assert contacts.attributes["shared_contacts"][0]["phones"] == ["+1 (650) 555-1235"]


def test_reactions_unsupported_and_system_messages_are_ignored() -> None:
    parsed = parse("ignored.json")
    assert parsed.messages == []
    assert parsed.deliveries == []
    assert parsed.ignored == ["reaction", "reaction", "unsupported:poll_update", "type:system"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("template_update.json", "field:message_template_status_update"),
        ("echo.json", "field:smb_message_echoes"),
    ],
)
def test_other_fields_are_ignored(name: str, reason: str) -> None:
    parsed = parse(name)
    assert (parsed.messages, parsed.deliveries, parsed.ignored) == ([], [], [reason])


def test_a_username_only_sender_has_the_business_scoped_id() -> None:
    [message] = parse("username.json").messages
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == (
        "whatsapp_bsuid",
        "US.13491208655302741918",
        True,
    )
    assert message.sender.attributes == {"whatsapp_username": "sheena.n"}


def test_number_and_business_scoped_id_are_both_identities() -> None:
    body = fixture_json("whatsapp", "text.json")
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "US.13491208655302741918"
    [message] = parse_body(json.dumps(body).encode(), received_at=NOW).messages
    assert [(i.kind, i.value) for i in message.sender.identities] == [
        ("whatsapp", "+16505551234"),
        ("whatsapp_bsuid", "US.13491208655302741918"),
    ]


def test_a_malformed_message_is_quarantined_and_the_others_kept() -> None:
    parsed = parse("malformed.json")
    assert [m.external_id for m in parsed.messages] == [wamid(71)]
    [kept] = parsed.quarantined
    assert kept.reason == "image message without a media id"
    assert json.loads(kept.raw)["id"] == wamid(72)


def test_a_message_over_the_canonical_limits_is_quarantined() -> None:
    body = fixture_json("whatsapp", "text.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid." + "x" * 600
    parsed = parse_body(json.dumps(body).encode(), received_at=NOW)
    assert parsed.messages == []
    [kept] = parsed.quarantined
    assert kept.reason.startswith("message does not fit the canonical model")
    assert "external_id" in kept.reason


def test_other_business_numbers_are_ignored_when_numbers_are_configured() -> None:
    parsed = parse("batch.json", phone_number_ids=(NUMBER_2,))
    assert [m.external_id for m in parsed.messages] == [wamid(13)]
    assert parsed.ignored == ["phone_number_id:not_configured"] * 2


def test_not_a_whatsapp_body() -> None:
    with pytest.raises(InputError, match="not a WhatsApp Cloud API webhook"):
        parse_body(b"[1, 2]", received_at=NOW)
    with pytest.raises(InputError):
        parse_body(b"{", received_at=NOW)
    page = fixture_bytes("messenger", "text.json")
    assert parse_body(page, received_at=NOW).ignored == ["object:page"]


# --- the webhook on the running app --------------------------------------------------------


@pytest.fixture
def policy() -> str:
    return POLICY


async def post(client: Client, name: str) -> tuple[int, Any]:
    return await post_fixture(client, "whatsapp", name)


async def test_handshake(client: Client) -> None:
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    response = await client.get(f"/v1/connectors/whatsapp/webhook?{query}")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "1158201444"
    response = await client.get(
        "/v1/connectors/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "invalid hub.verify_token"


async def test_a_message_is_stored_with_the_verified_number(client: Client) -> None:
    status, answer = await post(client, "text.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    customer = await customer_of(client, SHEENA)
    assert customer is not None
    assert customer["name"] == "Sheena Nelson"
    assert {"kind": "phone", "value": "+16505551234", "verified": True} in customer["identities"]
    [stored] = await history(client, customer["customer_id"])
    assert (stored["source"], stored["external_id"], stored["channel"]) == (
        "whatsapp",
        wamid(1),
        "social",
    )
    assert stored["text"] == "Hola! Mi pedido #A-1001 lleg\u00f3 roto \U0001f61e"
    assert stored["attributes"]["inbox"] == f"whatsapp:{NUMBER_1}"


async def test_a_retried_delivery_is_not_stored_twice(client: Client) -> None:
    assert (await post(client, "text.json"))[1]["accepted"] == 1
    status, answer = await post(client, "text.json")
    assert status == 200
    assert (answer["accepted"], answer["duplicates"]) == (0, 1)
    customer = await customer_of(client, SHEENA)
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


@pytest.mark.parametrize("case", ["tampered", "wrong-secret", "unsigned"])
async def test_a_bad_signature_is_401_and_nothing_is_stored(client: Client, case: str) -> None:
    body = fixture_bytes("whatsapp", "text.json")
    headers = {
        "tampered": signed(body.replace(b"A-1001", b"A-9999")),
        "wrong-secret": signed(body, "another-secret"),
        "unsigned": {"Content-Type": "application/json"},
    }[case]
    status, answer = await post_webhook(client, "whatsapp", body, headers)
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, SHEENA)


async def test_a_batch_stores_every_message_and_status(client: Client) -> None:
    status, answer = await post(client, "batch.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["deliveries"]) == (3, 1)
    sheena, kerry = await customer_of(client, SHEENA), await customer_of(client, KERRY)
    assert sheena is not None
    assert kerry is not None
    assert sheena["customer_id"] != kerry["customer_id"]
    messages = await history(client, sheena["customer_id"])
    assert sorted(m["external_id"] for m in messages) == [wamid(11), wamid(13)]
    # two business numbers: two conversations
    assert len({m["conversation_id"] for m in messages}) == 2
    [image] = await history(client, kerry["customer_id"])
    assert image["attachments"][0]["provider_id"] == "2754859441498128"
    reports = await deliveries(client, wamid(900))
    assert [r["status"] for r in reports] == ["delivered"]


async def test_statuses_only_route_nothing(client: Client) -> None:
    status, answer = await post(client, "statuses.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["deliveries"], answer["message_ids"]) == (0, 4, [])
    assert await customer_of(client, SHEENA) is None
    assert [r["status"] for r in await deliveries(client, wamid(901))] == [
        "sent",
        "delivered",
        "read",
    ]
    [failed] = await deliveries(client, wamid(902))
    assert failed["error"] == "131026: Message undeliverable"
    assert (await post(client, "statuses.json"))[1]["deliveries"] == 0  # a re-delivery


async def test_media_attachments_are_stored(client: Client) -> None:
    status, answer = await post(client, "media.json")
    assert (status, answer["accepted"]) == (200, 5)
    customer = await customer_of(client, SHEENA)
    assert customer is not None
    stored = await history(client, customer["customer_id"])
    assert sorted(m["attachments"][0]["provider_id"] for m in stored) == [
        "1003383421387256",
        "1166846181421424",
        "1228540661662765",
        "1319203765571820",
        "2754859441498128",
    ]


@pytest.mark.parametrize("name", ["ignored.json", "template_update.json", "echo.json"])
async def test_ignored_events_are_acknowledged(client: Client, name: str) -> None:
    status, answer = await post(client, name)
    assert status == 200, answer
    assert answer["accepted"] == 0
    assert answer["ignored"] == len(parse(name).ignored)
    assert await customer_of(client, SHEENA) is None


async def test_a_malformed_message_is_quarantined(client: Client) -> None:
    status, answer = await post(client, "malformed.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["quarantined"]) == (1, 1)
    [entry] = await quarantine(client)
    assert (entry["connector"], entry["reason"]) == ("whatsapp", "image message without a media id")


async def test_a_body_that_is_not_whatsapp_is_400(client: Client) -> None:
    status, answer = await post_webhook(client, "whatsapp", b"[]", signed(b"[]"))
    assert status == 400
    assert answer["error"]["code"] == "bad_request"


@pytest.mark.parametrize("policy", [POLICY + "max_body_bytes = 1000\n"])
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    body = fixture_bytes("whatsapp", "batch.json")
    assert len(body) > 1000
    status, answer = await post_webhook(client, "whatsapp", body, signed(body))
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
    assert await customer_of(client, SHEENA) is None


async def deliveries(client: Client, external_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/deliveries/whatsapp/{external_id}", headers=AUTH)
    assert response.status == 200, await response.text()
    return list((await response.json())["deliveries"])
