"""Signed tokens: ``<prefix><payload>.<signature>``, checked by any process on its own.

``payload`` is base64url (unpadded) JSON claims (at least ``{"sub", "iat", "exp"}``, unix
seconds) and ``signature`` is base64url HMAC-SHA256 of the payload text, under a key
derived from a secret with a label of the token kind's own. ``router.agent_tokens``
(``agt.``) and ``connectors.webchat.tokens`` (``wct.``) are the two kinds: each has its
prefix, label, claims type and subject rule, so one kind's token never passes for the
other's. Pure: the time is given, nothing is stored, no I/O library is imported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec

from router.errors import Unauthorized

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Claims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What every token says: who (``sub``), issued and expiring at (unix seconds)."""

    sub: str
    iat: int
    exp: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, tz=UTC)

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.exp


C = TypeVar("C", bound=Claims)


def derive_key(label: bytes, secret: str) -> bytes:
    """A signing key bound to ``secret`` (changing it revokes every token) under
    ``label``, so a signature says nothing about the secret and the same secret used
    for another kind never signs a token that passes for this one."""
    return hmac.new(label, secret.encode(), hashlib.sha256).digest()


def lifetime(now: datetime, ttl_s: float) -> tuple[int, int]:
    """``(iat, exp)`` of a token issued at ``now`` valid ``ttl_s`` seconds."""
    issued = int(now.timestamp())
    return issued, issued + int(ttl_s)


def signature(key: bytes, payload: str) -> str:
    """The signature part for the payload part ``payload``."""
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class TokenKind(Generic[C]):
    """One kind of token; its errors read ``malformed <name>: ...``, never echoing it."""

    prefix: str
    """``agt.``: what the token starts with."""
    name: str
    """``agent token``: how errors name the token."""
    claims: type[C]
    subject: str
    """``agent id``: how errors name ``sub``."""
    valid_subject: Callable[[str], object]
    signature_hint: str = ""
    """Added to the bad-signature error: `` (or the API token changed)``."""

    def seal(self, key: bytes, claims: C) -> str:
        """The token carrying ``claims``, signed with ``key``."""
        payload = _b64(msgspec.json.encode(claims))
        return f"{self.prefix}{payload}.{signature(key, payload)}"

    def open(self, key: bytes, token: str) -> C:
        """The claims of a well-formed token signed with ``key``; ``Unauthorized`` else.
        Expiry is the caller's to check (``Claims.expired``), with its own words."""
        payload, signed = self._split(token)
        if not hmac.compare_digest(signed.encode(), signature(key, payload).encode()):
            raise Unauthorized(f"invalid {self.name}: bad signature{self.signature_hint}")
        return self._claims(payload)

    def _split(self, token: str) -> tuple[str, str]:
        parts = token.removeprefix(self.prefix).split(".")
        well_formed = len(parts) == 2 and all(map(_B64URL.fullmatch, parts))
        if not token.startswith(self.prefix) or not well_formed:
            expected = f"{self.prefix}<payload>.<signature>"
            raise Unauthorized(f"malformed {self.name}: expected {expected}")
        return parts[0], parts[1]

    def _claims(self, payload: str) -> C:
        try:
            found = msgspec.json.decode(_unb64(payload), type=self.claims)
        except (binascii.Error, ValueError, msgspec.MsgspecError):
            raise Unauthorized(f"malformed {self.name}: unreadable payload") from None
        if not self.valid_subject(found.sub):
            raise Unauthorized(f"malformed {self.name}: invalid {self.subject}")
        return found


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
