"""The parts of Account Activity API deliveries the connector reads
(https://docs.x.com/x-api/account-activity/introduction; direct messages in the v1.1
``message_create`` shape, posts in the v1.1 Tweet shape). Lenient: unknown fields are
skipped."""

from __future__ import annotations

import msgspec


class Variant(msgspec.Struct):
    url: str
    content_type: str = "video/mp4"
    bitrate: int | None = None


class VideoInfo(msgspec.Struct):
    variants: list[Variant] = []


class Media(msgspec.Struct):
    id_str: str | None = None
    type: str = "photo"
    media_url_https: str | None = None
    url: str | None = None
    """The ``t.co`` link the text ends with."""
    video_info: VideoInfo | None = None


class DmAttachment(msgspec.Struct):
    type: str = "media"
    media: Media | None = None


class MessageData(msgspec.Struct):
    text: str = ""
    attachment: DmAttachment | None = None


class Target(msgspec.Struct):
    recipient_id: str = ""


class MessageCreate(msgspec.Struct):
    sender_id: str
    target: Target = msgspec.field(default_factory=Target)
    message_data: MessageData = msgspec.field(default_factory=MessageData)


class DmEvent(msgspec.Struct):
    type: str
    id: str = ""
    created_timestamp: str | None = None
    message_create: MessageCreate | None = None


class User(msgspec.Struct):
    """An entry of the ``users`` map, or a post's author."""

    id_str: str | None = None
    name: str | None = None
    screen_name: str | None = None


class Mention(msgspec.Struct):
    id_str: str | None = None


class Entities(msgspec.Struct):
    user_mentions: list[Mention] = []
    media: list[Media] = []


class ExtendedTweet(msgspec.Struct):
    full_text: str = ""
    entities: Entities = msgspec.field(default_factory=Entities)
    extended_entities: Entities | None = None


class Tweet(msgspec.Struct):
    id_str: str
    user: User
    text: str = ""
    full_text: str | None = None
    truncated: bool = False
    extended_tweet: ExtendedTweet | None = None
    entities: Entities = msgspec.field(default_factory=Entities)
    extended_entities: Entities | None = None
    in_reply_to_user_id_str: str | None = None
    retweeted_status: msgspec.Raw = msgspec.Raw(b"")
    """Empty unless the post is a retweet (``msgspec.Raw`` takes no ``None``)."""
    timestamp_ms: str | None = None
    created_at: str | None = None


class Activity(msgspec.Struct):
    for_user_id: str
    user_has_blocked: bool = False
    direct_message_events: list[DmEvent] = []
    tweet_create_events: list[Tweet] = []
    users: dict[str, User] = {}


_decoder = msgspec.json.Decoder(Activity)
_keys = msgspec.json.Decoder(dict[str, msgspec.Raw])


def decode(body: bytes) -> Activity:
    """Raises ``msgspec.DecodeError`` when it is no Account Activity delivery."""
    return _decoder.decode(body)


def event_kinds(body: bytes) -> list[str]:
    """The delivery's event arrays (``favorite_events``, ``follow_events`` ...)."""
    return [key for key in _keys.decode(body) if key.endswith("_events") or key == "user_event"]
