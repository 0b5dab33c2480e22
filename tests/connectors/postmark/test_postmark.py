"""Postmark: recorded inbound webhook JSON, with HTTP basic auth, posted to the running app."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext, WebhookRequest
from connectors.email.auth import Check
from connectors.email_hooks import DEFAULT_MAX_BODY_BYTES, BasicAuthRequired
from connectors.postmark import PostmarkConnector
from connectors.postmark.connector import decode
from connectors.postmark.payload import checks as verdicts
from connectors.postmark.payload import fields
from connectors.postmark.settings import PostmarkSettings
from router.clock import ManualClock
from router.errors import ConfigError, InputError
from router.settings import Secret, load
from tests.connectors import email_hooks as checks
from tests.connectors.conftest import Client, fixture_bytes, post_webhook

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
USER, PASSWORD = "postmark", "pm-test-password"
MAX_BODY_BYTES = 256 * 1024


@pytest.fixture
def policy() -> str:
    return (
        f'[connectors.postmark]\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
        f'own_addresses = ["support@acme.example"]\nmax_body_bytes = {MAX_BODY_BYTES}\n'
    )


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


JSON = {"Content-Type": "application/json"}
FILES = {"raw": "raw_email.json"}


def body_of(name: str) -> bytes:
    return fixture_bytes("postmark", FILES.get(name, f"{name}.json"))


def sender(client: Client, headers: dict[str, str] | None = None) -> checks.Post:
    async def post(name: str) -> tuple[int, Any]:
        given = JSON | (basic() if headers is None else headers)
        return await post_webhook(client, "postmark", body_of(name), given)

    return post


def connector(**overrides: Any) -> PostmarkConnector:
    given: dict[str, Any] = {"username": USER, "password": Secret(PASSWORD)} | overrides
    settings = PostmarkSettings(**given)
    return PostmarkConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


def request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    lower = {k.lower(): v for k, v in (JSON | (basic() if headers is None else headers)).items()}
    return WebhookRequest("POST", "https://omni.example.com/", lower, body, NOW)


# --- verification ----------------------------------------------------------------------


def test_the_configured_credentials_pass() -> None:
    assert connector().verify(request(b"{}")).nonce is None


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "missing HTTP basic auth"),
        (basic(password="wrong"), "wrong HTTP basic auth username or password"),
        (basic(user="other"), "wrong HTTP basic auth username or password"),
        (basic(password=PASSWORD + "x"), "wrong HTTP basic auth"),
        ({"Authorization": "Bearer " + PASSWORD}, "not HTTP basic auth"),
        ({"Authorization": PASSWORD}, "not HTTP basic auth"),
        ({"Authorization": "Basic not*base64"}, "malformed"),
    ],
)
def test_anything_else_is_refused_with_a_challenge(headers: dict[str, str], words: str) -> None:
    with pytest.raises(BasicAuthRequired, match=words) as caught:
        connector().verify(request(b"{}", headers))
    assert PASSWORD[:8] not in caught.value.message  # a credential is never echoed
    assert caught.value.status == 401
    assert caught.value.challenge == 'Basic realm="omniroute postmark webhook", charset="UTF-8"'


def test_credentials_are_required(tmp_path: Path) -> None:
    config = tmp_path / "omniroute.toml"
    config.write_text('[connectors.postmark]\nusername = "a:b"\npassword = ""\n')
    with pytest.raises(ConfigError) as caught:
        load(config, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    problems = "\n".join(caught.value.problems)
    assert "connectors.postmark.username (config file): must not contain ':'" in problems
    assert "connectors.postmark.password (config file): must not be empty" in problems
    with pytest.raises(ValueError, match="must not be empty"):
        connector(username="")


def test_a_from_must_be_authenticated_unless_told_otherwise(tmp_path: Path) -> None:
    assert connector().options.trust_from == "authenticated"
    assert connector(trust_from="always").options.trust_from == "always"
    config = tmp_path / "omniroute.toml"
    config.write_text(
        f'[connectors.postmark]\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
        'trust_from = ""\nauthserv_ids = ["mx;1"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(config, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    problems = "\n".join(caught.value.problems)
    assert "connectors.postmark.trust_from (config file): must be 'authenticated' or" in problems
    assert "connectors.postmark.authserv_ids (config file): not authserv-ids" in problems


def test_the_default_body_limit_fits_mail_with_attachments() -> None:
    assert connector().settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 30 * 1024 * 1024


# --- parsing ---------------------------------------------------------------------------


def test_top_level_fields_become_headers_without_repeats() -> None:
    split = fields(decode(body_of("reply")))
    names = [name for name, _ in split.headers]
    assert names[:4] == ["From", "To", "Subject", "Date"]
    assert names.count("Subject") == 1
    assert split.header("From") == "Maria López <maria.lopez@example.com>"
    assert split.header("In-Reply-To") == "<agent.reply.1@acme.example>"
    assert split.header("X-Spam-Status") == "No"
    assert split.recipients == (
        "4e8d6dec234dd90018e7bfd2b5d79107@inbound.postmarkapp.com",
        "support@acme.example",
    )
    assert split.html is None


def test_attachments_are_decoded_and_inline_images_known_by_content_id() -> None:
    photo, invoice = fields(decode(body_of("attachments"))).attachments
    assert (photo.name, photo.content_type, photo.inline) == ("lamp.png", "image/png", True)
    assert photo.content_id == "lamp1@mail.example.com"
    assert photo.content is not None
    assert photo.content.startswith(b"\x89PNG")
    assert (invoice.content_id, invoice.inline) == (None, False)


def with_headers(name: str, *extra: tuple[str, str], drop: str = "") -> bytes:
    inbound = json.loads(body_of(name))
    kept = [h for h in inbound["Headers"] if h["Name"] != drop]
    inbound["Headers"] = kept + [{"Name": k, "Value": v} for k, v in extra]
    return json.dumps(inbound).encode()


def test_postmarks_verdicts_are_its_spamassassin_tests_and_received_spf() -> None:
    assert verdicts(decode(body_of("plain"))) == (
        Check("dkim", "pass", None, "postmark", author=True),
        Check("spf", "pass", None, "postmark"),
    )
    valid_only = with_headers(
        "plain", ("X-Spam-Tests", "DKIM_SIGNED,DKIM_VALID"), drop="X-Spam-Tests"
    )
    assert verdicts(decode(valid_only))[0] == Check("dkim", "pass", None, "postmark")
    broken = with_headers("plain", ("X-Spam-Tests", "DKIM_SIGNED,SPF_PASS"), drop="X-Spam-Tests")
    assert verdicts(decode(broken))[0] == Check("dkim", "fail", None, "postmark")


def test_a_second_spam_tests_header_is_no_verdict() -> None:
    """The sender's own ``X-Spam-Tests`` next to Postmark's: neither is believed."""
    assert [c.method for c in verdicts(decode(body_of("spoofed")))] == ["spf"]


def test_authentication_results_of_a_trusted_authserv_id_are_read_from_the_headers() -> None:
    body = with_headers(
        "raw", ("Authentication-Results", "mx.postmark.test; dmarc=pass header.from=example.com")
    )
    found = verdicts(decode(body), ("mx.postmark.test",))
    assert Check("dmarc", "pass", "example.com", "mx.postmark.test") in found
    assert Check("dmarc", "pass", "example.com", "mx.postmark.test") not in verdicts(decode(body))


async def test_raw_email_is_verified_by_the_verdicts_in_postmarks_headers() -> None:
    """RawEmail is the mail as sent; Postmark's verdicts are in its JSON ``Headers``."""
    unsigned = with_headers("raw", drop="X-Spam-Tests")
    for body, verified in ((body_of("raw"), True), (unsigned, False)):
        [message] = (await connector().parse(request(body))).messages
        assert message.sender.identities[0].verified is verified


