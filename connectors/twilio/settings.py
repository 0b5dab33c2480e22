"""``[connectors.twilio]`` (or ``OMNIROUTE_CONNECTORS_TWILIO_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from connectors.checks import body_limit
from router.settings import Secret


def _webhook_url(value: Any) -> str | None:
    if not value or urlsplit(value).scheme in ("http", "https"):
        return None
    return "must be the full URL configured in Twilio, starting with https://"


@dataclass(frozen=True)
class TwilioSettings:
    auth_token: Secret
    """The account's (primary) Auth Token: the key of ``X-Twilio-Signature``."""
    webhook_url: str = ""
    """The exact URL configured in the Twilio console, query string included: Twilio
    signs it. Empty: ``http.public_url`` + the request's path and query."""
    max_body_bytes: int = 64 * 1024
    """Twilio's posts are a few KB (the longest, a 4096-character WhatsApp text of
    percent-encoded CJK, stays under 40 KB), so anything larger is refused (413) before
    the signature is checked; 0: ``http.max_body_bytes``."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({"webhook_url": _webhook_url, "max_body_bytes": body_limit})
