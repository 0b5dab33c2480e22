"""Parsing a fixture the way every email way in does, checked against the model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from connectors.base import Parsed
from connectors.email import EmailOptions, parse_email
from router.models import InboundMessage
from tests.connectors.conftest import fixture_bytes

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
OWN = ("support@acme.test",)
OPTIONS = EmailOptions(own_addresses=OWN, max_attachment_bytes=1024 * 1024)
TOKEN = "con_01jdq3x8k2m4n6p8r0t2v4x6z8"
"""The conversation token the fixtures' outgoing mail carries (tests swap in a real one)."""
MARIA = "CAJ8mX3vQk2Lp9dR7sT1uW4yZ6bN0cF5hG@mail.gmail.com"
"""plain.eml's Message-ID: the first mail of Maria's conversation."""


def parse(raw: bytes, options: EmailOptions = OPTIONS, **extra: Any) -> Parsed:
    """``raw`` as the raw endpoint parses it (``extra``: ``recipients``, ``checks``)."""
    return parse_email(raw, options=options, received_at=AT, via="raw", **extra)


def one(name: str, options: EmailOptions = OPTIONS) -> InboundMessage:
    """The one message a fixture parses into, validated against the canonical model
    (its limits are checked when a message is decoded, not when it is built)."""
    parsed = parse(fixture_bytes("email", name), options)
    assert parsed.quarantined == []
    assert parsed.ignored == []
    [message] = parsed.messages
    for attachment in message.attachments:
        assert attachment.blob is None or attachment.blob in parsed.blobs
    encoded = msgspec.json.encode(message)
    assert msgspec.json.decode(encoded, type=InboundMessage) == message
    return message
