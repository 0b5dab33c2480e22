"""Telegram updates into canonical messages and edits. Pure: no I/O.

- ``message`` → one message; ``edited_message`` → an edit of the stored one (same
  ``external_id``, ``<chat_id>:<message_id>``: message ids count per chat).
- Messages from bots, and updates of any other type (``channel_post``, ``callback_query``,
  ``my_chat_member`` ...), are acknowledged and ignored.
- The sender is the Telegram user (verified: Telegram authenticates them); a shared
  contact whose ``user_id`` is the sender's own id adds their phone number, verified.
- ``thread``: the private chat (``<chat_id>``); in a group ``<chat_id>:<user_id>``, in a
  forum topic ``<chat_id>:<topic_id>[:<user_id>]``.
- No ``inbox``: an update does not name the bot it was sent to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from connectors.base import Edit, Parsed
from connectors.telegram.payload import Contact, File, Message, Sticker, User, decode, kinds
from router.errors import InputError, InvalidIdentity
from router.identity import normalize
from router.models import Attachment, IdentityIn, InboundMessage, Sender

SOURCE = "telegram"


def parse_update(body: bytes) -> Parsed:
    try:
        update = decode(body)
    except msgspec.DecodeError as exc:
        raise InputError(f"body is not a Telegram Update: {exc}") from None
    if update.message is not None:
        return _parsed(update.message, edited=False)
    if update.edited_message is not None:
        return _parsed(update.edited_message, edited=True)
    return Parsed(ignored=[f"update:{kind}" for kind in kinds(body)] or ["update:empty"])


def _parsed(message: Message, *, edited: bool) -> Parsed:
    if message.sender is None:
        return Parsed(ignored=["no_sender"])
    if message.sender.is_bot:
        return Parsed(ignored=["bot_message"])
    inbound = to_inbound(message, message.sender)
    if inbound is None:
        return Parsed(ignored=["unsupported_content"])
    if edited:
        edited_at = _time(message.edit_date or message.date)
        return Parsed(edits=[Edit(message=inbound, edited_at=edited_at)])
    return Parsed(messages=[inbound])


def to_inbound(message: Message, sender: User) -> InboundMessage | None:
    """The canonical message; None for content it cannot carry (service messages,
    polls, games)."""
    attachments = _attachments(message)
    text = message.text or message.caption or _describe(message)
    if not text and not attachments:
        return None
    return InboundMessage(
        channel="social",
        source=SOURCE,
        external_id=f"{message.chat.id}:{message.message_id}",
        sender=_sender(sender, message.contact),
        text=text,
        thread=_thread(message, sender),
        sent_at=_time(message.date),
        attachments=attachments,
        attributes=_attributes(message),
    )


def _sender(user: User, contact: Contact | None) -> Sender:
    identities = [IdentityIn(kind="telegram", value=str(user.id), verified=True)]
    phone = _own_phone(user, contact)
    if phone is not None:
        identities.append(IdentityIn(kind="phone", value=phone, verified=True))
    attributes: dict[str, Any] = {}
    if user.username:
        attributes["telegram_username"] = user.username
    if user.language_code:
        attributes["language"] = user.language_code
    return Sender(
        name=_full_name(user.first_name, user.last_name),
        identities=identities,
        attributes=attributes,
    )


def _own_phone(user: User, contact: Contact | None) -> str | None:
    """The sender's own number, when they shared their own contact (Telegram fills
    ``user_id`` only from its records, so a match proves the number is theirs)."""
    if contact is None or contact.user_id != user.id:
        return None
    number = contact.phone_number.strip()
    number = number if number.startswith("+") else "+" + number  # always international
    try:
        return normalize(IdentityIn(kind="phone", value=number)).value
    except InvalidIdentity:
        return None


def _full_name(first: str, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part)[:512] or None


def _thread(message: Message, sender: User) -> str:
    """The chat (a private chat's id is the user's); a forum topic is a conversation of
    its own; in a group, each member's messages are theirs: the store attaches a message
    from someone new to the owner of its thread, so a shared thread would join strangers.
    """
    parts = [message.chat.id]
    if message.is_topic_message and message.message_thread_id is not None:
        parts.append(message.message_thread_id)
    if message.chat.type != "private":
        parts.append(sender.id)
    return ":".join(str(part) for part in parts)


def _attachments(message: Message) -> list[Attachment]:
    found: list[Attachment] = []
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        found.append(
            Attachment(
                name="photo.jpg",
                content_type="image/jpeg",
                size=largest.file_size,
                provider_id=largest.file_id,
            )
        )
    files = (
        (message.animation, "animation.mp4", "video/mp4"),
        (message.document, "document", "application/octet-stream"),
        (message.audio, "audio.mp3", "audio/mpeg"),
        (message.video, "video.mp4", "video/mp4"),
        (message.video_note, "video_note.mp4", "video/mp4"),
        (message.voice, "voice.ogg", "audio/ogg"),
    )
    for file, name, content_type in files:
        if file is not None and all(a.provider_id != file.file_id for a in found):
            found.append(_file(file, name, content_type))  # an animation is a document too
    if message.sticker is not None:
        found.append(_sticker(message.sticker))
    return found


def _file(file: File, name: str, content_type: str) -> Attachment:
    return Attachment(
        name=(file.file_name or name)[:512],
        content_type=(file.mime_type or content_type)[:255],
        size=file.file_size,
        provider_id=file.file_id,
    )


def _sticker(sticker: Sticker) -> Attachment:
    if sticker.is_video:
        name, content_type = "sticker.webm", "video/webm"
    elif sticker.is_animated:
        name, content_type = "sticker.tgs", "application/x-tgsticker"
    else:
        name, content_type = "sticker.webp", "image/webp"
    return Attachment(
        name=name, content_type=content_type, size=sticker.file_size, provider_id=sticker.file_id
    )


def _describe(message: Message) -> str:
    """Text for content that has none: a sticker's emoji, a location, a contact."""
    if message.sticker is not None:
        return message.sticker.emoji or ""
    if message.location is not None:
        return f"Location: {message.location.latitude}, {message.location.longitude}"
    if message.contact is not None:
        name = _full_name(message.contact.first_name, message.contact.last_name)
        return " ".join(part for part in ("Contact:", name, message.contact.phone_number) if part)
    return ""


def _attributes(message: Message) -> dict[str, Any]:
    attributes: dict[str, Any] = {"chat_type": message.chat.type}
    if message.location is not None:
        attributes["location"] = {
            "latitude": message.location.latitude,
            "longitude": message.location.longitude,
        }
    if message.contact is not None:
        contact = message.contact
        attributes["contact"] = {
            "name": _full_name(contact.first_name, contact.last_name),
            "phone": contact.phone_number,
            "telegram_user_id": contact.user_id,
        }
    return attributes


def _time(unix_s: int) -> datetime:
    """Unix seconds; ``InputError`` when out of range (a signed update is still bad input)."""
    try:
        return datetime.fromtimestamp(unix_s, UTC)
    except (OverflowError, OSError, ValueError):
        raise InputError(f"Telegram date {str(unix_s)[:32]} is not a time") from None
