"""Properties of the email parser: whatever bytes arrive, parse_email returns exactly one
outcome (a message that fits the canonical model, a quarantined mail, or an ignored
loop) and never raises."""

from __future__ import annotations

from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Parsed, blob_key
from connectors.email import html_to_text, strip_reply
from router.models import InboundMessage
from tests.connectors.email.helpers import parse

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.eml"))
RAWS = [path.read_bytes() for path in FIXTURES]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_one_outcome(parsed: Parsed) -> None:
    outcomes = len(parsed.messages) + len(parsed.quarantined) + len(parsed.ignored)
    assert outcomes == 1, parsed
    for message in parsed.messages:
        decoded = msgspec.json.decode(msgspec.json.encode(message), type=InboundMessage)
        assert decoded == message
        assert message.thread == message.external_id
        for attachment in message.attachments:
            assert attachment.blob is None or attachment.blob in parsed.blobs
    for key, content in parsed.blobs.items():
        assert blob_key(content) == key


@PROPERTY
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check_one_outcome(parse(raw))


HEADER_NAMES = st.sampled_from(
    [
        "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
        "Auto-Submitted", "Precedence", "Delivered-To",
    ]
)  # fmt: skip
VALUE_PIECES = st.sampled_from(
    [
        "=?utf-8?B?w6k=?=", "=?koi8-r?Q?=F7?=", "=?x-unknown?Q?a?=", "=?utf-8?Q?broken",
        "<a@b.c>", "<", ">", "@", ",", ";", '"', "(comment", "multipart/mixed",
        "multipart/report; report-type=delivery-status", 'boundary="b"', "boundary=",
        "text/html", "message/rfc822", "base64", "quoted-printable", "\udcff", "\u00e9",
        "con_01abc", "[#con_01abc]", "support+con_01abc@acme.test", "Mon, 30 Feb 2026",
        "Maria <maria@example.com>", "auto-replied", "bulk", " ", "\t",
    ]
)  # fmt: skip
HEADERS = st.lists(
    st.tuples(HEADER_NAMES, st.lists(VALUE_PIECES | st.text(max_size=8), max_size=6)),
    max_size=12,
)
BODY_PIECES = st.sampled_from(
    [
        b"--b\n", b"--b--\n", b"Content-Type: text/plain; charset=latin-1\n\n", b"\xe9\xff",
        b"Content-Type: message/rfc822\n\n", b"Content-Type: message/delivery-status\n\n",
        b"Final-Recipient: rfc822; x@y.z\nAction: failed\n\n", b"<p>hi<br>&amp;</p>",
        b"=E9=\n", b"aGVsbG8=\n", b"> quoted\n", b"On Mon, X wrote:\n", b"-- \n", b"\r\n",
    ]
)  # fmt: skip


@PROPERTY
@given(HEADERS, st.lists(BODY_PIECES | st.binary(max_size=16), max_size=30))
def test_mail_shaped_input(headers: list[tuple[str, list[str]]], body: list[bytes]) -> None:
    head = "".join(f"{name}: {''.join(value)}\n" for name, value in headers)
    raw = head.encode("utf-8", "surrogateescape") + b"\n" + b"".join(body)
    check_one_outcome(parse(raw))


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "truncate", "repeat"]),
        st.floats(min_value=0, max_value=1),
        st.binary(min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=5,
)


def mutate(raw: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for operation, where, data in mutations:
        at = int(where * len(raw))
        if operation == "delete":
            raw = raw[:at] + raw[at + len(data) * 4 :]
        elif operation == "insert":
            raw = raw[:at] + data + raw[at:]
        elif operation == "replace":
            raw = raw[:at] + data + raw[at + len(data) :]
        elif operation == "truncate":
            raw = raw[:at]
        else:
            raw = raw[:at] + raw[at : at + 200] * 2 + raw[at + 200 :]
    return raw


@PROPERTY
@given(st.sampled_from(RAWS), MUTATIONS)
def test_mutated_fixtures(raw: bytes, mutations: list[tuple[str, float, bytes]]) -> None:
    check_one_outcome(parse(mutate(raw, mutations)))


@PROPERTY
@given(st.text(max_size=2000))
def test_html_to_text_and_strip_reply_take_any_text(text: str) -> None:
    html_to_text(text)
    html_to_text(f"<blockquote>{text}</blockquote><pre>{text}</pre>")
    stripped = strip_reply(text)
    assert stripped == text.strip() or len(stripped) <= len(text)
