"""Mailgun: recorded route POSTs (forward, raw MIME, store and notify), signed with the
test signing key, posted to the running app."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from structlog.testing import capture_logs

from connectors.base import ConnectorContext, WebhookRequest
from connectors.email.auth import Check
from connectors.forms import parse_form
from connectors.mailgun import MailgunConnector
from connectors.mailgun.parse import checks as verdicts
from connectors.mailgun.parse import fields
from connectors.mailgun.settings import RETRY_WINDOW_S, MailgunSettings
from connectors.mailgun.signature import compute
from router.clock import ManualClock
from router.errors import ConfigError, InputError, Unauthorized
from router.settings import Secret, load
from tests.connectors import email_hooks as checks
from tests.connectors.conftest import Client, customer_of, fixture_bytes, post_webhook

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
KEY = "mailgun-test-signing-key"
URLENCODED = "application/x-www-form-urlencoded"
FILES = {"raw": "mime.multipart", "attachments": "attachments.multipart"}


@pytest.fixture
def policy() -> str:
    return f'[connectors.mailgun]\nsigning_key = "{KEY}"\nmax_body_bytes = 262144\n'


def body_of(name: str) -> bytes:
    return fixture_bytes("mailgun", FILES.get(name, name if "." in name else f"{name}.txt"))


def content_type(body: bytes) -> str:
    if body.startswith(b"--"):
        return "multipart/form-data; boundary=" + body[2 : body.index(b"\r\n")].decode()
    return "application/json" if body.startswith(b"{") else URLENCODED


def sender(client: Client) -> checks.Post:
    async def post(name: str) -> tuple[int, Any]:
        return await send(client, body_of(name))

    return post


async def send(client: Client, body: bytes) -> tuple[int, Any]:
    return await post_webhook(client, "mailgun", body, {"Content-Type": content_type(body)})


def connector(key: str = KEY) -> MailgunConnector:
    settings = MailgunSettings(signing_key=Secret(key))
    return MailgunConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


def request(body: bytes, at: datetime = NOW) -> WebhookRequest:
    headers = {"content-type": content_type(body)}
    return WebhookRequest("POST", "https://omni.example.com/", headers, body, at)


def replaced(body: bytes, **values: str) -> bytes:
    """A urlencoded fixture with some fields changed (after signing)."""
    pairs = [(k, values.get(k, v)) for k, v in parse_qsl(body.decode(), keep_blank_values=True)]
    return urlencode(pairs).encode()


def field(body: bytes, name: str) -> str:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))[name]


# --- verification ----------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_and_token() -> None:
    body = body_of("plain")
    timestamp, token = field(body, "timestamp"), field(body, "token")
    expected = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    assert compute(KEY, timestamp, token) == expected == field(body, "signature")


def test_a_signed_fresh_post_passes_with_its_token_as_nonce() -> None:
    body = body_of("plain")
    verified = connector().verify(request(body))
    assert verified.nonce == field(body, "token")
    assert verified.nonce_ttl_s == 2 * RETRY_WINDOW_S
    assert verified.fingerprint is not None
    assert verified.fingerprint.startswith("mailgun:")


def test_the_default_freshness_covers_mailguns_eight_hours_of_retries() -> None:
    """A POST refused during an outage comes back up to 8 hours later, signed as before."""
    assert MailgunSettings(signing_key=Secret(KEY)).max_age_s == RETRY_WINDOW_S >= 8 * 3600
    later = NOW + timedelta(hours=8)
    assert connector().verify(request(body_of("plain"), later)).nonce


def test_a_stale_signed_post_is_refused_with_a_warning() -> None:
    with capture_logs() as logs, pytest.raises(Unauthorized, match="stale"):
        connector().verify(request(body_of("stale")))
    [event] = [e for e in logs if e["event"] == "mailgun.stale_refused"]
    assert event["log_level"] == "warning"
    assert "stale" in event["reason"]


def reframed(body: bytes, boundary: str) -> bytes:
    """A multipart fixture with another boundary and its parts in reverse order."""
    old = body[2 : body.index(b"\r\n")]
    chunks = body.split(b"--" + old)[1:-1]
    new = boundary.encode()
    return b"".join(b"--" + new + chunk for chunk in reversed(chunks)) + b"--" + new + b"--\r\n"


def test_the_fingerprint_is_the_mail_not_its_framing() -> None:
    """Mailgun may encode a retry afresh: the token's fingerprint stays the same."""
    body = body_of("attachments")
    again = reframed(body, "another-boundary-0123456789")
    assert again != body
    first, second = (connector().verify(request(b)).fingerprint for b in (body, again))
    assert first == second
    changed = body.replace(b"a photo of the lamp and the invoice.\n", b"a photo of the lamp.\n")
    assert changed != body
    assert connector().verify(request(changed)).fingerprint != first


