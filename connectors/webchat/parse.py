"""A visitor's message frame → the canonical message (pure).

The visitor is who the token says (``webchat`` identity, verified: our own signature
proves it); the thread is the visitor id, so every socket of that visitor, today or after
a reconnect, writes into the same conversation. The external id is
``<visitor_id>:<client id>``: a frame sent again after a reconnect is a duplicate.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from connectors.base import Parsed, blob_key
from connectors.webchat.frames import AttachmentIn, BadFrame, MessageFrame
from connectors.webchat.tokens import Claims
from router.identity import normalize
from router.models import Attachment, IdentityIn, InboundMessage, Sender

SOURCE = "webchat"
IDENTITY_KIND = "webchat"
INBOX = f"{SOURCE}:{SOURCE}"
"""Where every visitor's message arrives: this chat (``webchat:<source>``)."""


@dataclass(frozen=True)
class Limits:
    max_message_chars: int
    max_attachment_bytes: int


def identities(visitor: Claims) -> list[IdentityIn]:
    """The visitor's own id (verified) and the email they typed (unverified)."""
    found = [IdentityIn(kind=IDENTITY_KIND, value=visitor.visitor_id, verified=True)]
    if visitor.email:
        found.append(IdentityIn(kind="email", value=visitor.email, verified=False))
    return found


def check_email(email: str) -> str:
    """The address normalized; ``InvalidIdentity`` when it is not one."""
    return normalize(IdentityIn(kind="email", value=email)).value


def message(visitor: Claims, frame: MessageFrame, now: datetime, limits: Limits) -> Parsed:
    text = frame.text.strip()
    if len(text) > limits.max_message_chars:
        raise BadFrame(
            f"text of {len(text)} characters is over the {limits.max_message_chars} limit",
            frame.id,
        )
    if not text and not frame.attachments:
        raise BadFrame("a message needs text or an attachment", frame.id)
    attachments, blobs = _attachments(frame, limits.max_attachment_bytes)
    inbound = InboundMessage(
        channel="chat",
        source=SOURCE,
        external_id=f"{visitor.visitor_id}:{frame.id}",
        sender=Sender(name=visitor.name, identities=identities(visitor)),
        text=text,
        thread=visitor.visitor_id,
        inbox=INBOX,
        sent_at=now,
        attachments=attachments,
    )
    return Parsed(messages=[inbound], blobs=blobs)


def _attachments(frame: MessageFrame, max_bytes: int) -> tuple[list[Attachment], dict[str, bytes]]:
    out: list[Attachment] = []
    blobs: dict[str, bytes] = {}
    for given in frame.attachments:
        if (given.url is None) == (given.data is None):
            raise BadFrame(f"attachment {given.name!r} needs either a url or data", frame.id)
        if given.url is not None:
            out.append(_linked(given, given.url, frame.id))
            continue
        if max_bytes == 0:
            raise BadFrame("this chat takes attachments as links (url) only", frame.id)
        content = _content(given, frame.id)
        if sum(map(len, blobs.values())) + len(content) > max_bytes:
            raise BadFrame(f"attachments are over the {max_bytes} byte limit", frame.id)
        key = blob_key(content)
        blobs[key] = content
        out.append(
            Attachment(
                name=given.name, content_type=given.content_type, size=len(content), blob=key
            )
        )
    return out, blobs


def _linked(given: AttachmentIn, url: str, frame_id: str) -> Attachment:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadFrame(f"attachment {given.name!r}: url must be http or https", frame_id)
    return Attachment(name=given.name, content_type=given.content_type, url=url)


def _content(given: AttachmentIn, frame_id: str) -> bytes:
    try:
        return base64.b64decode(given.data or "", validate=True)
    except (binascii.Error, ValueError):
        raise BadFrame(f"attachment {given.name!r}: data is not base64", frame_id) from None
