"""Identifier normalization: one spelling per identifier, so lookups and merges match.

- ``email``: trimmed, lowercased, one ``@`` with a dotted domain.
- ``phone`` (also given as ``sms``, ``whatsapp``, ``tel``, ``voice``): E.164 through
  ``phonenumbers``; a number without ``+`` needs the configured default region. All
  phone kinds become ``phone``, so the same number on WhatsApp and SMS is one identifier.
- anything else (``telegram``, ``messenger``, ``chat_visitor`` ...): the kind is the
  provider's scope, lowercased; the value is kept as given, trimmed. Connectors scope
  page- or workspace-local ids themselves (``<page>/<psid>``).
"""

from __future__ import annotations

import re

import phonenumbers

from router.errors import InvalidIdentity
from router.models import Identity, IdentityIn

PHONE_KINDS = frozenset({"phone", "sms", "whatsapp", "tel", "voice", "mobile"})
_KIND = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize(identity: IdentityIn, *, default_region: str | None = None) -> Identity:
    kind = identity.kind.strip().lower()
    value = identity.value.strip()
    if not _KIND.match(kind):
        raise InvalidIdentity(f"identity kind {kind[:64]!r} is not a lowercase word")
    if not value:
        raise InvalidIdentity(f"identity of kind {kind!r} has an empty value")
    if kind == "email":
        return Identity("email", _email(value), identity.verified)
    if kind in PHONE_KINDS:
        return Identity("phone", _phone(value, default_region), identity.verified)
    return Identity(kind, value, identity.verified)


def normalize_all(
    identities: list[IdentityIn], *, default_region: str | None = None
) -> tuple[Identity, ...]:
    """Normalize and de-duplicate; a verified spelling wins over an unverified one."""
    seen: dict[str, Identity] = {}
    for given in identities:
        ident = normalize(given, default_region=default_region)
        if ident.key not in seen or ident.verified:
            seen[ident.key] = ident
    return tuple(seen.values())


def parse_key(key: str, *, default_region: str | None = None) -> Identity:
    """``email:maria@example.com`` → the normalized (unverified) identity."""
    kind, sep, value = key.partition(":")
    if not sep:
        raise InvalidIdentity("identity must be written kind:value, e.g. email:a@example.com")
    return normalize(IdentityIn(kind=kind, value=value), default_region=default_region)


def _email(value: str) -> str:
    address = value.removeprefix("mailto:").strip().lower()
    if not _EMAIL.match(address):
        raise InvalidIdentity("email identity is not an address of the form name@domain.tld")
    return address


def _phone(value: str, default_region: str | None) -> str:
    raw = value.removeprefix("whatsapp:").removeprefix("tel:").strip()
    if raw.isdigit() and default_region is None and len(raw) > 7:
        raw = "+" + raw  # WhatsApp and Telegram give international numbers without '+'
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"phone identity does not parse: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity("phone identity is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(key: str) -> str:
    """What info logs may show of an identifier: its kind and a few characters."""
    kind, _, value = key.partition(":")
    return f"{kind}:{value[:2]}…{value[-2:]}" if len(value) > 6 else f"{kind}:…"
