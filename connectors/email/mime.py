"""``parse_email``: raw RFC 5322 bytes -> ``EmailFields`` (stdlib ``email``,
``policy.default``) -> ``email_message``."""

from __future__ import annotations

from datetime import datetime

from connectors.base import Parsed
from connectors.email.fields import EmailOptions


def parse_email(raw: bytes, *, options: EmailOptions, received_at: datetime, via: str) -> Parsed:
    """One raw email -> a ``Parsed`` with one ``InboundMessage``, or one ``Quarantined``
    (missing From, a multipart whose boundary is missing or matches no part, anything
    unreadable), or one ``ignored`` entry (from one of our own addresses). Pure; never
    raises for bad mail. See ``email_message`` for what the message holds."""
    raise NotImplementedError


def split_headers(block: str | bytes) -> tuple[tuple[str, str], ...]:
    """A raw header block (SendGrid's ``headers`` field) -> (name, value) pairs, unfolded."""
    raise NotImplementedError
