"""``parse_email``: raw RFC 5322 bytes -> ``EmailFields`` (stdlib ``email``,
``policy.default``) -> ``email_message``.

The walk: text/plain parts that are not attachments make the text (joined in order),
text/html parts the HTML (multipart/alternative carries both; the text wins, the HTML is
kept); every other leaf is an attachment or inline image. An attached mail
(``message/rfc822``) and a bounce's status part (``message/delivery-status``) are
attachments as a whole, never walked into: their text is not the sender's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.errors import MessageDefect, NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect
from email.message import Message
from email.parser import BytesParser

import structlog

from connectors.base import Parsed
from connectors.email.auth import Check
from connectors.email.charset import clean, decode_bytes
from connectors.email.fields import EmailAttachment, EmailFields, EmailOptions
from connectors.email.headers import decoded, unfold
from connectors.email.message import email_message
from connectors.email.noise import STATUS_TYPES
from connectors.email.unreadable import quarantine

log = structlog.get_logger("connectors.email")

MAX_DEPTH = 20
"""Deeper MIME nesting than any mail client writes is not walked further."""
MAX_PARTS = 500
_BROKEN = (StartBoundaryNotFoundDefect, NoBoundaryInMultipartDefect)
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


class _Unreadable(Exception):
    """The MIME structure cannot be read (the reason is the message)."""


@dataclass
class _Parts:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[EmailAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    broken: bool = False
    count: int = 0


def parse_email(
    raw: bytes,
    *,
    options: EmailOptions,
    received_at: datetime,
    via: str,
    recipients: Sequence[str] = (),
    checks: Sequence[Check] = (),
) -> Parsed:
    """One raw email -> a ``Parsed`` with one ``InboundMessage``, or one ``Quarantined``
    (missing From, a multipart whose boundary is missing or matches no part, anything
    unreadable), or one ``ignored`` entry (from one of our own addresses). Pure; never
    raises for bad mail. See ``email_message`` for what the message holds.

    ``recipients``: the envelope's (SMTP ``RCPT TO``), which the headers may not show
    (Bcc): searched for plus-address tokens like To and Cc. ``checks``: authentication
    verdicts the way in got besides the mail (``EmailFields.checks``)."""
    headers: tuple[tuple[str, str], ...] = ()
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        headers = tuple((clean(k), unfold(clean(v))) for k, v in message.raw_items())
        fields = _fields(message, headers, raw, tuple(recipients), tuple(checks))
    except _Unreadable as exc:
        return Parsed(quarantined=[quarantine(EmailFields(headers, raw=raw), str(exc))])
    except Exception as exc:  # bad mail never fails the way in: it waits in quarantine
        log.warning("email.unreadable", error=type(exc).__name__, via=via)
        reason = f"unreadable: {type(exc).__name__}"
        return Parsed(quarantined=[quarantine(EmailFields(headers, raw=raw), reason)])
    return email_message(fields, options=options, received_at=received_at, via=via)


def _fields(
    message: Message,
    headers: tuple[tuple[str, str], ...],
    raw: bytes,
    recipients: tuple[str, ...],
    checks: tuple[Check, ...],
) -> EmailFields:
    broken = [d for d in message.defects if isinstance(d, _BROKEN)]
    if broken:
        raise _Unreadable(f"broken MIME structure: {_names(broken)}")
    parts = _Parts()
    _walk(message, parts, depth=0)
    if parts.broken and not (parts.plain or parts.html or parts.attachments):
        raise _Unreadable(f"broken MIME structure: {', '.join(parts.defects)}")
    return EmailFields(
        headers=headers,
        text="\n".join(parts.plain) if parts.plain else None,
        html="\n".join(parts.html) if parts.html else None,
        attachments=tuple(parts.attachments),
        recipients=recipients,
        raw=raw,
        defects=tuple(dict.fromkeys(parts.defects)),
        checks=checks,
    )


def _walk(part: Message, parts: _Parts, depth: int) -> None:
    parts.count += 1
    if depth > MAX_DEPTH or parts.count > MAX_PARTS:
        parts.defects.append("TooDeepOrTooManyParts")
        return
    parts.defects += [type(d).__name__ for d in part.defects]
    content_type = part.get_content_type()
    if content_type in _MESSAGE_TYPES or content_type in STATUS_TYPES:
        parts.attachments.append(_attached(part, content_type))
    elif part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _walk(sub, parts, depth + 1)
    elif part.get_content_maintype() == "multipart":  # its boundary matched nothing
        parts.broken = True
    elif _is_body(part, content_type):
        text = decode_bytes(_payload(part), part.get_content_charset())
        (parts.plain if content_type == "text/plain" else parts.html).append(text)
    else:
        parts.attachments.append(_attachment(part, content_type))


def _is_body(part: Message, content_type: str) -> bool:
    return (
        content_type in {"text/plain", "text/html"}
        and part.get_content_disposition() != "attachment"
        and not part.get_filename()
    )


def _attachment(part: Message, content_type: str) -> EmailAttachment:
    content_id = part.get("Content-ID")
    cid = unfold(clean(str(content_id))).strip("<> ") if content_id else None
    disposition = part.get_content_disposition()
    return EmailAttachment(
        name=_filename(part),
        content_type=content_type,
        content=_payload(part),
        content_id=cid or None,
        inline=disposition == "inline" or (disposition is None and bool(cid)),
    )


def _attached(part: Message, content_type: str) -> EmailAttachment:
    """An attached mail or a delivery-status body, serialized back to bytes."""
    payload = part.get_payload()
    if not isinstance(payload, list):  # not parsed into parts (an encoded rfc822 part)
        return _attachment(part, content_type)
    content = b"".join(_serialize(sub) for sub in payload if isinstance(sub, Message))
    default = "delivery-status.txt" if content_type in STATUS_TYPES else "message.eml"
    return EmailAttachment(
        name=_filename(part) or default, content_type=content_type, content=content
    )


def _serialize(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=policy.compat32)
    except Exception:  # headers the generator cannot write back: keep what is readable
        return message.as_string(policy=policy.compat32).encode("utf-8", "replace")


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    return decoded(str(name)) or None if name else None


def _names(defects: Sequence[MessageDefect]) -> str:
    return ", ".join(dict.fromkeys(type(d).__name__ for d in defects))
