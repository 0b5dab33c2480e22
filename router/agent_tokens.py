"""Per-agent tokens: an agent tool authenticates as one agent, not as the administrator.

A token is ``agt.<payload>.<signature>``: ``payload`` is base64url (unpadded) JSON
``{"sub": agent_id, "iat": unix s, "exp": unix s}`` and ``signature`` is base64url
HMAC-SHA256 of the payload text under a key derived from the API token, so the daemon
keeps no token list and rotating the API token revokes every agent token at once.
Pure: the time is given, nothing is stored, no I/O library is imported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime

import msgspec

from router.errors import Unauthorized
from router.queue_spec import valid_agent_id

PREFIX = "agt."
DEFAULT_TTL_S = 30 * 86400
MAX_TTL_S = 365 * 86400
_KEY_LABEL = b"omniroute agent tokens"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Claims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a token says: who (``sub``), issued and expiring at (unix seconds)."""

    sub: str
    iat: int
    exp: int


class AgentToken(msgspec.Struct, frozen=True, kw_only=True):
    """A minted token, as ``POST /v1/agents/{id}/token`` answers it."""

    agent_id: str
    token: str
    expires_at: datetime


def derive_key(api_token: str) -> bytes:
    """The signing key: bound to the API token so that rotating it revokes agent tokens,
    and distinct from it so an agent token's signature says nothing about the API token."""
    return hmac.new(_KEY_LABEL, api_token.encode(), hashlib.sha256).digest()


def is_agent_token(token: str) -> bool:
    return token.startswith(PREFIX)


def mint(key: bytes, agent_id: str, *, now: datetime, ttl_s: float = DEFAULT_TTL_S) -> AgentToken:
    """A token for ``agent_id`` valid ``ttl_s`` seconds from ``now``."""
    if not valid_agent_id(agent_id):
        raise ValueError(f"invalid agent id {agent_id!r}")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be from 1 to {MAX_TTL_S}, not {ttl_s}")
    issued = int(now.timestamp())
    claims = Claims(sub=agent_id, iat=issued, exp=issued + int(ttl_s))
    payload = _b64(msgspec.json.encode(claims))
    token = f"{PREFIX}{payload}.{_sign(key, payload)}"
    return AgentToken(
        agent_id=agent_id, token=token, expires_at=datetime.fromtimestamp(claims.exp, tz=UTC)
    )


def verify(key: bytes, token: str, *, now: datetime) -> Claims:
    """The token's claims if it is well formed, signed with ``key`` and not expired at
    ``now``; else ``Unauthorized`` saying which (never echoing the token)."""
    payload, signature = _split(token)
    if not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        raise Unauthorized("invalid agent token: bad signature (or the API token changed)")
    claims = _claims(payload)
    if now.timestamp() >= claims.exp:
        expired = datetime.fromtimestamp(claims.exp, tz=UTC).isoformat()
        raise Unauthorized(f"agent token for {claims.sub!r} expired at {expired}")
    return claims


def _split(token: str) -> tuple[str, str]:
    parts = token.removeprefix(PREFIX).split(".")
    if not is_agent_token(token) or len(parts) != 2 or not all(map(_B64URL.fullmatch, parts)):
        raise Unauthorized("malformed agent token: expected agt.<payload>.<signature>")
    return parts[0], parts[1]


def _claims(payload: str) -> Claims:
    try:
        claims = msgspec.json.decode(_unb64(payload), type=Claims)
    except (binascii.Error, ValueError, msgspec.MsgspecError):
        raise Unauthorized("malformed agent token: unreadable payload") from None
    if not valid_agent_id(claims.sub):
        raise Unauthorized("malformed agent token: invalid agent id")
    return claims


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
