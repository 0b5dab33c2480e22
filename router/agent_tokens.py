"""Per-agent tokens: an agent tool authenticates as one agent, not as the administrator.

A token is ``agt.<payload>.<signature>`` (``router.signed_tokens``): ``payload`` is
base64url (unpadded) JSON ``{"sub": agent_id, "iat": unix s, "exp": unix s}`` and
``signature`` is base64url HMAC-SHA256 of the payload text under a key derived from the
API token, so the daemon keeps no token list and rotating the API token revokes every
agent token at once. Pure: the time is given, nothing is stored, no I/O library is imported.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from router import signed_tokens
from router.errors import Unauthorized
from router.queue_spec import valid_agent_id
from router.signed_tokens import Claims
from router.signed_tokens import signature as _sign  # noqa: F401 (tests sign odd payloads)

PREFIX = "agt."
DEFAULT_TTL_S = 30 * 86400
MAX_TTL_S = 365 * 86400
_KEY_LABEL = b"omniroute agent tokens"
_KIND = signed_tokens.TokenKind(
    prefix=PREFIX,
    name="agent token",
    claims=Claims,
    subject="agent id",
    valid_subject=valid_agent_id,
    signature_hint=" (or the API token changed)",
)


class AgentToken(msgspec.Struct, frozen=True, kw_only=True):
    """A minted token, as ``POST /v1/agents/{id}/token`` answers it."""

    agent_id: str
    token: str
    expires_at: datetime


def derive_key(api_token: str) -> bytes:
    """The signing key: bound to the API token so that rotating it revokes agent tokens,
    and distinct from it so an agent token's signature says nothing about the API token."""
    return signed_tokens.derive_key(_KEY_LABEL, api_token)


def is_agent_token(token: str) -> bool:
    return token.startswith(PREFIX)


def mint(key: bytes, agent_id: str, *, now: datetime, ttl_s: float = DEFAULT_TTL_S) -> AgentToken:
    """A token for ``agent_id`` valid ``ttl_s`` seconds from ``now``."""
    if not valid_agent_id(agent_id):
        raise ValueError(f"invalid agent id {agent_id!r}")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be from 1 to {MAX_TTL_S}, not {ttl_s}")
    issued, expires = signed_tokens.lifetime(now, ttl_s)
    claims = Claims(sub=agent_id, iat=issued, exp=expires)
    token = _KIND.seal(key, claims)
    return AgentToken(agent_id=agent_id, token=token, expires_at=claims.expires_at)


def verify(key: bytes, token: str, *, now: datetime) -> Claims:
    """The token's claims if it is well formed, signed with ``key`` and not expired at
    ``now``; else ``Unauthorized`` saying which (never echoing the token)."""
    claims = _KIND.open(key, token)
    if claims.expired(now):
        expired = claims.expires_at.isoformat()
        raise Unauthorized(f"agent token for {claims.sub!r} expired at {expired}")
    return claims
