"""Slack Events API requests into canonical messages, edits and deletions. Pure: no I/O.

- ``url_verification`` → the challenge, answered as JSON.
- ``event_callback`` with a ``message`` (or ``app_mention``) event from a person → a
  message; ``external_id`` ``<team>:<channel>:<ts>`` (``ts`` is unique per channel), so
  Slack's retries (``X-Slack-Retry-Num``) and the ``app_mention`` twin of a ``message``
  event are duplicates of the stored one.
- ``message_changed`` → an edit; ``message_deleted`` → a ``deleted`` delivery report on the
  message (its history entry stays).
- Bot messages (``bot_id``, ``bot_message``), other subtypes (joins, topics ...), other
  event types, and messages, edits and deletions by the people ``ignore`` names (the
  business's staff: ``<team>:<user>`` or ``<team>:*``) are acknowledged and ignored.
- ``inbox`` is ``slack:<team id>``: the workspace the app is installed in.

Threads: a direct conversation with the app (``im``) is one conversation, threaded or
not, like a chat: its thread is the channel. In a shared channel every top-level message
starts a thread of its own and a reply names its parent (``thread_ts``), so a reply
lands in the conversation its parent started: ``<channel>:<thread_ts or ts>``. Several
people write there (and in a group DM, ``mpim``), so their user id ends the thread: the
store attaches a message from someone new to the owner of its thread, and a thread
shared by several people would join strangers (a colleague answering in the thread
would become the customer). Everyone in a channel thread has a conversation of their
own about it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from connectors.base import Edit, Parsed, Reply
from connectors.slack.payload import File, Message, envelope, head, message
from router.errors import InputError
from router.ledger import DeliveryReport
from router.models import Attachment, IdentityIn, InboundMessage, Sender

SOURCE = "slack"
MESSAGE_EVENTS = frozenset({"message", "app_mention"})
CONTENT_SUBTYPES = frozenset({"file_share", "thread_broadcast", "me_message"})
"""Subtypes a person's message has; every other subtype is a system or bot message."""

_json = msgspec.json.Encoder()


def parse_request(body: bytes, *, ignore: frozenset[str] = frozenset()) -> Parsed:
    try:
        found = envelope(body)
        if found.type == "url_verification":
            return _challenge(found.challenge)
        if found.type != "event_callback" or not len(found.event):
            return Parsed(ignored=[f"envelope:{found.type}"])
        if not found.team_id:
            raise InputError("Slack event_callback without team_id")
        kind = head(found.event)
        if kind.type not in MESSAGE_EVENTS:
            return Parsed(ignored=[f"event:{kind.type}"])
        return _message_event(found.team_id, message(found.event), ignore)
    except (msgspec.DecodeError, ValueError) as exc:
        raise InputError(f"body is not a Slack Events API request: {exc}") from None


def _challenge(challenge: str | None) -> Parsed:
    if not challenge:
        raise InputError("Slack url_verification without a challenge")
    reply = Reply(body=_json.encode({"challenge": challenge}), content_type="application/json")
    return Parsed(reply=reply)


def _message_event(team: str, event: Message, ignore: frozenset[str]) -> Parsed:
    if not event.channel:
        raise InputError("Slack message event without a channel")
    if event.subtype == "message_changed":
        return _changed(team, event.channel, event, ignore)
    if event.subtype == "message_deleted":
        return _deleted(team, event.channel, event, ignore)
    skip = _skip(team, event, ignore)
    if skip is not None:
        return Parsed(ignored=[skip])
    return Parsed(messages=[to_inbound(team, event.channel, event.channel_type, event)])


def _skip(team: str, event: Message, ignore: frozenset[str]) -> str | None:
    if event.bot_id is not None or event.subtype == "bot_message":
        return "bot_message"
    if event.subtype is not None and event.subtype not in CONTENT_SUBTYPES:
        return f"subtype:{event.subtype}"
    if not event.user or not event.ts:
        return "no_user"
    home = _home(team, event)
    if f"{home}:{event.user}" in ignore or f"{home}:*" in ignore:
        return "ignored_user"
    return None


def _changed(team: str, channel: str, event: Message, ignore: frozenset[str]) -> Parsed:
    new = event.message
    if new is None:
        raise InputError("Slack message_changed without the message")
    skip = _skip(team, new, ignore)
    if skip is not None:
        return Parsed(ignored=[skip])
    if event.previous_message is not None and event.previous_message.text == new.text:
        return Parsed(ignored=["unchanged"])  # an unfurl or a reply count, not an edit
    inbound = to_inbound(team, channel, event.channel_type, new)
    edited_at = _time((new.edited.ts if new.edited else None) or event.event_ts or event.ts)
    return Parsed(edits=[Edit(message=inbound, edited_at=edited_at)])


def _deleted(team: str, channel: str, event: Message, ignore: frozenset[str]) -> Parsed:
    previous = event.previous_message
    skip = _skip(team, previous, ignore) if previous is not None else None
    if skip in ("bot_message", "ignored_user"):
        return Parsed(ignored=[skip])
    deleted_ts = event.deleted_ts or (previous.ts if previous is not None else "")
    if not deleted_ts:
        raise InputError("Slack message_deleted without deleted_ts")
    report = DeliveryReport(
        source=SOURCE,
        external_id=external_id(team, channel, deleted_ts),
        status="deleted",
        at=_time(event.event_ts or event.ts),
    )
    return Parsed(deliveries=[report])


def external_id(team: str, channel: str, ts: str) -> str:
    return f"{team}:{channel}:{ts}"


def thread_of(channel: str, channel_type: str | None, event: Message) -> str:
    """The channel for a DM; else the person's share of the parent's thread."""
    kind = channel_type or ("im" if channel.startswith("D") else "channel")
    if kind == "im":
        return channel
    if kind == "mpim":
        return f"{channel}:{event.user}"
    return f"{channel}:{event.thread_ts or event.ts}:{event.user}"


def to_inbound(team: str, channel: str, channel_type: str | None, event: Message) -> InboundMessage:
    attributes = {"channel_type": channel_type} if channel_type else {}
    return InboundMessage(
        channel="chat",
        source=SOURCE,
        external_id=external_id(team, channel, event.ts),
        sender=_sender(team, event),
        text=event.text,
        thread=thread_of(channel, channel_type, event),
        inbox=f"{SOURCE}:{team}",
        sent_at=_time(event.ts),
        attachments=[_file(f) for f in event.files],
        attributes=attributes,
    )


def _home(team: str, event: Message) -> str:
    """The sender's own workspace: a Slack Connect guest keeps their home workspace's id."""
    return event.user_team or event.team or team


def _sender(team: str, event: Message) -> Sender:
    identity = IdentityIn(kind="slack", value=f"{_home(team, event)}:{event.user}", verified=True)
    profile = event.user_profile
    name = (profile.real_name or profile.display_name) if profile is not None else None
    return Sender(name=name[:512] if name else None, identities=[identity])


def _file(file: File) -> Attachment:
    return Attachment(
        name=(file.name or file.title or file.id)[:512],
        content_type=(file.mimetype or "application/octet-stream")[:255],
        size=file.size,
        url=file.url_private,
        provider_id=file.id,
    )


def _time(ts: str | None) -> datetime:
    """A Slack ``ts`` (``"1355517523.000005"``, seconds); ``InputError`` when it is no
    time (missing, not a number, or out of range: ``1e400``, ``nan``)."""
    if not ts:
        raise InputError("Slack message without ts")
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (OverflowError, OSError, ValueError):
        raise InputError(f"Slack ts {ts[:32]!r} is not a time") from None
