"""Messenger Platform webhooks into canonical messages, edits and delivery reports
(pure). Messenger and Instagram messaging share the format; a ``Platform`` says which.

- Each ``messaging[]`` event of each entry is read on its own.
- ``message``: text and attachments (``payload.url``); ``reply_to.mid`` becomes a
  reference. Echoes (the Page's own messages) and unsupported messages are ignored; a
  message the customer deleted (Instagram ``is_deleted``) is a ``deleted`` delivery
  report on it (its history entry stays).
- ``postback``: a message whose text is the button's title (the payload is kept in
  the attributes).
- ``message_edit`` (Messenger): an edit of the stored message.
- ``delivery`` with ``mids`` and ``read`` naming a ``mid`` (Instagram): delivery reports on
  the business's own messages, routing nothing; watermark-only receipts name no message
  and are ignored.
- Everything else (reactions, referrals, opt-ins, handover ``standby``, feed
  ``changes``) is ignored with its name.

The sender is the page-scoped id, kind ``messenger`` or ``instagram``, value
``<page or account id>:<scoped id>``, verified: the id means nothing outside the
Page or account that received the message. Meta's webhook carries no name. The thread
is the same pair: the customer's chat with that Page or account. The ``inbox`` is the
Page or account alone: ``messenger:<page id>``, ``instagram:<account id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from mimetypes import guess_type
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

from connectors.base import Edit, Parsed
from connectors.messenger.payload import (
    Attached,
    Delivery,
    Envelope,
    Event,
    Message,
    MessageEdit,
    Postback,
    Read,
)
from connectors.meta import Malformed, checked, clip, decode_body, meta_time, quarantined
from router.ledger import DeliveryReport
from router.models import Attachment, DeliveryStatus, IdentityIn, InboundMessage, Sender

ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})
MEDIA = ("image", "video", "audio")


@dataclass(frozen=True)
class Platform:
    """What differs between the connectors that share this format."""

    source: str
    """The connector name, the messages' ``source`` and the identity kind."""
    object: str
    """The webhook's ``object``."""
    title: str


MESSENGER = Platform(source="messenger", object="page", title="Messenger")
INSTAGRAM = Platform(source="instagram", object="instagram", title="Instagram")


@dataclass(frozen=True)
class Scope:
    """Who and when one event is about."""

    platform: Platform
    account: str
    """The Page or Instagram account that received the event."""
    customer: str | None
    """The page-scoped id of the other party."""
    at: datetime
    stamp: str
    """The event's timestamp as sent (part of a postback's id when it has no ``mid``)."""

    def sender(self) -> Sender:
        if self.customer is None:
            raise Malformed("event without a sender id")
        identity = IdentityIn(
            kind=self.platform.source, value=f"{self.account}:{self.customer}", verified=True
        )
        return Sender(identities=[identity])


def parse_body(
    body: bytes, *, platform: Platform, received_at: datetime, accounts: tuple[str, ...] = ()
) -> Parsed:
    """Everything one webhook POST carries; ``accounts``: when given, entries for other
    Pages or accounts are ignored."""
    envelope = decode_body(body, Envelope, platform.title)
    parsed = Parsed()
    if envelope.object != platform.object:
        parsed.ignored.append(f"object:{envelope.object or 'none'}")
        return parsed
    for entry in envelope.entry:
        if accounts and entry.id not in accounts:
            parsed.ignored.append("account:not_configured")
            continue
        for raw in entry.messaging:
            _event(raw, entry.id, platform, received_at, parsed)
        parsed.ignored.extend("standby" for _ in entry.standby)
        parsed.ignored.extend(f"changes:{c.field or 'none'}" for c in entry.changes)
    return parsed


def _event(
    raw: msgspec.Raw,
    entry_id: str | None,
    platform: Platform,
    received_at: datetime,
    parsed: Parsed,
) -> None:
    try:
        event = msgspec.json.decode(raw, type=Event)
        account = entry_id or (event.recipient.id if event.recipient else None)
        if not account:
            raise Malformed("event without the Page or account id")
        scope = Scope(
            platform=platform,
            account=account,
            customer=event.sender.id if event.sender else None,
            at=meta_time(event.timestamp) or received_at,
            stamp=str(event.timestamp or ""),
        )
        dispatch(event, scope, raw, parsed)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        parsed.quarantined.append(quarantined(f"event does not fit: {exc}", bytes(raw)))
    except Malformed as exc:
        parsed.quarantined.append(quarantined(str(exc), bytes(raw)))


def dispatch(event: Event, scope: Scope, raw: msgspec.Raw, parsed: Parsed) -> None:
    """Add what one event means to ``parsed``; ``Malformed`` when it cannot be read."""
    if event.message is not None:
        _message_event(event.message, scope, parsed)
    elif event.postback is not None:
        parsed.messages.append(postback(event.postback, scope))
    elif event.message_edit is not None:
        parsed.edits.append(edit(event.message_edit, scope))
    elif event.delivery is not None:
        _receipts(delivered(event.delivery, scope), "delivery", parsed)
    elif event.read is not None:
        _receipts(read(event.read, scope), "read", parsed)
    else:
        parsed.ignored.append(_event_name(raw))


