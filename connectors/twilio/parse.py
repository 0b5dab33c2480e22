"""Twilio Programmable Messaging requests (``application/x-www-form-urlencoded``) into
canonical messages and delivery reports. Pure: no I/O.

- An incoming message (SMS, MMS, WhatsApp, RCS) carries ``Body`` (and ``NumMedia``):
  https://www.twilio.com/docs/messaging/guides/webhook-request
- A status callback for a message the business sent carries ``MessageStatus`` (and the
  older ``SmsStatus``) and no ``Body``:
  https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
"""

from __future__ import annotations

import mimetypes
from datetime import datetime
from urllib.parse import urlsplit

from connectors.base import Parsed, Quarantined, Reply
from router.errors import InputError
from router.ledger import DeliveryReport
from router.models import Attachment, Channel, DeliveryStatus, IdentityIn, InboundMessage, Sender

SOURCE = "twilio"
FORM = "application/x-www-form-urlencoded"
MAX_MEDIA = 10
"""Twilio sends at most ten media items with one message."""

EMPTY_TWIML = Reply(
    body=b'<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="text/xml"
)
"""The answer to every accepted request: Twilio sends nothing back to the customer."""

CHANNELS: dict[str, Channel] = {"": "sms", "whatsapp": "social", "rcs": "sms"}
"""The ``From`` address prefix (``whatsapp:+34...``) and the channel it arrives on; every
one of them is the customer's phone number."""

STATUSES: dict[str, DeliveryStatus] = {
    "accepted": "accepted",
    "scheduled": "accepted",
    "queued": "accepted",
    "sending": "accepted",
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
_TYPES = mimetypes.MimeTypes()
"""Python's built-in table only (not the host's mime.types): the same names everywhere."""
EXTENSIONS = {
    "audio/ogg": ".ogg",
    "audio/amr": ".amr",
    "audio/aac": ".aac",
    "audio/mpeg": ".mp3",
    "image/webp": ".webp",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
}
"""What phones send that the built-in table lacks (voice notes, stickers, contacts)."""

INBOUND_STATUSES = frozenset({"received", "receiving"})

KEPT = {
    "AccountSid": "account_sid",
    "MessagingServiceSid": "messaging_service_sid",
    "NumSegments": "num_segments",
    "FromCountry": "from_country",
    "FromState": "from_state",
    "FromCity": "from_city",
    "MessageType": "message_type",
    "ButtonText": "button_text",
    "ButtonPayload": "button_payload",
    "OriginalRepliedMessageSid": "replied_to",
}
"""Request parameters kept as message attributes (Twilio's name -> ours), when present."""


def parse_form(params: list[tuple[str, str]], raw: bytes, received_at: datetime) -> Parsed:
    """One Twilio request: an incoming message, or a status callback."""
    form = dict(params)
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    if not sid:
        raise InputError("not a Twilio Messaging request: no MessageSid")
    if "Body" in form or "NumMedia" in form:
        return _incoming(form, sid, raw)
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not status:
        raise InputError("Twilio request has neither Body nor MessageStatus")
    return _status(form, sid, status.lower(), received_at)


def _incoming(form: dict[str, str], sid: str, raw: bytes) -> Parsed:
    prefix, _, address = form.get("From", "").rpartition(":")
    channel = CHANNELS.get(prefix)
    if not address:
        raise InputError("Twilio message has no From")
    if channel is None:
        reason = f"Twilio channel {prefix[:32]!r} is not supported (only SMS, WhatsApp, RCS)"
        summary = {"message_sid": sid, "channel": prefix}
        held = Quarantined(reason=reason, raw=raw, content_type=FORM, summary=summary)
        return Parsed(quarantined=[held], reply=EMPTY_TWIML)
    message = InboundMessage(
        channel=channel,
        source=SOURCE,
        external_id=sid,
        sender=Sender(
            name=form.get("ProfileName") or None,
            identities=[IdentityIn(kind="phone", value=address, verified=True)],
        ),
        text=_text(form),
        thread=form.get("To") or None,
        inbox=_inbox(form.get("To", "")),
        attachments=_media(form),
        attributes=_attributes(form, prefix),
    )
    return Parsed(messages=[message], reply=EMPTY_TWIML)


def _inbox(to: str) -> str | None:
    """``twilio:+14155550199``: the business number, with any channel prefix
    (``whatsapp:``) stripped, so one number is one inbox."""
    number = to.rpartition(":")[2]
    return f"{SOURCE}:{number}" if number else None


def _text(form: dict[str, str]) -> str:
    """The body; a shared WhatsApp location without one reads as its place and point."""
    body = form.get("Body", "")
    if body or "Latitude" not in form:
        return body
    place = ", ".join(p for p in (form.get("Label"), form.get("Address")) if p)
    point = f"{form['Latitude']}, {form.get('Longitude', '')}"
    return f"Location: {place} ({point})" if place else f"Location: {point}"


def _media(form: dict[str, str]) -> list[Attachment]:
    count = form.get("NumMedia", "0") or "0"
    if not count.isdigit() or int(count) > MAX_MEDIA:
        raise InputError(f"NumMedia must be 0-{MAX_MEDIA}")
    found = []
    for index in range(int(count)):
        url = form.get(f"MediaUrl{index}")
        if not url:
            raise InputError(f"NumMedia is {count} but MediaUrl{index} is missing")
        content_type = form.get(f"MediaContentType{index}") or "application/octet-stream"
        found.append(_attachment(url, content_type))
    return found


def _attachment(url: str, content_type: str) -> Attachment:
    """Twilio serves media at ``.../Messages/MM.../Media/ME...``: the last segment is the
    media SID, which also names the file (no file name is given)."""
    media_sid = urlsplit(url).path.rstrip("/").rpartition("/")[2] or "media"
    bare = content_type.partition(";")[0].strip().lower()
    extension = EXTENSIONS.get(bare) or _TYPES.guess_extension(bare) or ""
    return Attachment(
        name=media_sid + extension,
        content_type=content_type,
        url=url,
        provider_id=media_sid,
    )


def _attributes(form: dict[str, str], prefix: str) -> dict[str, object]:
    kept: dict[str, object] = {new: form[old] for old, new in KEPT.items() if form.get(old)}
    kept["to"] = form.get("To", "")
    kept["via"] = prefix or "sms"
    if "Latitude" in form:
        kept["location"] = {
            k.lower(): form[k] for k in ("Latitude", "Longitude", "Label", "Address") if k in form
        }
    return kept


def _status(form: dict[str, str], sid: str, status: str, received_at: datetime) -> Parsed:
    if status in INBOUND_STATUSES:
        return Parsed(ignored=[f"status:{status}"], reply=EMPTY_TWIML)
    mapped = STATUSES.get(status)
    if mapped is None:
        return Parsed(ignored=[f"status:{status[:32]}"], reply=EMPTY_TWIML)
    report = DeliveryReport(
        source=SOURCE,
        external_id=sid,
        status=mapped,
        at=received_at,
        recipient=form.get("To") or None,
        error=_error(form, status),
    )
    return Parsed(deliveries=[report], reply=EMPTY_TWIML)


def _error(form: dict[str, str], status: str) -> str | None:
    """``30003 Unreachable destination handset`` for a failure; ``canceled`` says so."""
    words = [w for w in (form.get("ErrorCode"), form.get("ErrorMessage")) if w]
    if status == "canceled":
        words = ["canceled", *words]
    return " ".join(words) or None