async def test_raw_email_is_parsed_when_present_unless_turned_off() -> None:
    inbound = json.loads(body_of("raw"))
    inbound["TextBody"] = "Postmark's text"
    body = json.dumps(inbound).encode()
    [raw] = (await connector().parse(request(body))).messages
    [split] = (await connector(use_raw_email=False).parse(request(body))).messages
    assert raw.external_id == split.external_id == "CAKmaria.raw@mail.example.com"
    assert (raw.text, split.text) == ("La factura está adjunta.\n\nMaria", "Postmark's text")
    assert raw.subject == split.subject == "Factura de la lámpara"
    assert raw.attributes["postmark_message_id"] == "c0ffee00-1234-4abc-8def-0123456789ab"


async def test_other_postmark_webhooks_are_ignored() -> None:
    parsed = await connector().parse(request(body_of("outbound_bounce")))
    assert (parsed.messages, parsed.ignored) == ([], ["record_type:Bounce"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a Postmark inbound webhook"),
        (b'{"From": 3}', "not a Postmark inbound webhook"),
        (b'{"From": "a@b.example", "Attachments": [{"Content": "%%"}]}', "not valid base64"),
    ],
)
async def test_bodies_that_are_not_inbound_mail_are_input_errors(body: bytes, words: str) -> None:
    with pytest.raises(InputError, match=words):
        await connector().parse(request(body))


