"""SendGrid Inbound Parse posts (``multipart/form-data``) -> the email they carry.
https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook

- parsed (the default): ``headers`` (the raw header block), ``from``, ``to``, ``cc``,
  ``subject``, ``text``, ``html``, ``envelope`` (JSON: ``to`` list, ``from``),
  ``charsets`` (JSON: the charset each field is in), ``attachments`` (a count),
  ``attachment-info`` (JSON per file field: filename, type, content-id) and the files
  ``attachment1`` ..; ``content-ids`` (JSON: Content-ID -> file field);
- raw ("POST the raw, full MIME message"): the whole message in ``email``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from connectors.base import Parsed
from connectors.email import (
    EmailAttachment,
    EmailFields,
    EmailOptions,
    email_message,
    parse_email,
    split_headers,
)
from connectors.email_hooks import json_field, shown_inline
from connectors.forms import Form
from router.errors import InputError

VIA = "sendgrid"
MAX_ATTACHMENTS = 500
FIELD_HEADERS = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject"))
"""(form field, header) added when the ``headers`` block lacks the header."""


class AttachmentInfo(msgspec.Struct, rename="kebab"):
    filename: str = ""
    name: str = ""
    type: str = ""
    content_id: str = ""


class Envelope(msgspec.Struct):
    to: list[str] = []
    from_: str = msgspec.field(default="", name="from")


def parse(form: Form, options: EmailOptions, received_at: datetime) -> Parsed:
    raw = form.get("email")
    if raw is not None:
        return parse_email(raw.value, options=options, received_at=received_at, via=VIA)
    return email_message(fields(form), options=options, received_at=received_at, via=VIA)


def fields(form: Form) -> EmailFields:
    charsets: dict[str, str] = json_field(form.text("charsets"), dict[str, str], "charsets") or {}

    def text(name: str) -> str | None:
        return form.text(name, charsets.get(name)) or None

    html = text("html")
    return EmailFields(
        headers=_headers(form, text),
        text=text("text"),
        html=html,
        attachments=tuple(_attachments(form, html)),
        recipients=_recipients(form),
    )


def _headers(form: Form, text: Callable[[str], str | None]) -> tuple[tuple[str, str], ...]:
    block = form.get("headers")
    found = list(split_headers(block.value)) if block is not None else []
    names = {name.lower() for name, _ in found}
    extra = [
        (header, value)
        for name, header in FIELD_HEADERS
        if header.lower() not in names and (value := text(name))
    ]
    return (*extra, *found)


def _attachments(form: Form, html: str | None) -> list[EmailAttachment]:
    count = form.text("attachments") or "0"
    if not count.isdigit() or int(count) > MAX_ATTACHMENTS:
        raise InputError(f"attachments must be an integer from 0 to {MAX_ATTACHMENTS}")
    info: dict[str, AttachmentInfo] = (
        json_field(form.text("attachment-info"), dict[str, AttachmentInfo], "attachment-info") or {}
    )
    content_ids = _content_ids(form)
    found = []
    for index in range(1, int(count) + 1):
        name = f"attachment{index}"
        part = form.get(name)
        if part is None:
            raise InputError(f"attachments is {count} but {name} is missing")
        given = info.get(name, AttachmentInfo())
        content_id = given.content_id.strip().strip("<>") or content_ids.get(name)
        found.append(
            EmailAttachment(
                name=given.filename or given.name or part.filename or None,
                content_type=given.type or part.content_type or "application/octet-stream",
                content=part.value,
                content_id=content_id,
                inline=shown_inline(content_id, html),
            )
        )
    return found


def _content_ids(form: Form) -> dict[str, str]:
    """``content-ids`` turned around: ``attachment<n>`` -> its Content-ID, no ``<>``."""
    given: dict[str, str] = (
        json_field(form.text("content-ids"), dict[str, str], "content-ids") or {}
    )
    return {field: cid.strip().strip("<>") for cid, field in given.items()}


def _recipients(form: Form) -> tuple[str, ...]:
    envelope = json_field(form.text("envelope"), Envelope, "envelope")
    return tuple(envelope.to) if envelope is not None else ()
