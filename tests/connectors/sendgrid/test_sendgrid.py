"""SendGrid Inbound Parse: recorded multipart posts (parsed and raw), with HTTP basic auth
and a security policy's ECDSA signature (made in the tests with a fresh key), posted to
the running app."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.base import ConnectorContext, WebhookRequest
from connectors.email.auth import Check
from connectors.email_hooks import BasicAuthRequired
from connectors.forms import parse_form
from connectors.sendgrid import SendGridConnector
from connectors.sendgrid.parse import checks as verdicts
from connectors.sendgrid.parse import fields
from connectors.sendgrid.settings import SendGridSettings
from connectors.sendgrid.signature import SIGNATURE, TIMESTAMP, load_key, valid
from router.clock import ManualClock
from router.errors import ConfigError, InputError, Unauthorized
from router.settings import Secret, load
from tests.connectors import email_hooks as checks
from tests.connectors.conftest import Client, fixture_bytes, post_webhook

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()) - 3)
USER, PASSWORD = "sendgrid", "sg-test-password"
FORM = {"Content-Type": "multipart/form-data; boundary=xYzZY"}
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def policy() -> str:
    return (
        f'[connectors.sendgrid]\nusername = "{USER}"\npassword = "{PASSWORD}"\n'
        f'verification_key = "{PUBLIC}"\nmax_body_bytes = 262144\n'
    )


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def signed(
    body: bytes, key: ec.EllipticCurvePrivateKey = PRIVATE, stamp: str = STAMP
) -> dict[str, str]:
    """What SendGrid sends with a security policy: the ECDSA signature of stamp + body."""
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: stamp}


def body_of(name: str) -> bytes:
    return fixture_bytes("sendgrid", f"{name}.multipart")


def sender(client: Client) -> checks.Post:
    async def post(name: str) -> tuple[int, Any]:
        body = body_of(name)
        return await post_webhook(client, "sendgrid", body, FORM | basic() | signed(body))

    return post


def connector(**overrides: Any) -> SendGridConnector:
    given: dict[str, Any] = {"username": USER, "password": Secret(PASSWORD)} | overrides
    return SendGridConnector(SendGridSettings(**given), ConnectorContext(clock=ManualClock(NOW)))


def request(body: bytes, headers: dict[str, str], at: datetime = NOW) -> WebhookRequest:
    lower = {k.lower(): v for k, v in (FORM | headers).items()}
    return WebhookRequest("POST", "https://omni.example.com/", lower, body, at)


# --- verification ----------------------------------------------------------------------


def test_sendgrids_published_signature_example_verifies() -> None:
    """The test vector SendGrid's own libraries check (timestamp + payload, ECDSA)."""
    key = load_key(
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcep"
        "xo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
    )
    payload = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
    signature = (
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlx"
        "FDWYNH2j/0="
    )
    assert valid(key, "1588788367", payload, signature)
    assert not valid(key, "1388788367", payload, signature)
    assert not valid(key, "1588788367", payload + b" ", signature)
    assert not valid(key, "1588788367", payload, "not base64!")


def test_a_pem_key_loads_and_other_keys_do_not() -> None:
    pem = PRIVATE.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_key(pem.decode()).public_numbers() == PRIVATE.public_key().public_numbers()
    with pytest.raises(ValueError, match="not a public key"):
        load_key("bm90IGEga2V5")
    with pytest.raises(ValueError, match="not a public key"):
        load_key("not base64 at all!")


def test_basic_auth_alone() -> None:
    body = body_of("plain")
    connector().verify(request(body, basic()))
    with pytest.raises(BasicAuthRequired, match="wrong HTTP basic auth"):
        connector().verify(request(body, basic(password="wrong")))
    with pytest.raises(BasicAuthRequired, match="missing HTTP basic auth"):
        connector().verify(request(body, {}))


def test_signature_alone() -> None:
    body = body_of("plain")
    only_key = connector(username="", password=Secret(""), verification_key=PUBLIC)
    only_key.verify(request(body, signed(body)))
    with pytest.raises(Unauthorized, match=f"invalid {SIGNATURE}"):
        only_key.verify(request(body.replace(b"lamp is broken", b"lamp is fine!!"), signed(body)))
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(Unauthorized, match=f"invalid {SIGNATURE}"):
        only_key.verify(request(body, signed(body, key=other)))
    with pytest.raises(Unauthorized, match=f"missing {SIGNATURE}"):
        only_key.verify(request(body, {}))


