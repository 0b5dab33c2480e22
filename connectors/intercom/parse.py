"""Intercom webhook notifications into canonical messages. Pure: no I/O.

Only what a customer wrote becomes a message: the first message of a conversation a
customer started (``conversation.user.created``, its ``source``) and the customer's parts
of a reply (``conversation.user.replied``). Teammates' and bots' parts, and every other
topic (``ping``, ``conversation.admin.*``, contacts, tickets), are acknowledged and ignored.
``inbox`` is ``intercom:<app_id>`` (the workspace the notification names), when given.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any, TypeGuard, TypeVar
from urllib.parse import urlsplit

import msgspec

from connectors.base import Parsed
from connectors.intercom.html import to_text
from connectors.intercom.payload import (
    Author,
    Conversation,
    Notification,
    Part,
    PartAttachment,
    Source,
)
from router.errors import InputError, InvalidIdentity
from router.identity import normalize
from router.models import Attachment, IdentityIn, InboundMessage, Sender

SOURCE = "intercom"
CREATED = "conversation.user.created"
REPLIED = "conversation.user.replied"
CUSTOMERS = frozenset({"user", "lead", "contact"})
"""Author types that are the customer; ``admin``, ``bot`` and ``team`` are the business."""

_TYPES = mimetypes.MimeTypes()
"""Python's built-in table only: the same content types on every host."""

T = TypeVar("T")


def parse_notification(body: bytes) -> Parsed:
    note = _decode(body, Notification, "notification")
    if note.type != "notification_event":
        raise InputError(f"not an Intercom notification: type {note.type[:64]!r}")
    if note.topic not in (CREATED, REPLIED):
        return Parsed(ignored=[f"topic:{note.topic[:64]}"])
    if note.data is None:
        raise InputError(f"Intercom {note.topic} notification has no data.item")
    conversation = _decode(note.data.item, Conversation, "conversation")
    inbox = f"{SOURCE}:{note.app_id}" if note.app_id else None
    messages = _messages(note.topic, conversation, inbox)
    ignored = [] if messages else [f"{note.topic}:no_customer_message"]
    return Parsed(messages=messages, ignored=ignored)


def _decode(raw: bytes | msgspec.Raw, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise InputError(f"not an Intercom {what}: {exc}") from None


def _messages(topic: str, conversation: Conversation, inbox: str | None) -> list[InboundMessage]:
    found = []
    source = conversation.source
    if topic == CREATED and source is not None and _by_customer(source.author):
        found.append(_from_source(conversation, source, source.author))
    parts = conversation.conversation_parts
    for part in (parts.conversation_parts or []) if parts else []:
        if _by_customer(part.author) and (part.body or part.attachments):
            found.append(_from_part(conversation, part, part.author))
    return [msgspec.structs.replace(message, inbox=inbox) for message in found]


def _by_customer(author: Author | None) -> TypeGuard[Author]:
    return author is not None and author.type in CUSTOMERS


def _from_source(conversation: Conversation, source: Source, author: Author) -> InboundMessage:
    if not source.id:
        raise InputError(f"Intercom conversation {conversation.id[:64]} has a source with no id")
    subject, _ = to_text(source.subject or "")
    return _message(
        conversation,
        external_id=f"source:{source.id}",
        author=author,
        body=source.body,
        attachments=source.attachments,
        sent_at=conversation.created_at,
        subject=subject[:512] or None,
        attributes={
            "intercom_source": source.id,
            "intercom_channel": source.type,
            "page_url": source.url,
        },
    )


def _from_part(conversation: Conversation, part: Part, author: Author) -> InboundMessage:
    if not part.id:
        raise InputError(f"Intercom conversation {conversation.id[:64]} has a part with no id")
    return _message(
        conversation,
        external_id=f"part:{part.id}",
        author=author,
        body=part.body,
        attachments=part.attachments,
        sent_at=part.created_at,
        attributes={"intercom_part": part.id, "part_type": part.part_type},
    )


def _message(
    conversation: Conversation,
    *,
    external_id: str,
    author: Author,
    body: str | None,
    attachments: list[PartAttachment] | None,
    sent_at: int | None,
    subject: str | None = None,
    attributes: dict[str, Any],
) -> InboundMessage:
    text, images = to_text(body or "")
    return InboundMessage(
        channel="chat",
        source=SOURCE,
        external_id=external_id,
        sender=Sender(name=(author.name or "")[:512] or None, identities=_identities(author)),
        text=text,
        thread=conversation.id,
        subject=subject,
        sent_at=_time(sent_at),
        attachments=[_attachment(a) for a in attachments or []] + [_image(u) for u in images],
        attributes={"intercom_conversation": conversation.id}
        | {k: v for k, v in attributes.items() if v},
    )


def _time(unix_s: int | None) -> datetime | None:
    """Unix seconds; None when absent or out of range (the receipt time stands in)."""
    if not unix_s:
        return None
    try:
        return datetime.fromtimestamp(unix_s, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _identities(author: Author) -> list[IdentityIn]:
    """The Intercom contact id (Intercom proves it); an email the customer typed in the
    Messenger links only as a suggestion, and only when it is an address at all."""
    if not author.id:
        raise InputError(f"Intercom {author.type} author has no id")
    found = [IdentityIn(kind="intercom", value=author.id, verified=True)]
    if author.email:
        typed = IdentityIn(kind="email", value=author.email, verified=False)
        try:
            normalize(typed)
        except InvalidIdentity:
            return found
        found.append(typed)
    return found


def _attachment(given: PartAttachment) -> Attachment:
    size = given.filesize if given.filesize is not None and given.filesize >= 0 else None
    return Attachment(
        name=(given.name or _file_name(given.url or ""))[:512],
        content_type=(given.content_type or "application/octet-stream")[:255],
        size=size,
        url=given.url,
    )


def _image(url: str) -> Attachment:
    """An image pasted into the message body."""
    name = _file_name(url)
    content_type = _TYPES.guess_type(name)[0] or "application/octet-stream"
    return Attachment(name=name[:512], content_type=content_type, url=url, inline=True)


def _file_name(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or "attachment"
