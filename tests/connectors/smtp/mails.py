"""Test mail as a sender's MTA puts it on the wire (CRLF line ends), for the SMTP and IMAP
tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as WIRE
from email.utils import format_datetime


def mail(
    text: str = "My order arrived broken",
    *,
    message_id: str | None = None,
    sender: str = "Maria Lopez <maria@example.com>",
    to: str = "support@acme.example",
    subject: str = "Broken order",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 22, 9, 55, tzinfo=UTC))
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@example.com>"
    message.set_content(text)
    return message.as_bytes(policy=WIRE)
