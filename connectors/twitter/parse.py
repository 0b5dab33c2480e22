"""Account Activity deliveries into canonical messages. Pure: no I/O.

- ``direct_message_events`` (``message_create``) → messages, several per delivery; a
  DM the subscribed account sent itself (``sender_id == for_user_id``) is an echo, ignored.
- ``tweet_create_events`` → with ``mentions`` on, a post by someone else that mentions or
  answers the account is a public message; the account's own posts, retweets and posts
  by users it blocked are ignored.
- Every other event array (likes, follows, typing, read receipts ...) is ignored.

DMs and public posts are separate conversations per customer and subscribed account
(threads ``dm:<account>:<user>`` and ``public:<account>:<user>``): a reply goes out the
way the customer came in. The user id is in the thread because the store attaches a
message from someone new to the owner of its thread. ``external_id`` is the DM event id,
and ``tweet:<id>`` for a post.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import msgspec

from connectors.base import Parsed
from connectors.twitter.payload import Activity, DmEvent, Media, Tweet, User, decode, event_kinds
from router.errors import InputError
from router.models import Attachment, IdentityIn, InboundMessage, Sender

SOURCE = "twitter"
_TWEET_TIME = "%a %b %d %H:%M:%S %z %Y"


def parse_activity(body: bytes, *, mentions: bool) -> Parsed:
    try:
        activity = decode(body)
        kinds = event_kinds(body)
    except msgspec.DecodeError as exc:
        raise InputError(f"body is not an Account Activity delivery: {exc}") from None
    found = [_direct_message(activity, event) for event in activity.direct_message_events]
    handled = {"direct_message_events"}
    if mentions:
        found += [_post(activity, tweet) for tweet in activity.tweet_create_events]
        handled.add("tweet_create_events")
    ignored = [f"event:{kind}" for kind in kinds if kind not in handled]
    ignored += [item for item in found if isinstance(item, str)]
    messages = [item for item in found if isinstance(item, InboundMessage)]
    return Parsed(messages=messages, ignored=ignored)


def _direct_message(activity: Activity, event: DmEvent) -> InboundMessage | str:
    create = event.message_create
    if event.type != "message_create" or create is None:
        return f"dm:{event.type}"
    if create.sender_id == activity.for_user_id:
        return "echo"
    if not event.id:
        raise InputError("direct message event without an id")
    data = create.message_data
    media = [data.attachment.media] if data.attachment and data.attachment.media else []
    return InboundMessage(
        channel="social",
        source=SOURCE,
        external_id=event.id,
        sender=_sender(create.sender_id, activity.users.get(create.sender_id)),
        text=_without_links(data.text, media),
        thread=f"dm:{activity.for_user_id}:{create.sender_id}",
        inbox=_inbox(activity),
        sent_at=_ms(event.created_timestamp),
        attachments=[_attachment(m) for m in media],
        attributes={"visibility": "direct"},
    )


def _post(activity: Activity, tweet: Tweet) -> InboundMessage | str:
    author = tweet.user.id_str
    if author is None or author == activity.for_user_id:
        return "own_post"
    if bytes(tweet.retweeted_status) not in (b"", b"null"):
        return "retweet"
    if activity.user_has_blocked:
        return "blocked_user"
    if not _addressed(tweet, activity.for_user_id):
        return "not_addressed"
    text, media = _content(tweet)
    url = f"https://x.com/{tweet.user.screen_name or 'i/web'}/status/{tweet.id_str}"
    return InboundMessage(
        channel="social",
        source=SOURCE,
        external_id=f"tweet:{tweet.id_str}",
        sender=_sender(author, tweet.user),
        text=_without_links(text, media),
        thread=f"public:{activity.for_user_id}:{author}",
        inbox=_inbox(activity),
        sent_at=_posted_at(tweet),
        attachments=[_attachment(m) for m in media],
        attributes={"visibility": "public", "url": url},
    )


def _inbox(activity: Activity) -> str | None:
    """``twitter:<subscribed account id>``: the business's account the delivery is for."""
    return f"{SOURCE}:{activity.for_user_id}" if activity.for_user_id else None


def _addressed(tweet: Tweet, account: str) -> bool:
    if tweet.in_reply_to_user_id_str == account:
        return True
    mentions = tweet.entities.user_mentions
    if tweet.extended_tweet is not None:
        mentions = mentions + tweet.extended_tweet.entities.user_mentions
    return any(m.id_str == account for m in mentions)


def _content(tweet: Tweet) -> tuple[str, list[Media]]:
    """The whole text (a long post's ``extended_tweet``) and its media."""
    full = tweet.extended_tweet
    if tweet.truncated and full is not None:
        entities = full.extended_entities or full.entities
        return full.full_text, entities.media
    entities = tweet.extended_entities or tweet.entities
    return tweet.full_text or tweet.text, entities.media


def _sender(user_id: str, user: User | None) -> Sender:
    identity = IdentityIn(kind="twitter", value=user_id, verified=True)
    if user is None:
        return Sender(identities=[identity])
    attributes = {"twitter_username": user.screen_name} if user.screen_name else {}
    name = user.name[:512] if user.name else None
    return Sender(name=name, identities=[identity], attributes=attributes)


def _without_links(text: str, media: list[Media]) -> str:
    """The text without the ``t.co`` links X appends for each attached medium."""
    for item in media:
        if item.url and text.rstrip().endswith(item.url):
            text = text.rstrip()[: -len(item.url)]
    return text.rstrip() if media else text


def _attachment(media: Media) -> Attachment:
    url = _best_url(media)
    name = PurePosixPath(urlsplit(url).path).name if url else ""
    guessed = mimetypes.guess_type(name)[0] if name else None
    content_type = guessed or ("image/jpeg" if media.type == "photo" else "video/mp4")
    return Attachment(
        name=(name or f"{media.type}")[:512],
        content_type=content_type,
        url=url,
        provider_id=media.id_str,
    )


def _best_url(media: Media) -> str | None:
    """A video's (or GIF's) highest-bitrate MP4, else the image."""
    variants = media.video_info.variants if media.video_info else []
    videos = [v for v in variants if v.content_type == "video/mp4"]
    if videos:
        return max(videos, key=lambda v: v.bitrate or 0).url
    return media.media_url_https


def _ms(stamp: str | None) -> datetime | None:
    """Milliseconds since the epoch; None when absent or no time (``"9" * 400``)."""
    if stamp is None or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(stamp) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _posted_at(tweet: Tweet) -> datetime | None:
    if tweet.timestamp_ms is not None:
        return _ms(tweet.timestamp_ms)
    if tweet.created_at is None:
        return None
    try:
        return datetime.strptime(tweet.created_at, _TWEET_TIME).astimezone(UTC)
    except ValueError:
        return None
