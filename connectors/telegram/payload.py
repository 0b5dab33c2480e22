"""The parts of the Bot API's ``Update`` the connector reads
(https://core.telegram.org/bots/api#update). Lenient: unknown fields are skipped."""

from __future__ import annotations

import msgspec


class User(msgspec.Struct):
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class Chat(msgspec.Struct):
    id: int
    type: str = "private"


class PhotoSize(msgspec.Struct):
    file_id: str
    width: int = 0
    height: int = 0
    file_size: int | None = None


class File(msgspec.Struct):
    """Document, Voice, Video, Audio, Animation and VideoNote share these fields."""

    file_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Sticker(msgspec.Struct):
    file_id: str
    emoji: str | None = None
    is_animated: bool = False
    is_video: bool = False
    file_size: int | None = None


class Location(msgspec.Struct):
    latitude: float
    longitude: float


class Contact(msgspec.Struct):
    phone_number: str
    first_name: str = ""
    last_name: str | None = None
    user_id: int | None = None


class Message(msgspec.Struct):
    message_id: int
    chat: Chat
    date: int
    sender: User | None = msgspec.field(default=None, name="from")
    message_thread_id: int | None = None
    is_topic_message: bool = False
    edit_date: int | None = None
    text: str | None = None
    caption: str | None = None
    photo: list[PhotoSize] = []
    document: File | None = None
    animation: File | None = None
    audio: File | None = None
    video: File | None = None
    video_note: File | None = None
    voice: File | None = None
    sticker: Sticker | None = None
    location: Location | None = None
    contact: Contact | None = None


class Update(msgspec.Struct):
    update_id: int
    message: Message | None = None
    edited_message: Message | None = None


_decoder = msgspec.json.Decoder(Update)
_keys = msgspec.json.Decoder(dict[str, msgspec.Raw])


def decode(body: bytes) -> Update:
    """Raises ``msgspec.DecodeError`` (a ``ValidationError`` too) when it is no Update."""
    return _decoder.decode(body)


def kinds(body: bytes) -> list[str]:
    """The update's type fields (``callback_query``, ``my_chat_member`` ...)."""
    return [key for key in _keys.decode(body) if key != "update_id"]