def test_both_schemes_must_pass_when_both_are_configured() -> None:
    body = body_of("plain")
    both = connector(verification_key=PUBLIC)
    both.verify(request(body, basic() | signed(body)))
    with pytest.raises(Unauthorized, match="missing"):
        both.verify(request(body, basic()))
    with pytest.raises(BasicAuthRequired):
        both.verify(request(body, signed(body)))


def test_the_signed_timestamp_age_is_checked_only_when_asked() -> None:
    body = body_of("plain")
    old = str(int((NOW - timedelta(hours=2)).timestamp()))
    relaxed = connector(verification_key=PUBLIC)
    relaxed.verify(request(body, basic() | signed(body, stamp=old)))
    strict = connector(verification_key=PUBLIC, max_age_s=600)
    with pytest.raises(Unauthorized, match="stale"):
        strict.verify(request(body, basic() | signed(body, stamp=old)))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"username": "", "password": Secret("")}, "nothing to verify requests with"),
        ({"password": Secret("")}, "set both username and password"),
    ],
)
def test_a_connector_that_verifies_nothing_is_refused(
    overrides: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        connector(**overrides)


def test_a_bad_verification_key_is_named_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "omniroute.toml"
    config.write_text('[connectors.sendgrid]\nverification_key = "abc"\nmax_age_s = -1\n')
    with pytest.raises(ConfigError) as caught:
        load(config, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    problems = "\n".join(caught.value.problems)
    assert "connectors.sendgrid.verification_key (config file): not a public key" in problems
    assert "connectors.sendgrid.max_age_s (config file): must be 0 or more" in problems


# --- parsing ---------------------------------------------------------------------------


def form(name: str) -> Any:
    return parse_form(body_of(name), FORM["Content-Type"])


def test_the_header_block_is_the_headers() -> None:
    split = fields(form("reply"))
    assert split.header("In-Reply-To") == "<agent.reply.1@acme.example>"
    assert split.header("Message-ID") == "<CAKmaria.reply@mail.example.com>"
    assert split.recipients == ("support@acme.example",)
    assert [name for name, _ in split.headers].count("From") == 1


def test_each_field_is_decoded_in_its_charset() -> None:
    split = fields(form("latin1"))
    assert split.text == "Hola,\n\nquería devolver el jarrón: llegó con una grieta.\n\nInés\n"


def test_fields_fill_in_headers_the_block_lacks() -> None:
    body = body_of("plain").replace(b"Subject: Order A-1001", b"X-Subject: Order A-1001")
    split = fields(parse_form(body, FORM["Content-Type"]))
    assert split.headers[0] == ("Subject", "Order A-1001 arrived broken")


def test_attachments_with_their_info_and_content_ids() -> None:
    photo, invoice = fields(form("attachments")).attachments
    assert (photo.name, photo.content_type, photo.content_id, photo.inline) == (
        "lamp.png",
        "image/png",
        "lamp1@mail.example.com",
        True,
    )
    assert photo.content is not None
    assert photo.content.startswith(b"\x89PNG")
    assert (invoice.name, invoice.content_type, invoice.inline) == (
        "invoice.pdf",
        "application/pdf",
        False,
    )


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b'"attachments"\r\n\r\n2', b'"attachments"\r\n\r\n3', "attachment3 is missing"),
        (b'"attachments"\r\n\r\n2', b'"attachments"\r\n\r\nx', "must be an integer"),
        (b'"charsets"\r\n\r\n{', b'"charsets"\r\n\r\n[', "charsets does not have the expected"),
        (b'"envelope"\r\n\r\n{', b'"envelope"\r\n\r\n{{', "envelope is not valid JSON"),
    ],
)
def test_fields_that_do_not_fit_are_input_errors(old: bytes, new: bytes, words: str) -> None:
    body = body_of("attachments").replace(old, new)
    with pytest.raises(InputError, match=words):
        fields(parse_form(body, FORM["Content-Type"]))


