"""What the Meta connectors (``whatsapp``, ``messenger``, ``instagram``) share.

- The webhook signature: ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the
  raw body with the app secret, checked before anything is parsed.
- The subscription handshake: ``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``
  answered with the challenge (text/plain) when the token is the configured one.
- Their common settings and Meta's timestamps (seconds or milliseconds).
- Parsing helpers: one malformed part of a verified body (``Malformed``) is quarantined
  while the rest is stored; a message built in Python is ``checked`` against the
  canonical model's limits, as a decoded one would be.

Meta signs no timestamp, so there is no staleness check: a replayed request only
repeats messages the daemon already stores once (dedupe on the provider's message id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

import msgspec

from connectors.base import (
    Manifest,
    Quarantined,
    Reply,
    Service,
    Verified,
    WebhookRequest,
    hmac_hex,
    require_equal,
)
from connectors.checks import Check, body_limit, not_empty
from router.errors import InputError, Unauthorized
from router.models import InboundMessage
from router.settings import Secret

SIGNATURE_HEADER = "X-Hub-Signature-256"

T = TypeVar("T")


@dataclass(frozen=True)
class MetaSettings:
    """Settings every Meta connector takes (each connector's settings extend these)."""

    app_secret: Secret
    """The Meta app's secret (App settings > Basic): the key of ``X-Hub-Signature-256``."""
    verify_token: Secret
    """Any string you choose, entered as the webhook's "Verify token" in the app dashboard."""
    max_body_bytes: int = 0
    """A body limit for this webhook; 0: ``http.max_body_bytes``."""

    checks: ClassVar[dict[str, Check]] = {
        "app_secret": not_empty,
        "verify_token": not_empty,
        "max_body_bytes": body_limit,
    }


def signature(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac_hex(app_secret.encode(), body)


def verify_signature(request: WebhookRequest, app_secret: Secret) -> Verified:
    """``Unauthorized`` unless ``X-Hub-Signature-256`` signs the raw body with the secret."""
    given = request.header(SIGNATURE_HEADER)
    if given is None:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header")
    if not given.startswith("sha256="):
        raise Unauthorized(f"{SIGNATURE_HEADER} must read sha256=<hex digest>")
    expected = signature(request.body, app_secret.get())
    require_equal(given.strip().lower(), expected, f"{SIGNATURE_HEADER} signature")
    return Verified()


def subscription_reply(request: WebhookRequest, verify_token: Secret) -> Reply:
    """Echo ``hub.challenge`` for ``hub.mode=subscribe`` with the configured verify token."""
    mode = request.query_value("hub.mode")
    if mode != "subscribe":
        raise InputError("expected Meta's subscription check: hub.mode=subscribe")
    require_equal(request.query_value("hub.verify_token"), verify_token.get(), "hub.verify_token")
    challenge = request.query_value("hub.challenge")
    if not challenge:
        raise InputError("missing hub.challenge")
    return Reply(body=challenge.encode(), content_type="text/plain")


class MetaWebhook:
    """``verify`` and ``handshake`` for a connector whose ``settings`` are ``MetaSettings``."""

    manifest: ClassVar[Manifest]
    settings: MetaSettings

    def verify(self, request: WebhookRequest) -> Verified:
        return verify_signature(request, self.settings.app_secret)

    def handshake(self, request: WebhookRequest) -> Reply:
        return subscription_reply(request, self.settings.verify_token)

    def service(self) -> Service | None:
        return None


_MS_THRESHOLD = 100_000_000_000
"""Above this a Meta timestamp is in milliseconds (Messenger), below in seconds (WhatsApp)."""


def meta_time(value: str | int | float | None) -> datetime | None:
    """A Meta timestamp (Unix seconds or milliseconds, number or digit string) as UTC;
    None when absent or not a time."""
    if isinstance(value, str):
        value = int(value) if value.strip().isdigit() else None
    if value is None or isinstance(value, bool) or value <= 0:
        return None
    seconds = value / 1000 if value > _MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class Malformed(ValueError):
    """A part of a verified body that does not fit the provider's format: that part is
    quarantined, the rest of the request is stored."""


def checked(message: InboundMessage) -> InboundMessage:
    """The message, validated against the canonical model's limits (a struct built in
    Python is not); ``Malformed`` naming the field that does not fit."""
    try:
        return msgspec.convert(msgspec.to_builtins(message), InboundMessage)
    except msgspec.ValidationError as exc:
        raise Malformed(f"message does not fit the canonical model: {exc}") from None


def quarantined(reason: str, raw: bytes) -> Quarantined:
    return Quarantined(reason=reason, raw=raw, content_type="application/json")


def decode_body(body: bytes, envelope: type[T], provider: str) -> T:
    """The request's top level; ``InputError`` (400) when it is not the provider's JSON."""
    try:
        return msgspec.json.decode(body, type=envelope)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InputError(f"body is not a {provider} webhook: {exc}") from None


def clip(text: str | None, limit: int = 512) -> str | None:
    """A display string cut to the canonical model's limit (names, file names)."""
    return None if text is None else text[:limit]
