"""``[connectors.sendgrid]`` (or ``OMNIROUTE_CONNECTORS_SENDGRID_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from connectors.checks import not_negative
from connectors.email_hooks import CHECKS, EmailHookSettings
from connectors.sendgrid.signature import load_key
from router.settings import Secret

NO_PASSWORD = Secret("")


def _username(value: Any) -> str | None:
    return "must not contain ':' (HTTP basic auth)" if ":" in value else None


def _key(value: Any) -> str | None:
    if not value:
        return None
    try:
        load_key(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, kw_only=True)
class SendGridSettings(EmailHookSettings):
    username: str = ""
    """HTTP basic auth user name in the Inbound Parse destination URL (empty: none)."""
    password: Secret = NO_PASSWORD
    verification_key: str = ""
    """The public key of the parse webhook's security policy with signature verification
    (base64, as SendGrid returns it; PEM works too). Empty: signatures are not checked."""
    max_age_s: int = 0
    """With ``verification_key``: refuse a signed timestamp further than this from the
    time the request arrives; 0: any age (SendGrid retries for up to three days)."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType(
        {**CHECKS, "username": _username, "verification_key": _key, "max_age_s": not_negative}
    )
