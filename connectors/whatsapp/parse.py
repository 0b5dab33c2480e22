"""WhatsApp Cloud API webhooks into canonical messages and delivery reports (pure).

- Every entry, change and message of a batch becomes its own message; a change whose
  ``field`` is not ``messages`` (template and account updates, the Business app's
  echoes) is ignored.
- ``statuses`` (sent, delivered, read, failed with its errors) become delivery reports:
  a statuses-only request routes nothing.
- The sender is the ``wa_id`` (a verified phone, kind ``whatsapp``), with the profile
  name from ``contacts``; a business-scoped user id (``user_id``, since 2026) is a
  second verified identity, ``whatsapp_bsuid``.
- text, media (image, audio, video, document, sticker: an attachment with the media id
  as ``provider_id``), location, shared contacts, interactive and template button
  replies are messages. Reactions are ignored: a thumbs-up is not something to answer
  and routing it would wake an agent; unsupported and unknown types are ignored too,
  each with its reason.
- ``context.id`` (the message answered) becomes a reference, so a reply joins the thread
  of the message it answers when that one is stored.
- The thread is the chat: ``<business phone number id>:<sender>``. It must name one
  customer's chat, not the business number alone: the store gives a message whose
  identity is new to the customer who owns its thread. The business number alone is the
  ``inbox``: ``whatsapp:<phone number id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

import msgspec

from connectors.base import Parsed
from connectors.meta import Malformed, checked, clip, decode_body, meta_time, quarantined
from connectors.whatsapp.payload import (
    Card,
    Contact,
    Envelope,
    Error,
    Message,
    Status,
    Value,
)
from router.ledger import DeliveryReport
from router.models import Attachment, DeliveryStatus, IdentityIn, InboundMessage, Sender

SOURCE = "whatsapp"
OBJECT = "whatsapp_business_account"
MEDIA = ("image", "audio", "video", "document", "sticker")
STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "deleted": "deleted",
}


class Content(NamedTuple):
    text: str
    attachments: list[Attachment]
    attributes: dict[str, Any]


def parse_body(
    body: bytes, *, received_at: datetime, phone_number_ids: tuple[str, ...] = ()
) -> Parsed:
    """Everything one webhook POST carries. ``phone_number_ids``: when given, changes
    for other business numbers are ignored."""
    envelope = decode_body(body, Envelope, "WhatsApp Cloud API")
    parsed = Parsed()
    if envelope.object != OBJECT:
        parsed.ignored.append(f"object:{envelope.object or 'none'}")
        return parsed
    for entry in envelope.entry:
        for change in entry.changes:
            _change(change.field, change.value, parsed, received_at, phone_number_ids)
    return parsed


def _change(
    field: str,
    raw: msgspec.Raw,
    parsed: Parsed,
    received_at: datetime,
    allowed: tuple[str, ...],
) -> None:
    if field != "messages" or not raw:
        parsed.ignored.append(f"field:{field or 'none'}")
        return
    try:
        value = msgspec.json.decode(raw, type=Value)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        parsed.quarantined.append(quarantined(f"change does not fit: {exc}", bytes(raw)))
        return
    business = value.metadata.phone_number_id if value.metadata else None
    if allowed and business not in allowed:
        parsed.ignored.append("phone_number_id:not_configured")
        return
    for message in value.messages:
        _message(message, value.contacts, business, parsed)
    for status in value.statuses:
        _status(status, received_at, parsed)
    parsed.ignored.extend(f"error:{e.code}" for e in value.errors)


def _message(
    raw: msgspec.Raw, contacts: list[Contact], business: str | None, parsed: Parsed
) -> None:
    try:
        outcome = to_message(msgspec.json.decode(raw, type=Message), contacts, business)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reason = f"message does not fit the WhatsApp format: {exc}"
    except Malformed as exc:
        reason = str(exc)
    else:
        if isinstance(outcome, str):
            parsed.ignored.append(outcome)
        else:
            parsed.messages.append(outcome)
        return
    parsed.quarantined.append(quarantined(reason, bytes(raw)))


def to_message(msg: Message, contacts: list[Contact], business: str | None) -> InboundMessage | str:
    """The canonical message, or why it is ignored; ``Malformed`` when it cannot be read."""
    skip = skip_reason(msg)
    if skip is not None:
        return skip
    content = CONTENT[msg.type](msg)
    who, chat = sender(msg, contacts)
    context = msg.context
    return checked(
        InboundMessage(
            channel="social",
            source=SOURCE,
            external_id=msg.id,
            sender=who,
            text=content.text,
            thread=f"{business or 'unknown'}:{chat}",
            inbox=f"{SOURCE}:{business}" if business else None,
            sent_at=meta_time(msg.timestamp),
            attachments=content.attachments,
            attributes=content.attributes | _context_attributes(msg),
            references=[context.id] if context and context.id else [],
        )
    )


def skip_reason(msg: Message) -> str | None:
    """Why a message is not one to store, or None."""
    if msg.type == "unsupported":
        kind = msg.unsupported.type if msg.unsupported else None
        code = msg.errors[0].code if msg.errors else None
        return f"unsupported:{kind or code or 'unknown'}"
    if msg.type == "reaction":
        return "reaction"
    if msg.type == "interactive":
        kind = msg.interactive.type if msg.interactive else None
        return None if kind in INTERACTIVE else f"interactive:{kind or 'none'}"
    return None if msg.type in CONTENT else f"type:{msg.type}"


def sender(msg: Message, contacts: list[Contact]) -> tuple[Sender, str]:
    """The sender, and the id of their chat with the business (their number, or their
    business-scoped id when they hide it)."""
    contact = _contact_of(msg, contacts)
    wa_id = msg.from_ or (contact.wa_id if contact else None)
    bsuid = msg.from_user_id or (contact.user_id if contact else None)
    chat = wa_id or bsuid
    if not chat:
        raise Malformed("WhatsApp message without a sender ('from' or a contact)")
    identities = []
    if wa_id:
        identities.append(IdentityIn(kind="whatsapp", value="+" + wa_id.lstrip("+"), verified=True))
    if bsuid:
        identities.append(IdentityIn(kind="whatsapp_bsuid", value=bsuid, verified=True))
    profile = contact.profile if contact else None
    username = profile.username if profile else None
    who = Sender(
        name=clip(profile.name if profile else None),
        identities=identities,
        attributes={"whatsapp_username": username} if username else {},
    )
    return who, chat


def _contact_of(msg: Message, contacts: list[Contact]) -> Contact | None:
    for contact in contacts:
        if (contact.wa_id and contact.wa_id == msg.from_) or (
            contact.user_id and contact.user_id == msg.from_user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else None


# --- content by message type ------------------------------------------------------------


def _text(msg: Message) -> Content:
    if msg.text is None:
        raise Malformed("text message without 'text'")
    return Content(msg.text.body, [], {})


def _media(msg: Message) -> Content:
    media = getattr(msg, msg.type)
    if media is None or not media.id:
        raise Malformed(f"{msg.type} message without a media id")
    attachment = Attachment(
        name=clip(media.filename) or msg.type,
        content_type=media.mime_type or "application/octet-stream",
        provider_id=media.id,
        url=media.url,
    )
    return Content(media.caption or "", [attachment], {"voice": True} if media.voice else {})


def _location(msg: Message) -> Content:
    place = msg.location
    if place is None or place.latitude is None or place.longitude is None:
        raise Malformed("location message without coordinates")
    label = ", ".join(p for p in (place.name, place.address) if p)
    coordinates = f"({place.latitude}, {place.longitude})"
    text = " ".join(p for p in ("Location:", label, coordinates) if p)
    return Content(text, [], {"location": _present(place)})


class SharedContact(TypedDict):
    name: str | None
    phones: list[str]
    emails: list[str]


def _contacts(msg: Message) -> Content:
    """Someone else's details the sender shared: text and attributes, never identities."""
    if not msg.contacts:
        raise Malformed("contacts message without contacts")
    cards = [_card(card) for card in msg.contacts]
    lines = [
        "Contact: " + " ".join(filter(None, [c["name"], *c["phones"], *c["emails"]])) for c in cards
    ]
    return Content("\n".join(lines), [], {"shared_contacts": cards})


