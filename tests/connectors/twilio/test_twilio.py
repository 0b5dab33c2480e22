"""Twilio: recorded SMS, MMS, WhatsApp and status-callback requests, signed in the test
with the test auth token over the configured webhook URL, posted to the running app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

from connectors.base import ConnectorContext, Parsed, WebhookRequest
from connectors.twilio import TwilioConnector
from connectors.twilio.parse import EMPTY_TWIML, parse_form
from connectors.twilio.settings import TwilioSettings
from connectors.twilio.signature import candidate_urls, compute
from router.clock import ManualClock
from router.errors import ConfigError, InputError, Unauthorized
from router.settings import Secret, load
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
    quarantine,
)
from tests.connectors.nothing_stored import assert_nothing_stored

TOKEN = "twilio-test-auth-token"
URL = "https://omni.example.com/v1/connectors/twilio/webhook?tenant=acme"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def policy() -> str:
    return f'[connectors.twilio]\nauth_token = "{TOKEN}"\nwebhook_url = "{URL}"\n'


def form_of(body: bytes) -> list[tuple[str, str]]:
    return request(body).form()


def signed(body: bytes, token: str = TOKEN, url: str = URL) -> dict[str, str]:
    return FORM | {"X-Twilio-Signature": compute(token, url, form_of(body))}


def request(body: bytes, headers: dict[str, str] | None = None, url: str = URL) -> WebhookRequest:
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    return WebhookRequest("POST", url, lower, body, NOW)


def connector(webhook_url: str = URL) -> TwilioConnector:
    settings = TwilioSettings(auth_token=Secret(TOKEN), webhook_url=webhook_url)
    return TwilioConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


def parse(name: str) -> Parsed:
    body = fixture_bytes("twilio", name)
    return parse_form(form_of(body), body, NOW)


# --- signature ------------------------------------------------------------------------


def test_signature_matches_twilios_documented_example() -> None:
    """The worked example of Twilio's security page (auth token 12345)."""
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert compute("12345", url, params.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_candidate_urls_add_and_drop_the_default_port() -> None:
    assert candidate_urls("https://h.example/x?a=1") == [
        "https://h.example/x?a=1",
        "https://h.example:443/x?a=1",
    ]
    assert candidate_urls("http://h.example:80/x") == [
        "http://h.example:80/x",
        "http://h.example/x",
    ]
    assert candidate_urls("https://h.example:8443/x") == ["https://h.example:8443/x"]


def test_verify_accepts_the_configured_url_with_or_without_port() -> None:
    body = fixture_bytes("twilio", "sms.txt")
    connector().verify(request(body, signed(body)))
    with_port = URL.replace("omni.example.com", "omni.example.com:443")
    connector().verify(request(body, signed(body, url=with_port)))


def test_verify_uses_the_request_url_when_no_webhook_url_is_set() -> None:
    body = fixture_bytes("twilio", "sms.txt")
    seen = "https://public.example.com/v1/connectors/twilio/webhook"
    connector(webhook_url="").verify(request(body, signed(body, url=seen), url=seen))
    with pytest.raises(Unauthorized):
        connector(webhook_url="").verify(request(body, signed(body), url=seen))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-Twilio-Signature"),
        ({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, "invalid X-Twilio-Signature"),
    ],
)
def test_verify_refuses_missing_or_wrong_signatures(headers: dict[str, str], message: str) -> None:
    body = fixture_bytes("twilio", "sms.txt")
    with pytest.raises(Unauthorized, match=message):
        connector().verify(request(body, headers))


def test_verify_refuses_a_tampered_body_and_another_token() -> None:
    body = fixture_bytes("twilio", "sms.txt")
    tampered = body.replace(b"broken", b"fine")
    with pytest.raises(Unauthorized):
        connector().verify(request(tampered, signed(body)))
    with pytest.raises(Unauthorized):
        connector().verify(request(body, signed(body, token="another-token")))


def test_an_empty_auth_token_is_refused_at_start_up() -> None:
    settings = TwilioSettings(auth_token=Secret(""))
    with pytest.raises(ValueError, match="auth_token"):
        TwilioConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


# --- parsing ---------------------------------------------------------------------------


