"""Threading: the Message-IDs a mail answers, and the conversation token omniroute puts
in its outgoing mail.

A reply names earlier mail in In-Reply-To and References; the pipeline joins it to the
thread of the first of those it has stored. The token ``con_<id>`` names a conversation
directly, for replies whose references are gone (a client that drops them, a new mail
to the plus-address): in an outgoing Message-ID ``<con_<id>.<anything>@host>`` (so it
comes back in In-Reply-To / References), in a plus-address ``support+con_<id>@host`` on
one of our own addresses, or in the subject ``[#con_<id>]``. Never the subject alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from connectors.email.fields import EmailFields

MAX_ID_CHARS = 512
"""The canonical model's limit on ``external_id`` and each reference."""
MAX_REFERENCES = 30
_ANGLED = re.compile(r"<([^<>\s]+)>")
_CONVERSATION = r"con_[0-9a-z]{1,64}"
_ID_TOKEN = re.compile(rf"^({_CONVERSATION})\.", re.IGNORECASE)
_SUBJECT_TOKEN = re.compile(rf"\[#({_CONVERSATION})\]", re.IGNORECASE)
_PLUS_TOKEN = re.compile(rf"^{_CONVERSATION}$", re.IGNORECASE)


def message_ids(value: str | None) -> list[str]:
    """The Message-IDs in a header value, without ``<>``, in order (a bare ``id@host``
    when there are no angle brackets, as some clients write In-Reply-To)."""
    if not value:
        return []
    found = _ANGLED.findall(value)
    if not found:
        bare = value.strip()
        found = [bare] if "@" in bare and not any(c.isspace() for c in bare) else []
    return [canonical_id(mid) for mid in found]


def canonical_id(message_id: str) -> str:
    """A Message-ID as an ``external_id``: as written, or ``sha256:<hex>`` of it when over
    the model's 512 characters (the same for the message and every reply naming it)."""
    if len(message_id) <= MAX_ID_CHARS:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def references(fields: EmailFields) -> list[str]:
    """In-Reply-To, then References newest first; no repeats, at most ``MAX_REFERENCES``."""
    ordered = message_ids(fields.header("In-Reply-To"))
    ordered += reversed(message_ids(" ".join(fields.header_all("References"))))
    return unique(ordered)[:MAX_REFERENCES]


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def conversation_hint(
    refs: list[str], subject: str | None, recipients: Iterable[str], own: Iterable[str]
) -> str | None:
    """The conversation a token names: in a reference (newest first), else in a
    plus-address of one of our ``own`` addresses, else in the subject."""
    for ref in refs:
        found = _ID_TOKEN.match(ref)
        if found:
            return found.group(1).lower()
    plain = {address.lower() for address in own}
    for address in recipients:
        token = plus_token(address, plain)
        if token:
            return token
    found = _SUBJECT_TOKEN.search(subject or "")
    return found.group(1).lower() if found else None


def plus_token(address: str, own: set[str]) -> str | None:
    """``con_<id>`` from ``local+con_<id>@domain`` when ``local@domain`` is in ``own``."""
    local, at, domain = address.lower().rpartition("@")
    base, plus, tag = local.partition("+")
    if at and plus and f"{base}@{domain}" in own and _PLUS_TOKEN.match(tag):
        return tag
    return None
