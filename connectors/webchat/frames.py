"""The JSON text frames of the visitor's socket (``GET /v1/chat/ws``).

In (``type`` says which):

- ``{"type": "message", "id": "<client id>", "text": "...", "attachments": [...]}``: the
  ``id`` is the widget's own (unique per visitor); sending the same ``id`` again, after a
  reconnect say, stores nothing new and is acked with the first message's ids. An
  attachment is ``{"name", "content_type"?, "url"}`` (a link the site serves) or
  ``{"name", "content_type"?, "data": <base64>}`` (kept by omniroute).
- ``{"type": "identify", "name"?: ..., "email"?: ...}``: what the visitor typed into a
  form. The email is an unverified identity: it links as a suggestion, never merges.
- ``{"type": "ping"}``.

Out: ``ready`` (once, on connect), ``ack`` (a message is stored), ``identified`` (with
a renewed token that remembers the name and email), ``reply`` (an agent answered),
``pong`` and ``error`` (the frame was refused; the socket stays open).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from connectors.webchat.tokens import Email, VisitorName
from router.errors import InputError

ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
"""Printable ASCII, no spaces: a UUID, a counter, whatever the widget uses."""

_encoder = msgspec.json.Encoder()


class BadFrame(InputError):
    """A frame the socket refuses; ``frame_id`` is its client id when it had one."""

    code = "bad_frame"

    def __init__(self, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.frame_id = frame_id


# --- in -------------------------------------------------------------------------------


class AttachmentIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    content_type: Annotated[str, msgspec.Meta(max_length=255)] = "application/octet-stream"
    url: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    data: str | None = None
    """The content, base64."""


class MessageFrame(msgspec.Struct, tag="message", tag_field="type", forbid_unknown_fields=True):
    id: ClientId
    text: str = ""
    attachments: Annotated[list[AttachmentIn], msgspec.Meta(max_length=10)] = []


class IdentifyFrame(msgspec.Struct, tag="identify", tag_field="type", forbid_unknown_fields=True):
    name: VisitorName | None = None
    email: Email | None = None


class PingFrame(msgspec.Struct, tag="ping", tag_field="type", forbid_unknown_fields=True):
    pass


Frame = MessageFrame | IdentifyFrame | PingFrame


def decode(data: str) -> Frame:
    """The frame, or ``BadFrame`` saying what is wrong with it."""
    try:
        raw: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BadFrame(f"frame is not valid JSON: {exc}") from None
    frame_id = raw.get("id") if isinstance(raw, dict) else None
    frame_id = frame_id[:128] if isinstance(frame_id, str) else None
    if not isinstance(raw, dict) or raw.get("type") not in ("message", "identify", "ping"):
        raise BadFrame('expected an object whose "type" is message, identify or ping', frame_id)
    try:
        frame: Frame = msgspec.convert(raw, Frame)
    except msgspec.ValidationError as exc:
        raise BadFrame(f"invalid {raw['type']} frame: {exc}", frame_id) from None
    return frame


# --- out ------------------------------------------------------------------------------


class Ready(msgspec.Struct, tag="ready", tag_field="type", kw_only=True):
    visitor_id: str
    expires_at: datetime
    """When the token ends; renew it before then (``POST /v1/chat/sessions``)."""
    heartbeat_s: float


class Ack(msgspec.Struct, tag="ack", tag_field="type", kw_only=True):
    id: str
    message_id: str
    conversation_id: str
    duplicate: bool = False
    """The ``id`` was sent before: nothing new was stored."""


class Identified(msgspec.Struct, tag="identified", tag_field="type", kw_only=True):
    token: str
    """A renewed token remembering the name and email: use it to reconnect."""
    expires_at: datetime
    name: str | None = None
    email: str | None = None


class ReplyFrame(msgspec.Struct, tag="reply", tag_field="type", kw_only=True):
    text: str
    agent_id: str
    at: datetime
    conversation_id: str


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    pass


class ErrorFrame(msgspec.Struct, tag="error", tag_field="type", kw_only=True, omit_defaults=True):
    code: str
    message: str
    id: str | None = None
    """The client id of the refused message frame, when it had one."""


Out = Ready | Ack | Identified | ReplyFrame | Pong | ErrorFrame


def encode(frame: Out) -> str:
    return _encoder.encode(frame).decode()
