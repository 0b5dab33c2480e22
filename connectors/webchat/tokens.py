"""Visitor tokens: a chat widget proves which visitor it speaks for.

A token is ``wct.<payload>.<signature>`` (``router.signed_tokens``): ``payload`` is
base64url (unpadded) JSON ``{"sub": visitor_id, "iat": unix s, "exp": unix s, "name"?:
..., "email"?: ...}`` and ``signature`` is base64url HMAC-SHA256 of the payload text
under a key derived from the connector's ``secret``. The daemon keeps no session list:
any router process checks a token on its own, and changing the secret signs every
visitor out. ``name`` and ``email`` are what the visitor typed (never verified); they
ride in the token so a reconnect remembers them. Pure: the time is given, nothing is
stored.

Not ``router.agent_tokens``: its tokens name agents (``agt.``, agent id rules) and are
keyed by the API token; a visitor token must never pass for an agent's, nor the reverse.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec

from router import signed_tokens
from router.errors import Unauthorized
from router.signed_tokens import signature as _sign  # noqa: F401 (tests sign odd payloads)

PREFIX = "wct."
_KEY_LABEL = b"omniroute webchat visitor tokens"
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

VisitorName = Annotated[str, msgspec.Meta(max_length=512)]
Email = Annotated[str, msgspec.Meta(max_length=320)]


class Claims(signed_tokens.Claims, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a token says: which visitor, issued and expiring at (unix seconds), and the
    name and email the visitor gave, if any."""

    name: VisitorName | None = None
    email: Email | None = None

    @property
    def visitor_id(self) -> str:
        return self.sub


_KIND = signed_tokens.TokenKind(
    prefix=PREFIX,
    name="visitor token",
    claims=Claims,
    subject="visitor id",
    valid_subject=VISITOR_ID.fullmatch,
)


def derive_key(secret: str) -> bytes:
    """The signing key: the configured secret under a label of its own, so the same
    secret used elsewhere never signs something that passes for a visitor token."""
    return signed_tokens.derive_key(_KEY_LABEL, secret)


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
    issued, expires = signed_tokens.lifetime(now, ttl_s)
    return Claims(sub=visitor_id, iat=issued, exp=expires, name=name, email=email)


def mint(key: bytes, signed: Claims) -> str:
    return _KIND.seal(key, signed)


def verify(key: bytes, token: str, *, now: datetime) -> Claims:
    """The token's claims if it is well formed, signed with ``key`` and not expired at
    ``now``; else ``Unauthorized`` saying which (never echoing the token)."""
    found = _KIND.open(key, token)
    if found.expired(now):
        raise Unauthorized(f"visitor token expired at {found.expires_at.isoformat()}")
    return found
