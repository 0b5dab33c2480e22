"""Intercom's webhook notification format, as far as omniroute reads it. Lenient:
unknown fields are ignored, and most fields may be missing or null.
https://developers.intercom.com/docs/references/webhooks/webhook-models
"""

from __future__ import annotations

import msgspec


class Notification(msgspec.Struct):
    """``{"type": "notification_event", "topic": ..., "data": {"item": ...}}``."""

    topic: str
    type: str = "notification_event"
    id: str | None = None
    app_id: str | None = None
    data: Data | None = None
    created_at: int | None = None
    delivery_attempts: int | None = None


class Data(msgspec.Struct):
    item: msgspec.Raw = msgspec.Raw(b"null")
    """Its shape depends on the topic: decoded as a ``Conversation`` for conversation
    topics only."""


class Author(msgspec.Struct):
    type: str = ""
    """``user`` or ``lead`` (a customer), ``admin``, ``bot``, ``team``."""
    id: str | None = None
    name: str | None = None
    email: str | None = None


class PartAttachment(msgspec.Struct):
    name: str | None = None
    url: str | None = None
    content_type: str | None = None
    filesize: int | None = None


class Source(msgspec.Struct):
    """The message that started the conversation."""

    id: str | None = None
    type: str | None = None
    """Where it started: ``conversation`` (the Messenger), ``email``, ``whatsapp``..."""
    delivered_as: str | None = None
    subject: str | None = None
    body: str | None = None
    author: Author | None = None
    attachments: list[PartAttachment] | None = None
    url: str | None = None


class Part(msgspec.Struct):
    """A later message (or event: assignment, note, close) in the conversation."""

    id: str | None = None
    part_type: str | None = None
    body: str | None = None
    created_at: int | None = None
    author: Author | None = None
    attachments: list[PartAttachment] | None = None


class Parts(msgspec.Struct):
    conversation_parts: list[Part] | None = None


class Conversation(msgspec.Struct):
    id: str
    created_at: int | None = None
    source: Source | None = None
    conversation_parts: Parts | None = None