def test_sms_is_a_verified_phone_on_the_sms_channel() -> None:
    parsed = parse("sms.txt")
    assert parsed.reply == EMPTY_TWIML
    [message] = parsed.messages
    assert message.channel == "sms"
    assert message.source == "twilio"
    assert message.external_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert message.thread == "+14155550199"
    assert message.inbox == "twilio:+14155550199"
    assert message.text == "Hi, my order #A-1001 arrived broken. Can you help?"
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == ("phone", "+14155550100", True)
    assert message.sender.name is None
    assert message.attributes["from_country"] == "US"
    assert message.attributes["via"] == "sms"


def test_mms_media_become_attachments() -> None:
    [message] = parse("mms.txt").messages
    first, second = message.attachments
    assert first.name == "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9.jpg"
    assert first.content_type == "image/jpeg"
    assert first.provider_id == "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert first.url is not None
    assert first.url.endswith("/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    assert second.name.endswith(".pdf")
    assert message.text == "Here are the photos"


def test_whatsapp_strips_the_prefix_and_keeps_the_profile_name() -> None:
    [message] = parse("whatsapp.txt").messages
    assert message.channel == "social"
    assert message.sender.name == "Maria López"
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == ("phone", "+14155550100", True)
    assert message.thread == "whatsapp:+14155550199"
    assert message.inbox == "twilio:+14155550199"  # one number, one inbox
    assert message.text == "Hola, ¿dónde está mi pedido?"
    assert message.attributes["via"] == "whatsapp"


def test_whatsapp_voice_note_has_no_text_and_one_attachment() -> None:
    [message] = parse("whatsapp_voice.txt").messages
    assert message.text == ""
    [voice] = message.attachments
    assert voice.name.endswith(".ogg")
    assert voice.content_type == "audio/ogg"


def test_whatsapp_location_reads_as_its_place() -> None:
    [message] = parse("whatsapp_location.txt").messages
    assert message.text == "Location: Our store, Puerta del Sol, Madrid (40.4168, -3.7038)"
    assert message.attributes["location"] == {
        "latitude": "40.4168",
        "longitude": "-3.7038",
        "label": "Our store",
        "address": "Puerta del Sol, Madrid",
    }


@pytest.mark.parametrize(
    ("name", "status", "recipient", "error"),
    [
        ("status_delivered.txt", "delivered", "+14155550100", None),
        ("status_undelivered.txt", "failed", "+14155550100", "30003"),
        ("status_whatsapp_read.txt", "read", "whatsapp:+34612345678", None),
    ],
)
def test_status_callbacks_are_delivery_reports(
    name: str, status: str, recipient: str, error: str | None
) -> None:
    parsed = parse(name)
    assert parsed.messages == []
    [report] = parsed.deliveries
    assert (report.source, report.status, report.recipient, report.error) == (
        "twilio",
        status,
        recipient,
        error,
    )
    assert report.at == NOW
    assert parsed.reply == EMPTY_TWIML


def test_unknown_status_and_inbound_status_are_ignored() -> None:
    for status in ("received", "brand_new_status"):
        body = urlencode({"MessageSid": "SM" + "0" * 32, "MessageStatus": status}).encode()
        parsed = parse_form(form_of(body), body, NOW)
        assert parsed.deliveries == []
        assert parsed.ignored == [f"status:{status}"]


def test_a_channel_without_a_phone_number_is_quarantined() -> None:
    parsed = parse("unsupported_channel.txt")
    assert parsed.messages == []
    [held] = parsed.quarantined
    assert "messenger" in held.reason
    assert held.raw == fixture_bytes("twilio", "unsupported_channel.txt")


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"Body": "hi", "From": "+14155550100"}, "no MessageSid"),
        ({"MessageSid": "SM1"}, "neither Body nor MessageStatus"),
        ({"MessageSid": "SM1", "Body": "hi"}, "no From"),
        ({"MessageSid": "SM1", "Body": "", "From": "+1415", "NumMedia": "x"}, "NumMedia"),
        ({"MessageSid": "SM1", "Body": "", "From": "+1415", "NumMedia": "1"}, "MediaUrl0"),
    ],
)
def test_requests_that_are_not_twilio_messages_are_input_errors(
    form: dict[str, str], problem: str
) -> None:
    body = urlencode(form).encode()
    with pytest.raises(InputError, match=problem):
        parse_form(form_of(body), body, NOW)