async def test_mail_from_our_own_address_is_ignored() -> None:
    inbound = json.loads(body_of("plain"))
    inbound["FromFull"] = {"Email": "support+con_1@acme.example", "Name": "Acme"}
    parsed = await connector(own_addresses=("support@acme.example",)).parse(
        request(json.dumps(inbound).encode())
    )
    assert (parsed.messages, parsed.ignored) == ([], ["own_address"])


# --- the running app -------------------------------------------------------------------


@pytest.fixture
def post(client: Client) -> checks.Post:
    return sender(client)


class TestSharedMails(checks.SharedMails):
    via = "postmark"


async def test_postmarks_message_id_is_kept(client: Client) -> None:
    await checks.accepted(sender(client), "plain")
    _, [entry] = await checks.stored(client, checks.MARIA)
    assert entry["attributes"]["postmark_message_id"] == "a8c1040e-db1c-4e18-ac79-bc5f64c7ce2c"


async def test_raw_email_and_its_fields_are_one_mail(client: Client) -> None:
    """The same mail posted as raw MIME, then as fields only: one message (Message-ID)."""
    await checks.accepted(sender(client), "raw")
    fields_only = json.loads(body_of("raw"))
    del fields_only["RawEmail"]
    status, answer = await post_webhook(
        client, "postmark", json.dumps(fields_only).encode(), JSON | basic()
    )
    assert (status, answer["duplicates"]) == (200, 1)


async def test_an_outbound_webhook_is_acknowledged_and_ignored(client: Client) -> None:
    await checks.accepted(sender(client), "outbound_bounce", accepted=0, ignored=1)


@pytest.mark.parametrize(
    ("headers", "words"),
    [({}, "missing HTTP basic auth"), (basic(password="wrong"), "wrong HTTP basic auth")],
)
async def test_missing_or_wrong_credentials_get_401_and_nothing_is_stored(
    client: Client, headers: dict[str, str], words: str
) -> None:
    status, answer = await sender(client, headers)("plain")
    await checks.check_refused(client, status, answer, words)


async def test_a_body_over_the_limit_gets_413(client: Client) -> None:
    inbound = json.loads(body_of("plain"))
    inbound["TextBody"] = "x" * MAX_BODY_BYTES
    status, answer = await post_webhook(
        client, "postmark", json.dumps(inbound).encode(), JSON | basic()
    )
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
    await checks.nothing_stored(client)


async def test_a_body_that_is_not_postmark_json_gets_400(client: Client) -> None:
    status, answer = await post_webhook(client, "postmark", b"<xml/>", JSON | basic())
    assert (status, answer["error"]["code"]) == (400, "bad_request")


async def test_there_is_no_get_handshake(client: Client) -> None:
    response = await client.get("/v1/connectors/postmark/webhook")
    assert response.status == 404


async def test_a_refusal_asks_for_basic_auth(client: Client) -> None:
    response = await client.post(
        "/v1/connectors/postmark/webhook", data=body_of("plain"), headers=JSON
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