def test_a_subaccounts_parent_signature_is_enough() -> None:
    """A subaccount's POST carries ``parent-signature`` under the primary account's key."""
    body = body_of("plain")
    timestamp, token = field(body, "timestamp"), field(body, "token")
    own = compute("subaccount-key", timestamp, token)
    pairs = [
        *parse_qsl(replaced(body, signature=own).decode()),
        ("parent-signature", field(body, "signature")),
    ]
    signed = urlencode(pairs).encode()
    for settings in (
        MailgunSettings(parent_signing_key=Secret(KEY)),
        MailgunSettings(signing_key=Secret("subaccount-key")),
        MailgunSettings(signing_key=Secret("another-key"), parent_signing_key=Secret(KEY)),
    ):
        mailgun = MailgunConnector(settings, ConnectorContext(clock=ManualClock(NOW)))
        assert mailgun.verify(request(signed)).nonce == token
    wrong = MailgunSettings(signing_key=Secret("another-key"), parent_signing_key=Secret("x"))
    with pytest.raises(Unauthorized, match="invalid Mailgun signature"):
        MailgunConnector(wrong, ConnectorContext(clock=ManualClock(NOW))).verify(request(signed))


@pytest.mark.parametrize("name", ["attachments", "raw", "event_delivered.json"])
def test_multipart_and_event_json_signatures_pass(name: str) -> None:
    assert connector().verify(request(body_of(name))).nonce


@pytest.mark.parametrize(
    ("body", "key", "at", "words"),
    [
        (body_of("stale"), KEY, NOW, "stale"),
        (body_of("plain"), KEY, NOW + timedelta(hours=9), "stale"),
        (body_of("plain"), "another-key", NOW, "invalid Mailgun signature"),
        (replaced(body_of("plain"), timestamp=str(int(NOW.timestamp()))), KEY, NOW, "invalid"),
        (replaced(body_of("plain"), token="x" * 50), KEY, NOW, "invalid Mailgun signature"),
        (replaced(body_of("plain"), signature=""), KEY, NOW, "missing Mailgun signature"),
        (replaced(body_of("plain"), token=""), KEY, NOW, "missing Mailgun signature fields"),
        (b"subject=hi", KEY, NOW, "missing Mailgun signature fields"),
        (b'{"event-data": {}}', KEY, NOW, "missing Mailgun signature fields"),
    ],
)
def test_stale_tampered_wrong_key_and_unsigned_posts_are_refused(
    body: bytes, key: str, at: datetime, words: str
) -> None:
    with pytest.raises(Unauthorized, match=words):
        connector(key).verify(request(body, at))


def test_a_body_that_is_not_a_form_is_refused_before_parsing() -> None:
    bad = WebhookRequest("POST", "/", {"content-type": "multipart/form-data"}, b"x", NOW)
    with pytest.raises(Unauthorized, match=r"no Mailgun signature: .*without a boundary"):
        connector().verify(bad)


