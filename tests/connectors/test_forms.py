"""connectors.forms: multipart/form-data and urlencoded bodies, strictly, as bytes; and
what a hostile form costs before any signature is checked (here and through the
webhooks that parse forms before verifying: Mailgun, Twilio)."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from connectors import forms
from connectors.base import WebhookRequest
from connectors.forms import MAX_PARTS, Form, FormPart, decode, parse_form, parse_multipart
from router.errors import InputError
from tests.connectors.conftest import Client
from tests.connectors.nothing_stored import assert_nothing_stored

T = TypeVar("T")

PNG = bytes(range(256)) + b"\r\n--not-the-boundary\r\n\x00\xff"
"""Every byte value, a CRLF and a fake delimiter line: a file must come back unchanged."""


def multipart(boundary: str, *parts: bytes, epilogue: bytes = b"") -> bytes:
    body = b"preamble, ignored\r\n"
    for part in parts:
        body += b"--" + boundary.encode() + b"\r\n" + part + b"\r\n"
    return body + b"--" + boundary.encode() + b"--\r\n" + epilogue


def field(name: str, value: bytes, *headers: str) -> bytes:
    head = [f'Content-Disposition: form-data; name="{name}"', *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + value


def test_fields_and_binary_files_come_back_byte_for_byte() -> None:
    body = multipart(
        "XyZ",
        field("subject", b"Order A-1001"),
        b'Content-Disposition: form-data; name="attachment-1"; filename="photo.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG,
        field("empty", b""),
        epilogue=b"epilogue, ignored",
    )
    form = parse_form(body, "multipart/form-data; boundary=XyZ")
    assert [p.name for p in form.parts] == ["subject", "attachment-1", "empty"]
    assert form.text("subject") == "Order A-1001"
    photo = form.get("attachment-1")
    assert photo == FormPart("attachment-1", PNG, filename="photo.png", content_type="image/png")
    assert form.text("empty") == ""
    assert "empty" in form
    assert form.get("missing") is None
    assert form.text("missing") is None


def test_quoted_boundary_and_repeated_names() -> None:
    body = multipart("a b:c", field("to", b"one"), field("to", b"two"))
    form = parse_form(body, 'multipart/form-data; boundary="a b:c"')
    assert [p.text() for p in form.all("to")] == ["one", "two"]
    assert form.text("to") == "one"


def test_fields_in_other_charsets() -> None:
    latin = "Señora Müller: ¿dónde está mi pedido?".encode("iso-8859-1")
    body = multipart(
        "b",
        field("text", latin),
        field(
            "subject", "Pedido roto".encode("utf-16"), "Content-Type: text/plain; charset=utf-16"
        ),
        field("html", b"caf\xe9"),
    )
    form = parse_form(body, "multipart/form-data; boundary=b")
    assert form.text("text", "iso-8859-1") == "Señora Müller: ¿dónde está mi pedido?"
    assert form.text("subject") == "Pedido roto"
    assert form.text("html") == "café"
    assert form.text("html", "no-such-charset") == "café"
    assert form.text("text", "utf-8") == latin.decode("utf-8", errors="replace")


def test_utf8_and_rfc2231_file_names() -> None:
    body = multipart(
        "b",
        'Content-Disposition: form-data; name="a"; filename="factura ñ.pdf"\r\n\r\nx'.encode(),
        b"Content-Disposition: form-data; name=\"b\"; filename*=UTF-8''%E2%82%AC.txt\r\n\r\ny",
    )
    form = parse_form(body, "multipart/form-data; boundary=b")
    assert [p.filename for p in form.parts] == ["factura ñ.pdf", "€.txt"]


def test_folded_part_headers() -> None:
    body = multipart("b", b'Content-Disposition: form-data;\r\n name="folded"\r\n\r\nvalue')
    assert parse_form(body, "multipart/form-data; boundary=b").text("folded") == "value"


def test_body_may_start_with_the_delimiter() -> None:
    body = b"--b\r\n" + field("x", b"1") + b"\r\n--b--"
    assert parse_multipart(body, "b").text("x") == "1"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"x=1", "multipart/form-data", "without a boundary"),
        (b"x=1", "multipart/form-data; boundary=", "without a boundary"),
        (b"x=1", f"multipart/form-data; boundary={'b' * 71}", "longer than 70"),
        (b"no delimiter here", "multipart/form-data; boundary=b", "does not contain its boundary"),
        (b"--b\r\n" + field("x", b"1"), "multipart/form-data; boundary=b", "not closed"),
        (
            b"--b junk\r\n" + field("x", b"1") + b"\r\n--b--",
            "multipart/form-data; boundary=b",
            "delimiter line",
        ),
        (
            b"--b\r\nContent-Disposition: form-data; name=x\r\n--b--",
            "multipart/form-data; boundary=b",
            "no blank line",
        ),
        (
            b"--b\r\n" + b"Content-Type: text/plain\r\n\r\n1\r\n--b--",
            "multipart/form-data; boundary=b",
            "not Content-Disposition: form-data",
        ),
        (
            b"--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--",
            "multipart/form-data; boundary=b",
            "no name",
        ),
        (
            b"--b\r\nbroken header\r\n\r\n1\r\n--b--",
            "multipart/form-data; boundary=b",
            "malformed header",
        ),
        (b"{}", "application/json", "expected multipart/form-data"),
        (b"x=1", None, "no Content-Type"),
        ("x=é".encode(), "application/x-www-form-urlencoded", "outside ASCII"),
    ],
)
def test_malformed_bodies_are_input_errors(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        parse_form(body, content_type)


@pytest.fixture
def parts_built(monkeypatch: pytest.MonkeyPatch) -> list[FormPart]:
    """Every ``FormPart`` the parsers build while the test runs (the real class, counted)."""
    built: list[FormPart] = []
    real = forms.FormPart

    def counted(*args: Any, **kwargs: Any) -> FormPart:
        part = real(*args, **kwargs)
        built.append(part)
        return part

    monkeypatch.setattr(forms, "FormPart", counted)
    return built


def test_too_many_parts_are_refused_before_the_next_is_built(parts_built: list[FormPart]) -> None:
    body = multipart("b", *(field(f"f{i}", b"") for i in range(MAX_PARTS + 50)))
    with pytest.raises(InputError, match="more than 1000 parts"):
        parse_form(body, "multipart/form-data; boundary=b")
    assert len(parts_built) == MAX_PARTS


def test_as_many_parts_as_allowed_are_read() -> None:
    body = b"&".join(b"f%d=%d" % (i, i) for i in range(MAX_PARTS))
    assert len(parse_form(body, "application/x-www-form-urlencoded").parts) == MAX_PARTS
    assert len(request(body).form()) == MAX_PARTS
    assert request(body + b"&one=more").form() == []


HOSTILE = b"a&" * 2_000_000 + b"x" * (5 * 1024 * 1024 - 4_000_000)
"""5 MiB of urlencoded form with two million fields, from anyone: no signature yet."""


def test_a_hostile_urlencoded_form_is_refused_before_its_fields_are_built(
    parts_built: list[FormPart],
) -> None:
    with pytest.raises(InputError, match="more than 1000 parts"):
        parse_form(HOSTILE, "application/x-www-form-urlencoded")
    assert len(parts_built) == MAX_PARTS


def request(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "https://x/", {}, body, datetime(2026, 11, 22, tzinfo=UTC))


def test_a_hostile_form_is_no_pairs_and_costs_no_more_than_its_text() -> None:
    """``WebhookRequest.form`` (Twilio's parser) counts the fields before building any:
    two million pairs would take hundreds of MB; the text alone is one copy of the body."""
    pairs, peak = measured(lambda: request(HOSTILE).form())
    assert pairs == []
    assert peak < 2 * len(HOSTILE)


def measured(work: Callable[[], T]) -> tuple[T, int]:
    """What ``work`` returns, and the most memory it held at once (bytes)."""
    tracemalloc.start()
    try:
        return work(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def measured_async(work: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        return await work(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- through the webhooks, unauthenticated --------------------------------------------

MAILGUN = '[connectors.mailgun]\nsigning_key = "mailgun-test-key"\n'
TWILIO = '[connectors.twilio]\nauth_token = "twilio-test-token"\n'
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def policy() -> str:
    return MAILGUN + TWILIO


async def post(client: Client, connector: str, body: bytes, headers: dict[str, str]) -> Any:
    """POST a large body as aiohttp wants one (a stream, sized); the status and error."""
    url = f"/v1/connectors/{connector}/webhook"
    response = await client.post(url, data=io.BytesIO(body), headers=headers)
    return response.status, (await response.json())["error"]


async def test_mailgun_refuses_a_hostile_form_before_building_it(
    client: Client, parts_built: list[FormPart]
) -> None:
    status, error = await post(client, "mailgun", HOSTILE, URLENCODED)
    assert (status, error["code"]) == (401, "unauthorized")
    assert "more than 1000 parts" in error["message"]
    assert len(parts_built) <= MAX_PARTS
    await assert_nothing_stored(client)


async def test_twilio_refuses_anything_over_64_kib_unread(client: Client) -> None:
    """Twilio's posts are a few KB: its own limit is far below the daemon's 1 MiB."""
    for body in (HOSTILE, b"Body=" + b"x" * (64 * 1024)):
        headers = URLENCODED | {"X-Twilio-Signature": "c2lnbmF0dXJl"}
        status, error = await post(client, "twilio", body, headers)
        assert (status, error["code"]) == (413, "payload_too_large"), error
    await assert_nothing_stored(client)


@pytest.mark.parametrize("policy", [TWILIO + "max_body_bytes = 8388608\n"], ids=["8MiB"])
async def test_twilio_refuses_a_hostile_form_it_was_allowed_to_read(client: Client) -> None:
    headers = URLENCODED | {"X-Twilio-Signature": "c2lnbmF0dXJl"}
    (status, error), peak = await measured_async(lambda: post(client, "twilio", HOSTILE, headers))
    assert (status, error["code"]) == (401, "unauthorized")
    assert peak < 5 * len(HOSTILE)  # copies of the body (client, server, text); no pairs
    await assert_nothing_stored(client)


def test_urlencoded_values_are_percent_decoded_bytes() -> None:
    body = b"from=Maria+L%C3%B3pez+%3Cmaria%40example.com%3E&flag&empty=&latin=caf%E9&a=1&a=2"
    form = parse_form(body, "application/x-www-form-urlencoded; charset=utf-8")
    assert form.text("from") == "Maria López <maria@example.com>"
    assert form.get("flag") == FormPart("flag", b"")
    assert form.text("empty") == ""
    assert form.get("latin") == FormPart("latin", b"caf\xe9")
    assert form.text("latin", "iso-8859-1") == "café"
    assert [p.value for p in form.all("a")] == [b"1", b"2"]


def test_an_empty_form() -> None:
    assert parse_form(b"", "application/x-www-form-urlencoded") == Form()
    assert parse_form(b"--b--\r\n", "multipart/form-data; boundary=b") == Form()


def test_decode_falls_back_to_latin_1_for_bytes_that_are_not_utf8() -> None:
    assert decode("ñ".encode(), None) == "ñ"
    assert decode(b"\xf1", None) == "ñ"
    assert decode(b"\xf1", "windows-1252") == "ñ"