def _message_event(message: Message, scope: Scope, parsed: Parsed) -> None:
    if message.is_deleted and message.mid and not message.is_echo:
        parsed.deliveries.append(_report(scope, message.mid, "deleted", scope.at))
        return
    outcome = to_message(message, scope)
    if isinstance(outcome, str):
        parsed.ignored.append(outcome)
    else:
        parsed.messages.append(outcome)


def _receipts(reports: list[DeliveryReport], name: str, parsed: Parsed) -> None:
    if reports:
        parsed.deliveries.extend(reports)
    else:
        parsed.ignored.append(name)


def _event_name(raw: msgspec.Raw) -> str:
    keys = msgspec.json.decode(raw, type=dict[str, msgspec.Raw]).keys() - ENVELOPE_KEYS
    return min(keys) if keys else "empty_event"


# --- messages ---------------------------------------------------------------------------


def to_message(message: Message, scope: Scope) -> InboundMessage | str:
    """The canonical message, or why it is ignored."""
    if message.is_echo or scope.customer == scope.account:
        return "echo"
    if message.is_unsupported:
        return "unsupported"
    if not message.mid:
        raise Malformed("message without 'mid'")
    attachments = [a for a in map(attachment, message.attachments) if a is not None]
    if not message.text and not attachments:
        return "empty"
    reply_to = message.reply_to.mid if message.reply_to else None
    return _message(
        scope,
        external_id=message.mid,
        text=message.text or "",
        attachments=attachments,
        attributes=_attributes(message),
        references=[reply_to] if reply_to else [],
    )


def _message(
    scope: Scope,
    *,
    external_id: str,
    text: str,
    attributes: dict[str, Any],
    attachments: list[Attachment] | None = None,
    references: list[str] | None = None,
) -> InboundMessage:
    return checked(
        InboundMessage(
            channel="social",
            source=scope.platform.source,
            external_id=external_id,
            sender=scope.sender(),
            text=text,
            thread=f"{scope.account}:{scope.customer}",
            inbox=f"{scope.platform.source}:{scope.account}",
            sent_at=scope.at,
            attachments=attachments or [],
            attributes=attributes,
            references=references or [],
        )
    )


def attachment(item: Attached) -> Attachment | None:
    """A file or shared item the provider serves at a URL; None when it has none."""
    url = (item.payload.url if item.payload else None) or item.url
    if not url:
        return None
    title = (item.payload.title if item.payload else None) or item.title
    name = _file_name(url) or title or item.type
    content_type = _content_type(name, item.type)
    return Attachment(name=clip(name) or item.type, content_type=content_type, url=url)


def _content_type(name: str, kind: str) -> str:
    """From the file name, with the major type the attachment's ``type`` states (an
    ``audio`` attachment ``clip.mp4`` is ``audio/mp4``)."""
    guessed = guess_type(name)[0] or "application/octet-stream"
    major, _, minor = guessed.partition("/")
    return f"{kind}/{minor}" if kind in MEDIA and major in MEDIA and major != kind else guessed


def _file_name(url: str) -> str | None:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return name if "." in name.strip(".") else None


def _attributes(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if message.quick_reply and message.quick_reply.payload:
        out["quick_reply_payload"] = message.quick_reply.payload
    if message.reply_to and message.reply_to.story:
        story = message.reply_to.story
        out["story_reply"] = {"id": story.id, "url": story.url}
    if message.referral:
        out["referral"] = _present(message.referral)
    kinds = sorted({a.type for a in message.attachments})
    if kinds:
        out["attachment_types"] = kinds
    return out


def _present(struct: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not None}


def postback(event: Postback, scope: Scope) -> InboundMessage:
    """A tapped button as a message; a postback without ``mid`` (older API versions) gets
    an id from its account, sender and time, so a re-delivery is still one message."""
    if event.mid:
        external_id = event.mid
    elif scope.stamp and scope.customer:
        external_id = f"postback:{scope.account}:{scope.customer}:{scope.stamp}"
    else:
        raise Malformed("postback without 'mid' or timestamp")
    return _message(
        scope,
        external_id=external_id,
        text=event.title or event.payload or "",
        attributes={"postback_payload": event.payload} if event.payload else {},
    )


def edit(event: MessageEdit, scope: Scope) -> Edit:
    if not event.mid:
        raise Malformed("message_edit without 'mid'")
    attributes = {"num_edit": event.num_edit} if event.num_edit is not None else {}
    message = _message(scope, external_id=event.mid, text=event.text or "", attributes=attributes)
    return Edit(message=message, edited_at=scope.at)


# --- receipts ---------------------------------------------------------------------------


def delivered(event: Delivery, scope: Scope) -> list[DeliveryReport]:
    at = meta_time(event.watermark) or scope.at
    return [_report(scope, mid, "delivered", at) for mid in event.mids if mid]


def read(event: Read, scope: Scope) -> list[DeliveryReport]:
    return [_report(scope, event.mid, "read", scope.at)] if event.mid else []


def _report(scope: Scope, mid: str, status: DeliveryStatus, at: datetime) -> DeliveryReport:
    return DeliveryReport(
        source=scope.platform.source,
        external_id=mid,
        status=status,
        at=at,
        recipient=scope.customer,
    )
