"""``[connectors.webchat]``: the website chat widget's visitor tokens and limits."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from connectors.checks import not_negative, positive
from router.settings import Secret

MIN_SECRET_CHARS = 32


def _secret(value: Any) -> str | None:
    if len(value.get()) < MIN_SECRET_CHARS:
        return f"must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)"
    return None


def _origins(value: Any) -> str | None:
    bad = [origin for origin in value if normalize_origin(origin) is None]
    if bad:
        return f"not an origin (scheme://host[:port], no path): {', '.join(map(repr, bad))}"
    return None


def normalize_origin(origin: str) -> str | None:
    """``https://Shop.Example.com:443/`` → ``https://shop.example.com``; None when the
    text is not an origin (an http or https scheme and a host, nothing after them)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{parts.hostname}{suffix}"


@dataclass(frozen=True)
class WebChatSettings:
    secret: Secret
    """The HMAC-SHA256 key of visitor tokens (at least 32 characters). Its own key, not
    the API token's: rotating the administrator's token does not sign out every visitor,
    and rotating this one signs out visitors only."""
    token_ttl_s: int = 24 * 3600
    """How long a visitor token is valid; the widget renews it with
    ``POST /v1/chat/sessions {"visitor_token": ...}`` before then."""
    allowed_origins: tuple[str, ...] = ()
    """The sites the widget may run on (``https://shop.example.com``): checked against
    the ``Origin`` header of ``/v1/chat/sessions`` and ``/v1/chat/ws``. Empty: any."""
    max_message_chars: int = 5000
    max_attachment_bytes: int = 5 * 1024 * 1024
    """The attachment contents (base64 ``data``) one message may carry; 0: links only."""
    sessions_per_minute: int = 20
    """Sessions one client address may start a minute (bursts of as many); 0: no limit.
    Behind a proxy every visitor shares its address: raise it, or have the proxy limit."""
    messages_per_minute: int = 30
    """Messages one visitor may send a minute (bursts of as many); 0: no limit."""

    # not annotated: ``router.settings.build_table`` reads every annotated name as a key
    checks = MappingProxyType(
        {
            "secret": _secret,
            "token_ttl_s": positive,
            "allowed_origins": _origins,
            "max_message_chars": positive,
            "max_attachment_bytes": not_negative,
            "sessions_per_minute": not_negative,
            "messages_per_minute": not_negative,
        }
    )

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(o for o in map(normalize_origin, self.allowed_origins) if o)