def test_a_signing_key_is_required(tmp_path: Path) -> None:
    config = tmp_path / "omniroute.toml"
    config.write_text("[connectors.mailgun]\nmax_age_s = 0\n")
    with pytest.raises(ConfigError) as caught:
        load(config, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    problems = "\n".join(caught.value.problems)
    assert "connectors.mailgun.max_age_s (config file): must be above 0" in problems
    config.write_text("[connectors.mailgun]\n")
    with pytest.raises(ConfigError) as caught:
        load(config, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert "set signing_key" in "\n".join(caught.value.problems)
    with pytest.raises(ValueError, match="signing_key"):
        connector("")


# --- parsing ---------------------------------------------------------------------------


def form(name: str) -> Any:
    body = body_of(name)
    return parse_form(body, content_type(body))


def test_message_headers_are_the_headers_in_order() -> None:
    split = fields(form("reply"))
    assert split.headers[0][0] == "Received"
    assert split.header("In-Reply-To") == "<agent.reply.1@acme.example>"
    assert split.header("References") == (
        "<CAKmaria.1001@mail.example.com> <agent.reply.1@acme.example>"
    )
    assert split.recipients == ("support@acme.example",)
    assert split.text is not None
    assert split.text.startswith("Yes, please send the replacement")


def test_without_message_headers_the_header_fields_are_used() -> None:
    pairs = [
        (k, v)
        for k, v in parse_qsl(body_of("reply").decode(), keep_blank_values=True)
        if k != "message-headers"
    ]
    body = urlencode(pairs).encode()
    split = fields(parse_form(body, URLENCODED))
    assert dict(split.headers) == {
        "From": "Maria López <maria.lopez@example.com>",
        "To": "support@acme.example",
        "Subject": "Re: Order A-1001 arrived broken",
        "Date": "Sun, 22 Nov 2026 10:59:58 +0100",
        "Message-Id": "<CAKmaria.reply@mail.example.com>",
        "In-Reply-To": "<agent.reply.1@acme.example>",
        "References": "<CAKmaria.1001@mail.example.com> <agent.reply.1@acme.example>",
        "Content-Type": 'text/plain; charset="UTF-8"',
    }


def test_attachment_files_and_the_content_id_map() -> None:
    photo, invoice = fields(form("attachments")).attachments
    assert (photo.name, photo.content_type, photo.content_id, photo.inline) == (
        "lamp.png",
        "image/png",
        "lamp1@mail.example.com",
        True,
    )
    assert photo.content is not None
    assert photo.content.endswith(b"\r\n--not-the-boundary\r\n\x00\xff")
    assert (invoice.name, invoice.content_id, invoice.inline) == ("invoice.pdf", None, False)


def test_a_stored_message_lists_its_attachments_by_url() -> None:
    [receipt] = fields(form("store_notify")).attachments
    assert (receipt.name, receipt.content_type, receipt.size, receipt.content) == (
        "receipt.pdf",
        "application/pdf",
        48213,
        None,
    )
    assert receipt.url is not None
    assert receipt.url.endswith("/messages/BAABAQa3E0/attachments/0")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"attachment-count": "2"}, "attachment-1 is missing"),
        ({"attachment-count": "many"}, "attachment-count must be an integer"),
        ({"message-headers": "[not json"}, "message-headers is not valid JSON"),
        ({"message-headers": '{"From": "x"}'}, "message-headers does not have the expected shape"),
        ({"content-id-map": "[1]"}, "content-id-map does not have the expected shape"),
        ({"attachments": '{"url": 1}'}, "attachments does not have the expected shape"),
    ],
)
def test_fields_that_do_not_fit_are_input_errors(changes: dict[str, str], words: str) -> None:
    pairs = parse_qsl(body_of("plain").decode(), keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in changes]
    body = urlencode(kept + list(changes.items())).encode()
    with pytest.raises(InputError, match=words):
        fields(parse_form(body, URLENCODED))


def test_mailguns_verdicts_are_its_dkim_and_spf_checks() -> None:
    assert verdicts(form("plain")) == (
        Check("dkim", "pass", "example.com", "mailgun"),
        Check("spf", "pass", None, "mailgun"),
    )
    assert verdicts(form("html_only"))[0] == Check("dkim", "pass", "example.net", "mailgun")
    assert verdicts(form("spoofed"))[0] == Check("dkim", "pass", "attacker.example", "mailgun")


def test_the_raw_variant_posts_its_verdicts_as_fields() -> None:
    assert "message-headers" not in form("raw")
    assert verdicts(form("raw"))[0] == Check("dkim", "pass", "example.com", "mailgun")


