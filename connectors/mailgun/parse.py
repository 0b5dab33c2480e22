"""Mailgun route POSTs (``forward()`` and ``store(notify=...)``) -> the email they carry.
https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http
https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/storing-and-recieveing-messages

- parsed (the default): ``message-headers`` (a JSON list of [name, value], in order),
  ``body-plain``, ``body-html``, ``recipient`` (the envelope), attachments as files
  ``attachment-1`` .. ``attachment-<attachment-count>`` and ``content-id-map`` (a JSON
  object: ``<content-id>`` -> ``attachment-<n>``); a stored message's notification lists
  its attachments as ``attachments`` (JSON: url, content-type, name, size) instead;
- raw (a route URL ending in ``mime``): the whole message in ``body-mime``.

Mailgun encodes every parsed field as UTF-8.

Mailgun posts what it found of the mail's authentication as header fields (both
variants): ``X-Mailgun-Dkim-Check-Result`` (``Pass`` / ``Fail``, no domain) and
``X-Mailgun-Spf``. A pass verifies the From only when the mail's ``DKIM-Signature``
headers all name one signing domain (so the pass is that domain's) aligned with the
From's; a verdict header counts only when there is exactly one (a sender could have
written one besides Mailgun's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from connectors.base import Parsed
from connectors.email import EmailAttachment, EmailFields, EmailOptions, email_message, parse_email
from connectors.email.auth import Check, dkim_domains, first_word, only
from connectors.email_hooks import (
    content_ids,
    file_attachment,
    json_field,
    numbered_files,
    with_attributes,
)
from connectors.forms import Form

VIA = "mailgun"
FIELD_HEADERS = (
    ("from", "From"),
    ("To", "To"),
    ("Cc", "Cc"),
    ("subject", "Subject"),
    ("Date", "Date"),
    ("Message-Id", "Message-Id"),
    ("In-Reply-To", "In-Reply-To"),
    ("References", "References"),
    ("Auto-Submitted", "Auto-Submitted"),
    ("Precedence", "Precedence"),
    ("X-Autoreply", "X-Autoreply"),
    ("Content-Type", "Content-Type"),
)
"""(form field, header) read when a POST has no ``message-headers``: Mailgun also posts
the sender, subject and each header as fields of their own."""
_VERDICTS = frozenset({"x-mailgun-dkim-check-result", "x-mailgun-spf"})


class StoredAttachment(msgspec.Struct, rename="kebab"):
    """One attachment of a stored message, served by Mailgun's API (its key needed)."""

    url: str = ""
    content_type: str = "application/octet-stream"
    name: str = ""
    size: int | None = None


def parse(form: Form, options: EmailOptions, received_at: datetime) -> Parsed:
    mime = form.get("body-mime")
    if mime is not None:
        parsed = parse_email(
            mime.value, options=options, received_at=received_at, via=VIA, checks=checks(form)
        )
    else:
        parsed = email_message(fields(form), options=options, received_at=received_at, via=VIA)
    return with_attributes(parsed, {"mailgun_message_url": form.text("message-url")})


def checks(form: Form) -> tuple[Check, ...]:
    """Mailgun's verdicts: its DKIM check (for the one signing domain, when the
    signatures name only one) and its SPF check."""
    headers = _verdict_headers(form)
    found = []
    dkim = first_word(only(headers, "X-Mailgun-Dkim-Check-Result"))
    if dkim:
        signers = list(dict.fromkeys(dkim_domains(headers)))
        found.append(Check("dkim", dkim, signers[0] if len(signers) == 1 else None, VIA))
    spf = first_word(only(headers, "X-Mailgun-Spf"))
    if spf:
        found.append(Check("spf", spf, None, VIA))
    return tuple(found)


def _verdict_headers(form: Form) -> Sequence[tuple[str, str]]:
    """``message-headers`` when it holds Mailgun's verdicts, else the form fields named
    like a header (the raw variant posts no ``message-headers``)."""
    given: list[tuple[str, str]] = (
        json_field(form.text("message-headers"), list[tuple[str, str]], "message-headers") or []
    )
    if any(name.lower() in _VERDICTS for name, _ in given):
        return given
    return [(part.name, part.text()) for part in form.parts if part.name[:1].isupper()]


def fields(form: Form) -> EmailFields:
    html = form.text("body-html")
    return EmailFields(
        headers=headers(form),
        text=form.text("body-plain") or None,
        html=html or None,
        attachments=(*_files(form, html), *_stored(form)),
        recipients=_recipients(form.text("recipient")),
        checks=checks(form),
    )


def headers(form: Form) -> tuple[tuple[str, str], ...]:
    """``message-headers`` (From and Subject added from their fields when missing), or
    the header fields when it is absent."""
    given: list[tuple[str, str]] = json_field(
        form.text("message-headers"), list[tuple[str, str]], "message-headers"
    ) or [(header, value) for name, header in FIELD_HEADERS if (value := form.text(name))]
    names = {name.lower() for name, _ in given}
    for name, header in (("from", "From"), ("subject", "Subject")):
        value = form.text(name)
        if value and header.lower() not in names:
            given.insert(0, (header, value))
    return tuple(given)


def _files(form: Form, html: str | None) -> list[EmailAttachment]:
    files = numbered_files(form, "attachment-count", "attachment-")
    ids = content_ids(form, "content-id-map")
    return [file_attachment(part, html, ids.get(name)) for name, part in files]


def _stored(form: Form) -> list[EmailAttachment]:
    listed: list[StoredAttachment] = (
        json_field(form.text("attachments"), list[StoredAttachment], "attachments") or []
    )
    return [
        EmailAttachment(
            name=item.name or None,
            content_type=item.content_type or "application/octet-stream",
            size=item.size,
            url=item.url or None,
        )
        for item in listed
    ]


def _recipients(value: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (value or "").split(",") if a.strip())


def event_name(body: bytes) -> str:
    """The ``event-data.event`` of an event webhook (``delivered``, ``failed`` ...)."""
    try:
        found: Any = msgspec.json.decode(body)
        event = found["event-data"]["event"]
    except (msgspec.DecodeError, KeyError, TypeError):
        return "unknown"
    return str(event)[:32]
