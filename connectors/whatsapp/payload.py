"""The WhatsApp Cloud API webhook format (``object: whatsapp_business_account``), as
msgspec structs: lenient (unknown fields are allowed, nearly everything is optional),
because Meta adds fields without notice.

One POST carries ``entry[]`` (one per business account), each with ``changes[]``; a
change with ``field: messages`` has a ``value`` holding the business number
(``metadata``), the senders' profiles (``contacts``), inbound ``messages`` and the
delivery ``statuses`` of what the business sent. Messages and statuses stay raw here and
are decoded one by one, so one malformed message never costs the others.

Reference: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

from __future__ import annotations

import msgspec


class Change(msgspec.Struct):
    field: str = ""
    value: msgspec.Raw = msgspec.Raw()
    """Shaped by ``field``; decoded as ``Value`` for ``messages`` only (empty: absent)."""


class Entry(msgspec.Struct):
    id: str | None = None
    """The WhatsApp Business Account id."""
    changes: list[Change] = []


class Envelope(msgspec.Struct):
    object: str = ""
    entry: list[Entry] = []


class Metadata(msgspec.Struct):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Profile(msgspec.Struct):
    name: str | None = None
    username: str | None = None


class Contact(msgspec.Struct):
    """The sender of a message in the same ``value``."""

    wa_id: str | None = None
    """The sender's WhatsApp number, digits without '+'."""
    user_id: str | None = None
    """The business-scoped user id (BSUID, ``US.1349...``), sent since 2026."""
    profile: Profile | None = None


class Error(msgspec.Struct):
    code: int | str | None = None
    title: str | None = None
    message: str | None = None


class Value(msgspec.Struct):
    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: list[Contact] = []
    messages: list[msgspec.Raw] = []
    statuses: list[msgspec.Raw] = []
    errors: list[Error] = []


class Text(msgspec.Struct):
    body: str = ""


class Media(msgspec.Struct):
    """image, audio, video, document, sticker: a media id to fetch through the Graph API."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool | None = None
    animated: bool | None = None


class Location(msgspec.Struct):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class CardName(msgspec.Struct):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class CardPhone(msgspec.Struct):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class CardEmail(msgspec.Struct):
    email: str | None = None
    type: str | None = None


class Card(msgspec.Struct):
    """A contact card the sender shared (someone else's details, never the sender's)."""

    name: CardName | None = None
    phones: list[CardPhone] = []
    emails: list[CardEmail] = []


class Choice(msgspec.Struct):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class FlowReply(msgspec.Struct):
    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class Interactive(msgspec.Struct):
    type: str | None = None
    button_reply: Choice | None = None
    list_reply: Choice | None = None
    nfm_reply: FlowReply | None = None


class Button(msgspec.Struct):
    """A tap on a template's quick-reply button."""

    text: str | None = None
    payload: str | None = None


class Context(msgspec.Struct):
    id: str | None = None
    """The message this one answers (or whose button was tapped)."""
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None


class Referral(msgspec.Struct):
    """Set when the customer came from a Click to WhatsApp ad."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    ctwa_clid: str | None = None


class Unsupported(msgspec.Struct):
    type: str | None = None


class Message(msgspec.Struct):
    id: str
    type: str = "unknown"
    from_: str | None = msgspec.field(default=None, name="from")
    from_user_id: str | None = None
    timestamp: str | int | None = None
    text: Text | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[Card] = []
    interactive: Interactive | None = None
    button: Button | None = None
    context: Context | None = None
    referral: Referral | None = None
    unsupported: Unsupported | None = None
    errors: list[Error] = []


class Status(msgspec.Struct):
    """The fate of a message the business sent."""

    id: str
    status: str
    timestamp: str | int | None = None
    recipient_id: str | None = None
    errors: list[Error] = []
