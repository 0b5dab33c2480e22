"""SendGrid Inbound Parse posts (``multipart/form-data``) -> the email they carry.
https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook

- parsed (the default): ``headers`` (the raw header block), ``from``, ``to``, ``cc``,
  ``subject``, ``text``, ``html``, ``envelope`` (JSON: ``to`` list, ``from``),
  ``charsets`` (JSON: the charset each field is in), ``attachments`` (a count),
  ``attachment-info`` (JSON per file field: filename, type, content-id) and the files
  ``attachment1`` ..; ``content-ids`` (JSON: Content-ID -> file field);
- raw ("POST the raw, full MIME message"): the whole message in ``email``.

Either way SendGrid posts what it found of the mail's authentication: ``dkim`` (each
signature's domain and result, ``{@example.com : pass, @esp.example : fail}``, or
``none``) and ``SPF`` (``pass``, ``softfail`` ...), read as ``Check``s: an aligned DKIM
pass verifies the From (``connectors.email.auth``).
"""

from __future__ import annotations

import re
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
from connectors.email.auth import MAX_HEADERS, Check, clean_domain, first_word
from connectors.email_hooks import content_ids, file_attachment, json_field, numbered_files
from connectors.forms import Form, FormPart

VIA = "sendgrid"
FIELD_HEADERS = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject"))
"""(form field, header) added when the ``headers`` block lacks the header."""
_SIGNATURE = re.compile(r"@?([^\s:@{},]+)\s*:\s*([A-Za-z]+)")


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
        return parse_email(
            raw.value,
            options=options,
            received_at=received_at,
            via=VIA,
            recipients=_recipients(form),
            checks=checks(form),
        )
    return email_message(fields(form), options=options, received_at=received_at, via=VIA)


def checks(form: Form) -> tuple[Check, ...]:
    """SendGrid's verdicts: one DKIM check per signature in ``dkim``, and ``SPF`` for
    the envelope sender's domain."""
    found = [
        Check("dkim", result.lower(), clean_domain(domain), VIA)
        for domain, result in _SIGNATURE.findall(form.text("dkim") or "")[:MAX_HEADERS]
    ]
    spf = first_word(form.text("SPF"))
    if spf:
        envelope = json_field(form.text("envelope"), Envelope, "envelope")
        sender = clean_domain(envelope.from_) if envelope and envelope.from_ else None
        found.append(Check("spf", spf, sender or None, VIA))
    return tuple(found)


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
        checks=checks(form),
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
    files = numbered_files(form, "attachments", "attachment")
    info: dict[str, AttachmentInfo] = (
        json_field(form.text("attachment-info"), dict[str, AttachmentInfo], "attachment-info") or {}
    )
    ids = content_ids(form, "content-ids")
    return [
        _file(part, html, info.get(name, AttachmentInfo()), ids.get(name)) for name, part in files
    ]


def _file(
    part: FormPart, html: str | None, given: AttachmentInfo, mapped: str | None
) -> EmailAttachment:
    """A file with what ``attachment-info`` says of it (its Content-ID first, then the
    ``content-ids`` map's)."""
    content_id = given.content_id.strip().strip("<>") or mapped
    name = given.filename or given.name
    return file_attachment(part, html, content_id, name=name, content_type=given.type)


def _recipients(form: Form) -> tuple[str, ...]:
    envelope = json_field(form.text("envelope"), Envelope, "envelope")
    return tuple(envelope.to) if envelope is not None else ()