# --- the running app -------------------------------------------------------------------


async def post(client: Client, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    return await post_webhook(client, "twilio", body, headers, query="tenant=acme")


async def test_sms_is_stored_and_answered_with_empty_twiml(client: Client) -> None:
    body = fixture_bytes("twilio", "sms.txt")
    response = await client.post(
        "/v1/connectors/twilio/webhook?tenant=acme", data=body, headers=signed(body)
    )
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert await response.read() == EMPTY_TWIML.body
    customer = await customer_of(client, "phone:+14155550100")
    assert customer is not None
    assert {"kind": "phone", "value": "+14155550100", "verified": True} in customer["identities"]
    [entry] = await history(client, customer["customer_id"])
    assert entry["channel"] == "sms"
    assert entry["text"].startswith("Hi, my order #A-1001")
    assert entry["attributes"]["inbox"] == "twilio:+14155550199"


@pytest.mark.parametrize(
    ("name", "identity", "channel"),
    [
        ("mms.txt", "phone:+14155550100", "sms"),
        ("whatsapp.txt", "phone:+14155550100", "social"),
        ("whatsapp_voice.txt", "phone:+34612345678", "social"),
        ("whatsapp_location.txt", "phone:+34612345678", "social"),
    ],
)
async def test_every_incoming_fixture_is_stored(
    client: Client, name: str, identity: str, channel: str
) -> None:
    body = fixture_bytes("twilio", name)
    assert (await post(client, body, signed(body)))[0] == 200
    customer = await customer_of(client, identity)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["channel"] == channel
    assert entry["external_id"] == dict(form_of(body))["MessageSid"]


async def test_a_retried_request_is_stored_once(client: Client) -> None:
    body = fixture_bytes("twilio", "sms.txt")
    retry = signed(body) | {"I-Twilio-Idempotency-Token": "a7f4e2c9-retry"}
    assert (await post(client, body, signed(body)))[0] == 200
    assert (await post(client, body, retry))[0] == 200
    customer = await customer_of(client, "phone:+14155550100")
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


async def test_sms_and_whatsapp_from_one_number_are_one_customer(client: Client) -> None:
    for name in ("sms.txt", "whatsapp.txt"):
        body = fixture_bytes("twilio", name)
        assert (await post(client, body, signed(body)))[0] == 200
    customer = await customer_of(client, "phone:+14155550100")
    assert customer is not None
    assert customer["name"] == "Maria López"
    entries = await history(client, customer["customer_id"])
    assert sorted(e["channel"] for e in entries) == ["sms", "social"]
    assert len({e["conversation_id"] for e in entries}) == 2
    other = await customer_of(client, "phone:+34612345678")
    assert other is None


async def test_media_are_stored_as_attachment_metadata(client: Client) -> None:
    body = fixture_bytes("twilio", "mms.txt")
    assert (await post(client, body, signed(body)))[0] == 200
    customer = await customer_of(client, "phone:+14155550100")
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    types = [a["content_type"] for a in entry["attachments"]]
    assert types == ["image/jpeg", "application/pdf"]
    assert all(a["url"].startswith("https://api.twilio.com/") for a in entry["attachments"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed(fixture_bytes("twilio", "sms.txt"), token="wrong-secret"),
        signed(fixture_bytes("twilio", "sms.txt"), url=URL.replace("?tenant=acme", "")),
    ],
    ids=["unsigned", "wrong-secret", "other-url"],
)
async def test_bad_signatures_get_401_and_store_nothing(
    client: Client, headers: dict[str, str]
) -> None:
    body = fixture_bytes("twilio", "sms.txt")
    status, answer = await post(client, body, FORM | headers)
    assert status == 401
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, "phone:+14155550100")


async def test_the_nothing_stored_check_sees_what_a_request_stored(client: Client) -> None:
    """``assert_nothing_stored`` fails on a customer, on queued work and on a quarantined
    raw message, as the 401 tests rely on."""
    body = fixture_bytes("twilio", "sms.txt")
    assert (await post(client, body, signed(body)))[0] == 200
    with pytest.raises(AssertionError, match="was stored"):
        await assert_nothing_stored(client, "phone:+14155550100")
    with pytest.raises(AssertionError, match="work queued"):
        await assert_nothing_stored(client)
    held = fixture_bytes("twilio", "unsupported_channel.txt")
    assert (await post(client, held, signed(held)))[0] == 200
    with pytest.raises(AssertionError, match="quarantined"):
        await assert_nothing_stored(client)