def _card(card: Card) -> SharedContact:
    return SharedContact(
        name=card.name.formatted_name if card.name else None,
        phones=[p.phone for p in card.phones if p.phone],
        emails=[e.email for e in card.emails if e.email],
    )


def _interactive(msg: Message) -> Content:
    assert msg.interactive is not None  # skip_reason let only known subtypes through
    reply = msg.interactive.button_reply or msg.interactive.list_reply
    if reply is not None:
        return Content(reply.title or reply.id or "", [], {"reply_id": reply.id})
    flow = msg.interactive.nfm_reply
    if flow is None:
        raise Malformed(f"interactive {msg.interactive.type} message without its reply")
    return Content(flow.body or "Flow response", [], {"flow_response": flow.response_json})


def _button(msg: Message) -> Content:
    if msg.button is None:
        raise Malformed("button message without 'button'")
    attributes = {"button_payload": msg.button.payload}
    return Content(msg.button.text or msg.button.payload or "", [], attributes)


CONTENT: dict[str, Callable[[Message], Content]] = {
    "text": _text,
    **dict.fromkeys(MEDIA, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
}
INTERACTIVE = ("button_reply", "list_reply", "nfm_reply")


def _context_attributes(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if msg.context and (msg.context.forwarded or msg.context.frequently_forwarded):
        out["forwarded"] = True
    if msg.referral is not None:
        out["referral"] = _present(msg.referral)
    return out


def _present(struct: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not None}


# --- statuses ---------------------------------------------------------------------------


def _status(raw: msgspec.Raw, received_at: datetime, parsed: Parsed) -> None:
    try:
        status = msgspec.json.decode(raw, type=Status)
    except (msgspec.ValidationError, msgspec.DecodeError):
        parsed.ignored.append("status:malformed")
        return
    known = STATUSES.get(status.status)
    if known is None:
        parsed.ignored.append(f"status:{status.status}")
        return
    parsed.deliveries.append(
        DeliveryReport(
            source=SOURCE,
            external_id=status.id,
            status=known,
            at=meta_time(status.timestamp) or received_at,
            recipient=status.recipient_id,
            error=_errors(status.errors),
        )
    )


def _errors(errors: list[Error]) -> str | None:
    text = "; ".join(f"{e.code}: {e.title or e.message or ''}".rstrip(": ") for e in errors)
    return text or None
