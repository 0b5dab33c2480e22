"""The parts of Events API requests the connector reads
(https://api.slack.com/apis/events-api, https://api.slack.com/events/message).
Lenient: unknown fields are skipped. The inner event is decoded only once its ``type``
says it is a message: other events reuse field names with other shapes."""

from __future__ import annotations

import msgspec


class Envelope(msgspec.Struct):
    type: str
    challenge: str | None = None
    team_id: str | None = None
    event: msgspec.Raw = msgspec.Raw(b"")
    """Empty when absent (``msgspec.Raw`` takes no ``None``)."""


class EventHead(msgspec.Struct):
    type: str = ""
    subtype: str | None = None


class File(msgspec.Struct):
    id: str
    name: str | None = None
    title: str | None = None
    mimetype: str | None = None
    size: int | None = None
    url_private: str | None = None


class Profile(msgspec.Struct):
    real_name: str | None = None
    display_name: str | None = None


class Edited(msgspec.Struct):
    user: str | None = None
    ts: str | None = None


class Message(msgspec.Struct):
    """A ``message`` or ``app_mention`` event, or the ``message`` / ``previous_message``
    inside a ``message_changed`` one."""

    type: str = "message"
    subtype: str | None = None
    ts: str = ""
    user: str | None = None
    bot_id: str | None = None
    text: str = ""
    thread_ts: str | None = None
    channel: str | None = None
    channel_type: str | None = None
    team: str | None = None
    user_team: str | None = None
    user_profile: Profile | None = None
    files: list[File] = []
    edited: Edited | None = None
    hidden: bool = False
    event_ts: str | None = None
    deleted_ts: str | None = None
    message: Message | None = None
    previous_message: Message | None = None


_envelope = msgspec.json.Decoder(Envelope)
_head = msgspec.json.Decoder(EventHead)
_message = msgspec.json.Decoder(Message)


def envelope(body: bytes) -> Envelope:
    """Raises ``msgspec.DecodeError`` when it is no Events API request."""
    return _envelope.decode(body)


def head(event: msgspec.Raw) -> EventHead:
    return _head.decode(event)


def message(event: msgspec.Raw) -> Message:
    return _message.decode(event)
