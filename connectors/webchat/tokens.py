"""Visitor tokens: a chat widget proves which visitor it speaks for.

A token is ``wct.<payload>.<signature>``: ``payload`` is base64url (unpadded) JSON
``{"sub": visitor_id, "iat": unix s, "exp": unix s, "name"?: ..., "email"?: ...}`` and
``signature`` is base64url HMAC-SHA256 of the payload text under a key derived from the
connector's ``secret``. The daemon keeps no session list: any router process checks a
token on its own, and changing the secret signs every visitor out. ``name`` and
``email`` are what the visitor typed (never verified); they ride in the token so a
reconnect remembers them. Pure: the time is given, nothing is stored.

Not ``router.agent_tokens``: its tokens name agents (``agt.``, agent id rules) and are
keyed by the API token; a visitor token must never pass for an agent's, nor the reverse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from router.errors import Unauthorized

PREFIX = "wct."
_KEY_LABEL = b"omniroute webchat visitor tokens"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

VisitorName = Annotated[str, msgspec.Meta(max_length=512)]
Email = Annotated[str, msgspec.Meta(max_length=320)]


class Claims(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a token says: which visitor, issued and expiring at (unix seconds), and the
    name and email the visitor gave, if any."""

    sub: str
    iat: int
    exp: int
    name: VisitorName | None = None
    email: Email | None = None

    @property
    def visitor_id(self) -> str:
        return self.sub

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, tz=UTC)

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.exp


def derive_key(secret: str) -> bytes:
    """The signing key: the configured secret under a label of its own, so the same
    secret used elsewhere never signs something that passes for a visitor token."""
    return hmac.new(_KEY_LABEL, secret.encode(), hashlib.sha256).digest()


def claims(
    visitor_id: str,
    *,
    now: datetime,
    ttl_s: int,
    name: str | None = None,
    email: str | None = None,
) -> Claims:
    """The claims of a token for ``visitor_id`` valid ``ttl_s`` seconds from ``now``."""
    if not VISITOR_ID.fullmatch(visitor_id):
        raise ValueError(f"invalid visitor id {visitor_id!r}")
    if ttl_s < 1:
        raise ValueError(f"ttl_s must be at least 1, not {ttl_s}")
    issued = int(now.timestamp())
    return Claims(sub=visitor_id, iat=issued, exp=issued + ttl_s, name=name, email=email)


def mint(key: bytes, signed: Claims) -> str:
    payload = _b64(msgspec.json.encode(signed))
    return f"{PREFIX}{payload}.{_sign(key, payload)}"


def verify(key: bytes, token: str, *, now: datetime) -> Claims:
    """The token's claims if it is well formed, signed with ``key`` and not expired at
    ``now``; else ``Unauthorized`` saying which (never echoing the token)."""
    payload, signature = _split(token)
    if not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        raise Unauthorized("invalid visitor token: bad signature")
    found = _claims(payload)
    if found.expired(now):
        raise Unauthorized(f"visitor token expired at {found.expires_at.isoformat()}")
    return found


def _split(token: str) -> tuple[str, str]:
    parts = token.removeprefix(PREFIX).split(".")
    if not token.startswith(PREFIX) or len(parts) != 2 or not all(map(_B64URL.fullmatch, parts)):
        raise Unauthorized("malformed visitor token: expected wct.<payload>.<signature>")
    return parts[0], parts[1]


def _claims(payload: str) -> Claims:
    try:
        found = msgspec.json.decode(_unb64(payload), type=Claims)
    except (binascii.Error, ValueError, msgspec.MsgspecError):
        raise Unauthorized("malformed visitor token: unreadable payload") from None
    if not VISITOR_ID.fullmatch(found.sub):
        raise Unauthorized("malformed visitor token: invalid visitor id")
    return found


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
