"""``[connectors.postmark]`` (or ``OMNIROUTE_CONNECTORS_POSTMARK_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from connectors.checks import not_empty
from connectors.email_hooks import CHECKS, EmailHookSettings
from router.settings import Secret


def _username(value: Any) -> str | None:
    if not value:
        return "must not be empty"
    return "must not contain ':' (HTTP basic auth)" if ":" in value else None


@dataclass(frozen=True, kw_only=True)
class PostmarkSettings(EmailHookSettings):
    username: str
    """The HTTP basic auth user name in the inbound webhook URL."""
    password: Secret
    """The HTTP basic auth password in the inbound webhook URL."""
    use_raw_email: bool = True
    """When the payload carries ``RawEmail`` (the server's "include raw email content"
    option, ``RawEmailEnabled``), parse that instead of Postmark's fields."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({**CHECKS, "username": _username, "password": not_empty})
