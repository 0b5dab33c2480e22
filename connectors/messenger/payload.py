"""The Messenger Platform webhook format, shared by Messenger (``object: page``) and
Instagram messaging (``object: instagram``), as lenient msgspec structs (unknown fields
allowed, nearly everything optional).

One POST carries ``entry[]`` (one per Page or Instagram account), each with
``messaging[]`` events: a ``message``, ``postback``, ``message_edit``, ``delivery``,
``read``, ``reaction``, ``referral``... Events stay raw here and are decoded one by one,
so one malformed event never costs the others.

Reference: https://developers.facebook.com/docs/messenger-platform/webhooks and
https://developers.facebook.com/docs/instagram-platform/webhooks
"""

from __future__ import annotations

import msgspec


class Change(msgspec.Struct):
    field: str = ""


class Entry(msgspec.Struct):
    id: str | None = None
    """The Page id (Messenger) or the Instagram professional account id."""
    time: int | None = None
    messaging: list[msgspec.Raw] = []
    standby: list[msgspec.Raw] = []
    """Events for a conversation another app of the Page controls (handover protocol)."""
    changes: list[Change] = []
    """Feed and comment notifications (not messaging)."""


class Envelope(msgspec.Struct):
    object: str = ""
    entry: list[Entry] = []


class Party(msgspec.Struct):
    id: str | None = None


class AttachedPayload(msgspec.Struct):
    url: str | None = None
    title: str | None = None


class Attached(msgspec.Struct):
    """image, video, audio, file, and shares (fallback, share, story_mention, ig_reel ...)."""

    type: str = "fallback"
    payload: AttachedPayload | None = None
    title: str | None = None
    url: str | None = None


class Story(msgspec.Struct):
    id: str | None = None
    url: str | None = None


class ReplyTo(msgspec.Struct):
    mid: str | None = None
    story: Story | None = None
    """Instagram: the story the customer answered."""


class QuickReply(msgspec.Struct):
    payload: str | None = None


class Referral(msgspec.Struct):
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None


class Message(msgspec.Struct):
    mid: str | None = None
    text: str | None = None
    attachments: list[Attached] = []
    is_echo: bool = False
    """Sent by the Page or account itself (Messenger ``message_echoes``, Instagram)."""
    is_deleted: bool = False
    is_unsupported: bool = False
    quick_reply: QuickReply | None = None
    reply_to: ReplyTo | None = None
    referral: Referral | None = None


class Postback(msgspec.Struct):
    """A tap on a button, Get Started, a persistent menu item or an ice breaker."""

    mid: str | None = None
    title: str | None = None
    payload: str | None = None


class MessageEdit(msgspec.Struct):
    mid: str | None = None
    text: str | None = None
    num_edit: int | str | None = None


class Delivery(msgspec.Struct):
    mids: list[str] = []
    watermark: int | None = None


class Read(msgspec.Struct):
    watermark: int | None = None
    mid: str | None = None
    """Instagram's ``messaging_seen`` names the message; Messenger gives a watermark only."""


class Event(msgspec.Struct):
    sender: Party | None = None
    recipient: Party | None = None
    timestamp: int | str | None = None
    message: Message | None = None
    postback: Postback | None = None
    message_edit: MessageEdit | None = None
    delivery: Delivery | None = None
    read: Read | None = None
