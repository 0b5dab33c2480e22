"""``email_message``: one email's fields -> the canonical message (or a quarantine or
ignore entry), the same for every way in (raw, SMTP, IMAP, Postmark, Mailgun, SendGrid)."""

from __future__ import annotations

from datetime import datetime

from connectors.base import Parsed
from connectors.email.fields import EmailFields, EmailOptions


def email_message(
    fields: EmailFields, *, options: EmailOptions, received_at: datetime, via: str
) -> Parsed:
    """One email -> a ``Parsed`` with exactly one entry: one ``InboundMessage``, one
    ``Quarantined`` (no usable From), or one ``ignored`` (``own_address``: our own mail
    come back, a loop). Never raises for bad mail.

    The message: channel and source ``email``; ``external_id`` the Message-ID without
    ``<>`` (none: ``sha256:<hex>`` of the raw bytes, or of the fields); sender the From
    display name and a verified ``email`` identity; ``thread`` its own Message-ID (a
    reply finds its thread through ``references``); ``references`` In-Reply-To then
    References newest first; ``conversation_hint`` the ``con_<id>`` token of a reference,
    a plus-address or the subject; ``kind`` ``auto_reply`` or ``bounce`` for noise;
    ``text`` the new content (quotes and signatures stripped, the full text in
    ``attributes``); attachments with their contents in ``Parsed.blobs``.
    ``via`` (``raw``, ``smtp``, ``imap``, ``postmark`` ...) is kept in ``attributes``.
    """
    raise NotImplementedError
