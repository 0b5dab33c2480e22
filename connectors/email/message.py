"""``email_message``: one email's fields -> the canonical message (or a quarantine or
ignore entry), the same for every way in (raw, SMTP, IMAP, Postmark, Mailgun, SendGrid).

Text kept: ``text`` is the new content (``strip_reply``), at most ``TEXT_CHARS``; when
the full text differs, ``attributes["full_text"]`` holds it (at most
``FULL_TEXT_CHARS``), and when either was cut, ``attributes["full_text_blob"]`` names the
whole text kept as a file (UTF-8, ``GET /v1/attachments/{blob}``). The HTML body, when
there is one, is kept as a file too (``attributes["html_blob"]``).

The sender: the From display name and address. The address is a *verified* ``email``
identity when ``options.trust_from`` is ``always``, or when the mail carries a passing
DMARC or aligned DKIM verdict for its domain (``connectors.email.auth``); else an
unverified one (a suggestion, never a merge: a reply with valid references still joins
its thread's conversation). ``attributes["email_auth"]`` records the verdict.

``inbox``: ``email:<address>``, the first To / Cc / envelope / Delivered-To recipient that
is one of ``options.own_addresses`` (plus-tag removed), else the first To (or envelope)
recipient.

A bounce's sender: the delivery system (``MAILER-DAEMON``) is nobody to route to or to
merge on, so the sender is the recipient that could not be reached, as an *unverified*
email (a suggestion, never a merge), and the bounce joins the bounced message's
conversation through its references.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import structlog

from connectors.base import Parsed, blob_key
from connectors.email.attachments import attachments
from connectors.email.auth import MAX_RECORDED, authentication_results, verdict
from connectors.email.fields import EmailFields, EmailOptions
from connectors.email.headers import addresses, decoded
from connectors.email.html_text import html_to_text
from connectors.email.noise import auto_reply_reason, bounce_of
from connectors.email.quotes import strip_reply
from connectors.email.senders import (
    is_own,
    no_sender_reason,
    normalized,
    sender_of,
    unverified,
    without_tag,
)
from connectors.email.threads import (
    MAX_REFERENCES,
    conversation_hint,
    message_ids,
    references,
    unique,
)
from connectors.email.unreadable import content_id, quarantine
from router.models import Attachment, IdentityIn, InboundMessage, MessageKind, Sender

log = structlog.get_logger("connectors.email")

TEXT_CHARS = 64 * 1024
FULL_TEXT_CHARS = 16 * 1024
NAME_CHARS = 512
"""The model's limit on a sender name, a subject, an attachment name."""
MAX_LISTED = 50
"""At most this many To / Cc addresses are kept in ``attributes``."""
INBOX_CHARS = 512
_FUTURE_SLACK = timedelta(days=1)


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
    ``via`` (``raw``, ``smtp``, ``imap``, ``postmark`` ...) is kept in ``attributes``;
    ``inbox`` names the own address it was sent to (see the module docstring).
    """
    try:
        return _Build(fields, options, received_at, via).parsed()
    except Exception as exc:  # bad mail never fails the way in: it waits in quarantine
        log.warning("email.unreadable", error=type(exc).__name__, via=via)
        return Parsed(quarantined=[quarantine(fields, f"unreadable: {type(exc).__name__}")])


class _Build:
    """One pass over one mail's fields; ``parsed()`` is the result."""

    def __init__(
        self, fields: EmailFields, options: EmailOptions, received_at: datetime, via: str
    ) -> None:
        self.fields = fields
        self.options = options
        self.received_at = received_at
        self.via = via
        self.blobs: dict[str, bytes] = {}
        self.attributes: dict[str, Any] = {"via": via}

    def parsed(self) -> Parsed:
        fields = self.fields
        sender = sender_of(fields)
        if sender is None:
            return Parsed(quarantined=[quarantine(fields, no_sender_reason(fields))])
        name, address = sender
        if is_own(address, self.options.own_addresses):
            return Parsed(ignored=["own_address"])
        subject = _clamp(decoded(fields.header("Subject")))
        external_id = next(iter(message_ids(fields.header("Message-ID"))), None)
        external_id = external_id or content_id(fields)
        refs = references(fields)
        kind: MessageKind = "message"
        bounce = bounce_of(fields, address, subject)
        if bounce is not None:  # the delivery system is nobody: the recipient it missed
            kind, name = "bounce", None
            lost = (bounce.final_recipient, *bounce.original_to)
            identities = unverified(lost, self.options.own_addresses)
            refs = unique([*bounce.references, *refs])[:MAX_REFERENCES]
            self.attributes |= {"flagged": True, "bounce": bounce.attributes()}
        else:
            verified = self._verified(address)
            identities = [IdentityIn(kind="email", value=address, verified=verified)]
            identities += self._reply_to(address)
            reason = auto_reply_reason(fields, subject)
            if reason is not None:
                kind = "auto_reply"
                self.attributes["auto_reply"] = reason
        recipients = self._recipients()
        hint = conversation_hint(refs, subject, recipients, self.options.own_addresses)
        message = InboundMessage(
            channel="email",
            source="email",
            external_id=external_id,
            sender=Sender(name=_clamp(name), identities=identities),
            text=self._text(),
            thread=external_id,
            subject=subject,
            sent_at=self._sent_at(),
            attachments=self._attachments(),
            attributes=self.attributes,
            kind=kind,
            references=[ref for ref in refs if ref != external_id],
            conversation_hint=hint,
            inbox=self._inbox(recipients),
        )
        if fields.html:
            self.attributes["html_blob"] = self._keep(fields.html.encode())
        if fields.defects:
            self.attributes["mime_defects"] = list(fields.defects)
        return Parsed(messages=[message], blobs=self.blobs)

    def _verified(self, address: str) -> bool:
        """Whether the From ``address`` is proved (``options.trust_from``); the verdict
        goes to ``attributes["email_auth"]``."""
        options = self.options
        found = [
            *self.fields.checks,
            *authentication_results(self.fields.headers, options.authserv_ids),
        ]
        checks = list(dict.fromkeys(found))
        judged = verdict(address.rpartition("@")[2], checks)
        verified = options.trust_from == "always" or judged.verified
        self.attributes["email_auth"] = {
            "trust_from": options.trust_from,
            "verified": verified,
            "authenticated": judged.verified,
            "reason": judged.reason,
            "checks": [check.as_json() for check in checks[:MAX_RECORDED]],
        }
        return verified

    def _reply_to(self, sender: str) -> list[IdentityIn]:
        """A Reply-To other than the sender (a web form's mail, a colleague answering
        for the customer): an unverified email, kept in ``attributes["reply_to"]``."""
        skip = (sender, *self.options.own_addresses)
        found = unverified(addresses(self.fields.header_all("Reply-To")), skip)
        if found:
            self.attributes["reply_to"] = found[0].value
        return found

    def _text(self) -> str:
        fields = self.fields
        full = fields.text if fields.text and fields.text.strip() else None
        if full is None:
            full = html_to_text(fields.html) if fields.html else ""
        full = full.replace("\r\n", "\n").strip("\n")
        new = strip_reply(full)
        if new != full:
            self.attributes["full_text"] = full[:FULL_TEXT_CHARS]
        if len(full) > FULL_TEXT_CHARS or len(new) > TEXT_CHARS:
            self.attributes["full_text_blob"] = self._keep(full.encode())
        return new[:TEXT_CHARS]

    def _sent_at(self) -> datetime | None:
        value = self.fields.header("Date")
        try:
            sent_at = parsedate_to_datetime(value) if value else None
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if sent_at is None:
            return None
        if sent_at.tzinfo is None:  # "-0000": UTC, the sender's zone unknown
            sent_at = sent_at.replace(tzinfo=UTC)
        sent_at = sent_at.astimezone(UTC)
        return None if sent_at > self.received_at + _FUTURE_SLACK else sent_at

    def _recipients(self) -> list[str]:
        """To, Cc, the envelope's and Delivered-To recipients, in that order (To and Cc
        kept in ``attributes``)."""
        fields = self.fields
        to = addresses(fields.header_all("To"))
        cc = addresses(fields.header_all("Cc"))
        for key, listed in (("to", to), ("cc", cc)):
            if listed:
                self.attributes[key] = listed[:MAX_LISTED]
        delivered = addresses(
            [*fields.header_all("Delivered-To"), *fields.header_all("X-Original-To")]
        )
        return unique([*to, *cc, *fields.recipients, *delivered])

    def _inbox(self, recipients: list[str]) -> str | None:
        """``email:`` and the first of ``recipients`` that is an own address, else the
        first To (or envelope) recipient; plus-tags removed."""
        bases = [base for r in recipients if (base := _base(r)) is not None]
        own = {address.strip().lower() for address in self.options.own_addresses}
        found = next((b for b in bases if b in own), None)
        if found is None:
            to = addresses(self.fields.header_all("To"))
            first = next(iter([*to, *self.fields.recipients]), None)
            found = _base(first) if first else None
        inbox = f"email:{found}" if found else None
        return inbox if inbox and len(inbox) <= INBOX_CHARS else None

    def _attachments(self) -> list[Attachment]:
        found, noted = attachments(self.fields.attachments, self.options, self._keep)
        self.attributes |= noted
        return found

    def _keep(self, content: bytes) -> str:
        key = blob_key(content)
        self.blobs[key] = content
        return key


def _base(address: str) -> str | None:
    """A recipient as an inbox names it: normalized, without its plus-tag."""
    found = normalized(address.strip().strip("<>"))
    return without_tag(found) if found else None


def _clamp(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:NAME_CHARS] or None