def with_message_headers(name: str, *extra: tuple[str, str]) -> Any:
    body = body_of(name)
    headers = json.loads(field(body, "message-headers")) + [list(pair) for pair in extra]
    return parse_form(replaced(body, **{"message-headers": json.dumps(headers)}), URLENCODED)


def test_a_pass_for_one_of_several_signing_domains_names_none() -> None:
    """Which signature passed is not said: with two signing domains, neither is known."""
    two = with_message_headers("plain", ("DKIM-Signature", "v=1; d=esp.example; s=x"))
    assert verdicts(two)[0] == Check("dkim", "pass", None, "mailgun")


def test_a_verdict_header_the_sender_also_wrote_is_no_verdict() -> None:
    twice = with_message_headers("spoofed", ("X-Mailgun-Dkim-Check-Result", "Pass"))
    assert [check.method for check in verdicts(twice)] == ["spf"]


async def test_an_event_webhook_is_ignored() -> None:
    parsed = await connector().parse(request(body_of("event_delivered.json")))
    assert (parsed.messages, parsed.ignored) == ([], ["event:delivered"])


# --- the running app -------------------------------------------------------------------


@pytest.fixture
def post(client: Client) -> checks.Post:
    return sender(client)


class TestSharedMails(checks.SharedMails):
    """A retry carries the same body and token: a duplicate, not a replay."""

    via = "mailgun"


async def test_a_stored_message_keeps_its_attachment_urls(client: Client) -> None:
    await checks.accepted(sender(client), "store_notify")
    _, [entry] = await checks.stored(client, checks.MARIA)
    [receipt] = entry["attachments"]
    assert receipt["url"].startswith("https://storage-us-east4.api.mailgun.net/")
    assert "blob" not in receipt
    assert entry["attributes"]["mailgun_message_url"].endswith("/messages/BAABAQa3E0")


async def test_an_event_webhook_is_acknowledged_and_ignored(client: Client) -> None:
    await checks.accepted(sender(client), "event_delivered.json", accepted=0, ignored=1)


async def test_a_stale_post_gets_401_and_nothing_is_stored(client: Client) -> None:
    status, answer = await sender(client)("stale")
    await checks.check_refused(client, status, answer, "stale")


async def test_a_retry_framed_afresh_is_a_duplicate_not_a_replay(client: Client) -> None:
    """The same token and mail with another multipart boundary: stored once, no 401."""
    body = body_of("attachments")
    status, first = await send(client, body)
    assert (status, first["accepted"]) == (200, 1)
    status, again = await send(client, reframed(body, "retry-boundary-42"))
    assert (status, again["accepted"], again["duplicates"]) == (200, 0, 1)


async def test_a_token_reused_on_another_body_gets_401(client: Client) -> None:
    """Jonas's mail carrying the signature (timestamp, token) of Maria's: a replay."""
    await checks.accepted(sender(client), "plain")
    status, answer = await sender(client)("reused_token")
    assert status == 401
    assert "already used" in answer["error"]["message"]
    assert await customer_of(client, checks.JONAS) is None


async def test_tampered_and_wrongly_signed_posts_get_401(client: Client) -> None:
    body = body_of("plain")
    later = str(int(NOW.timestamp()))
    for bad in (
        replaced(body, timestamp=later),
        replaced(body, signature=compute("another-key", field(body, "timestamp"), "t")),
    ):
        status, answer = await send(client, bad)
        await checks.check_refused(client, status, answer, "invalid Mailgun signature")


async def test_a_body_over_the_limit_gets_413(client: Client) -> None:
    body = replaced(body_of("plain"), **{"body-plain": "x" * 262144})
    status, answer = await send(client, body)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")


async def test_event_json_with_a_bad_signature_gets_401(client: Client) -> None:
    event = json.loads(body_of("event_delivered.json"))
    event["signature"]["signature"] = "0" * 64
    status, answer = await send(client, json.dumps(event).encode())
    await checks.check_refused(client, status, answer, "invalid Mailgun signature")