async def test_a_tampered_body_gets_401_and_stores_nothing(client: Client) -> None:
    body = fixture_bytes("twilio", "sms.txt")
    tampered = body.replace(b"From=%2B14155550100", b"From=%2B14155550111")
    status, _ = await post(client, tampered, signed(body))
    assert status == 401
    await assert_nothing_stored(client, "phone:+14155550111", "phone:+14155550100")


async def test_status_callbacks_record_delivery_states(client: Client) -> None:
    for name in ("status_delivered.txt", "status_undelivered.txt", "status_whatsapp_read.txt"):
        body = fixture_bytes("twilio", name)
        status, answer = await post(client, body, signed(body))
        assert status == 200, answer
    response = await client.get(
        "/v1/deliveries/twilio/SMe5f60718293a4b5c6d7e8f90a1b2c3d4", headers=AUTH
    )
    [report] = (await response.json())["deliveries"]
    assert report["status"] == "failed"
    assert report["error"] == "30003"
    response = await client.get(
        "/v1/deliveries/twilio/SMf60718293a4b5c6d7e8f90a1b2c3d4e5", headers=AUTH
    )
    assert [r["status"] for r in (await response.json())["deliveries"]] == ["read"]
    assert await customer_of(client, "phone:+14155550100") is None


async def test_an_unsupported_channel_is_quarantined_not_lost(client: Client) -> None:
    body = fixture_bytes("twilio", "unsupported_channel.txt")
    status, _ = await post(client, body, signed(body))
    assert status == 200
    [entry] = await quarantine(client)
    assert entry["connector"] == "twilio"
    assert "messenger" in entry["reason"]


async def test_a_signed_body_that_is_not_a_message_is_400(client: Client) -> None:
    body = urlencode({"Hello": "world"}).encode()
    status, answer = await post(client, body, signed(body))
    assert status == 400
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == "bad_request"


async def test_get_has_no_handshake(client: Client) -> None:
    response = await client.get("/v1/connectors/twilio/webhook")
    assert response.status == 404


class TestPublicUrl:
    """No ``webhook_url``: the URL Twilio signed is ``http.public_url`` + path + query."""

    PUBLIC = "https://support.example.com"

    @pytest.fixture
    def env(self, env: dict[str, str]) -> dict[str, str]:
        return env | {"OMNIROUTE_HTTP_PUBLIC_URL": self.PUBLIC}

    @pytest.fixture
    def policy(self) -> str:
        return f'[connectors.twilio]\nauth_token = "{TOKEN}"\n'

    async def test_the_public_url_is_what_is_signed(self, client: Client) -> None:
        body = fixture_bytes("twilio", "sms.txt")
        url = self.PUBLIC + "/v1/connectors/twilio/webhook?tenant=acme"
        assert (await post(client, body, signed(body, url=url)))[0] == 200
        assert (await post(client, body, signed(body)))[0] == 401


def test_a_webhook_url_that_is_no_url_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(f'[connectors.twilio]\nauth_token = "{TOKEN}"\nwebhook_url = "omni/hook"\n')
    with pytest.raises(ConfigError) as caught:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert any(p.startswith("connectors.twilio.webhook_url") for p in caught.value.problems)


class TestBodyLimit:
    @pytest.fixture
    def policy(self) -> str:
        return (
            f'[connectors.twilio]\nauth_token = "{TOKEN}"\nwebhook_url = "{URL}"\n'
            "max_body_bytes = 1024\n"
        )

    async def test_a_body_over_the_limit_is_413(self, client: Client) -> None:
        body = urlencode({"MessageSid": "SM" + "1" * 32, "Body": "x" * 2000}).encode()
        status, _ = await post(client, body, signed(body))
        assert status == 413
        small = fixture_bytes("twilio", "sms.txt")
        assert (await post(client, small, signed(small)))[0] == 200