def with_dkim(name: str, value: bytes) -> Any:
    body = body_of(name)
    old = body.partition(b'name="dkim"\r\n\r\n')[2].partition(b"\r\n")[0]
    return parse_form(
        body.replace(b"\r\n\r\n" + old + b"\r\n", b"\r\n\r\n" + value + b"\r\n"),
        FORM["Content-Type"],
    )


def test_sendgrids_verdicts_are_its_dkim_and_spf_fields() -> None:
    """``dkim`` per signature domain; ``SPF`` for the envelope sender's domain."""
    assert verdicts(form("plain")) == (
        Check("dkim", "pass", "example.com", "sendgrid"),
        Check("spf", "pass", "example.com", "sendgrid"),
    )
    assert verdicts(form("spoofed")) == (
        Check("dkim", "fail", "example.com", "sendgrid"),
        Check("spf", "pass", "attacker.example", "sendgrid"),
    )
    assert fields(form("plain")).checks == verdicts(form("plain"))


@pytest.mark.parametrize(
    ("dkim", "expected"),
    [
        (
            b"{@esp.example : pass, @Example.com : fail}",
            [("esp.example", "pass"), ("example.com", "fail")],
        ),
        (b"{@example.com : pass}", [("example.com", "pass")]),
        (b"none", []),
        (b"", []),
    ],
)
def test_every_signature_in_the_dkim_field(dkim: bytes, expected: list[tuple[str, str]]) -> None:
    found = [(c.domain, c.result) for c in verdicts(with_dkim("plain", dkim)) if c.method == "dkim"]
    assert found == expected


async def test_dkim_pass_versus_fail_decides_whether_the_from_is_verified() -> None:
    """The same mail, signed by its From domain or not; the raw variant alike."""
    for name in ("plain", "raw"):
        body = body_of(name)
        failed = body.replace(b"{@example.com : pass}", b"{@example.com : fail}")
        for posted, verified in ((body, True), (failed, False)):
            [message] = (await connector().parse(request(posted, {}))).messages
            assert message.sender.identities[0].verified is verified
            assert message.attributes["email_auth"]["verified"] is verified


async def test_a_body_that_is_not_multipart_is_an_input_error() -> None:
    bad = WebhookRequest("POST", "/", {"content-type": "text/plain"}, b"hi", NOW)
    with pytest.raises(InputError, match="expected multipart/form-data"):
        await connector().parse(bad)


# --- the running app -------------------------------------------------------------------


@pytest.fixture
def post(client: Client) -> checks.Post:
    return sender(client)


class TestSharedMails(checks.SharedMails):
    via = "sendgrid"


async def test_latin1_fields(client: Client) -> None:
    await checks.accepted(sender(client), "latin1")
    _, [entry] = await checks.stored(client, "email:ines.garcia@example.org")
    assert entry["subject"] == "Devolución del jarrón"
    assert entry["text"].startswith("Hola,\n\nquería devolver el jarrón")


async def test_a_tampered_body_gets_401_and_nothing_is_stored(client: Client) -> None:
    body = body_of("plain")
    tampered = body.replace(b"lamp is broken", b"lamp is fine!!")
    status, answer = await post_webhook(client, "sendgrid", tampered, FORM | basic() | signed(body))
    await checks.check_refused(client, status, answer, f"invalid {SIGNATURE}")


async def test_wrong_credentials_or_key_get_401(client: Client) -> None:
    body = body_of("plain")
    other = ec.generate_private_key(ec.SECP256R1())
    for headers, words in (
        (basic(password="wrong") | signed(body), "wrong HTTP basic auth"),
        (basic() | signed(body, key=other), f"invalid {SIGNATURE}"),
        (basic(), f"missing {SIGNATURE}"),
    ):
        status, answer = await post_webhook(client, "sendgrid", body, FORM | headers)
        await checks.check_refused(client, status, answer, words)


async def test_a_body_over_the_limit_gets_413(client: Client) -> None:
    body = body_of("plain").replace(b"Thanks,", b"x" * 262144)
    status, answer = await post_webhook(client, "sendgrid", body, FORM | basic() | signed(body))
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
