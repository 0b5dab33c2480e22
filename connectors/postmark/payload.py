"""Postmark's inbound webhook JSON, and the email it describes as ``EmailFields``.
https://postmarkapp.com/developer/webhooks/inbound-webhook

Postmark gives From, To, Cc, Subject and Date as top-level fields and the other headers
(Message-ID, In-Reply-To, References, Auto-Submitted ...) in ``Headers``; attachment
contents are base64. ``MessageID`` is Postmark's own id, not the Message-ID header.

What Postmark found of the mail's authentication is in ``Headers`` too
(https://postmarkapp.com/developer/user-guide/inbound/parse-an-email): the SpamAssassin
tests it ran (``X-Spam-Tests``: ``DKIM_VALID_AU``, a valid signature of the author's
domain, verifies the From) and ``Received-SPF`` (recorded). A header a sender could also
have written counts only when there is exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from connectors.email import EmailAttachment, EmailFields
from connectors.email.auth import Check, authentication_results, first_word, only
from connectors.email_hooks import address, base64_content, shown_inline

VIA = "postmark"


class Mailbox(msgspec.Struct, rename="pascal"):
    email: str = ""
    name: str = ""
    mailbox_hash: str = ""


class Header(msgspec.Struct, rename="pascal"):
    name: str
    value: str


class Attachment(msgspec.Struct, rename="pascal"):
    name: str = ""
    content: str = ""
    content_type: str = "application/octet-stream"
    content_length: int | None = None
    content_id: str = msgspec.field(default="", name="ContentID")


class Inbound(msgspec.Struct, rename="pascal"):
    """One inbound email (unknown fields are allowed: Postmark adds some over time)."""

    from_: str = msgspec.field(default="", name="From")
    from_name: str = ""
    from_full: Mailbox | None = None
    to: str = ""
    to_full: list[Mailbox] = []
    cc: str = ""
    cc_full: list[Mailbox] = []
    bcc_full: list[Mailbox] = []
    original_recipient: str = ""
    reply_to: str = ""
    subject: str = ""
    date: str = ""
    message_id: str = msgspec.field(default="", name="MessageID")
    message_stream: str = ""
    mailbox_hash: str = ""
    text_body: str = ""
    html_body: str = ""
    headers: list[Header] = []
    attachments: list[Attachment] = []
    raw_email: str = ""
    record_type: str = ""
    """Absent (or ``Inbound``) on inbound mail; ``Bounce``, ``Delivery``, ``Open`` ...
    on the outbound webhooks, should one be pointed here."""


TOP_LEVEL = ("From", "To", "Cc", "Reply-To", "Subject", "Date")
"""Headers Postmark gives as fields; the same names in ``Headers`` are not repeated."""


def fields(inbound: Inbound, authserv_ids: Sequence[str] = ()) -> EmailFields:
    own = _top_level(inbound)
    given = {name.lower() for name, _ in own}
    rest = [(h.name, h.value) for h in inbound.headers if h.name.lower() not in given]
    return EmailFields(
        headers=tuple(own + rest),
        text=inbound.text_body or None,
        html=inbound.html_body or None,
        attachments=tuple(
            _attachment(a, i, inbound.html_body) for i, a in enumerate(inbound.attachments)
        ),
        recipients=_recipients(inbound),
        checks=checks(inbound, authserv_ids),
    )


def checks(inbound: Inbound, authserv_ids: Sequence[str] = ()) -> tuple[Check, ...]:
    """Postmark's verdicts in ``Headers`` (``X-Spam-Tests``, ``Received-SPF``), and the
    ``Authentication-Results`` there from one of ``authserv_ids``: the same whether the
    mail itself is then read from ``RawEmail`` or from Postmark's fields."""
    headers = [(h.name, h.value) for h in inbound.headers]
    found = authentication_results(headers, authserv_ids)
    tests = {t.strip().upper() for t in (only(headers, "X-Spam-Tests") or "").split(",")}
    if "DKIM_VALID_AU" in tests:
        found.append(Check("dkim", "pass", None, VIA, author=True))
    elif "DKIM_VALID" in tests:
        found.append(Check("dkim", "pass", None, VIA))
    elif "DKIM_SIGNED" in tests or "DKIM_INVALID" in tests:
        found.append(Check("dkim", "fail", None, VIA))
    spf = first_word(next((v for k, v in headers if k.lower() == "received-spf"), None))
    if spf:
        found.append(Check("spf", spf, None, VIA))
    return tuple(found)


def _top_level(inbound: Inbound) -> list[tuple[str, str]]:
    sender = inbound.from_full
    if sender is not None and sender.email:
        from_value = address(sender.name or inbound.from_name, sender.email)
    else:
        from_value = inbound.from_
    values = (from_value, inbound.to, inbound.cc, inbound.reply_to, inbound.subject, inbound.date)
    return [(name, value) for name, value in zip(TOP_LEVEL, values, strict=True) if value]


def _recipients(inbound: Inbound) -> tuple[str, ...]:
    """Every address the mail was delivered to, Bcc included (Postmark's own inbound
    address is often only there), and the original envelope recipient."""
    boxes = [*inbound.to_full, *inbound.cc_full, *inbound.bcc_full]
    found = [inbound.original_recipient] + [box.email for box in boxes]
    return tuple(dict.fromkeys(a for a in found if a))


def _attachment(attachment: Attachment, index: int, html: str) -> EmailAttachment:
    content = base64_content(attachment.content, f"Attachments[{index}].Content")
    content_id = attachment.content_id.strip().strip("<>") or None
    return EmailAttachment(
        name=attachment.name or None,
        content_type=attachment.content_type or "application/octet-stream",
        content=content,
        content_id=content_id,
        inline=shown_inline(content_id, html),
    )
