"""``[connectors.mailgun]`` (or ``OMNIROUTE_CONNECTORS_MAILGUN_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from connectors.checks import positive
from connectors.email_hooks import CHECKS, EmailHookSettings
from router.settings import Secret

RETRY_WINDOW_S = 8 * 3600 + 15 * 60
"""Mailgun retries a failed route POST for 8 hours; a quarter of an hour more for clocks
and the last attempt's own delay."""
NO_KEY = Secret("")


@dataclass(frozen=True, kw_only=True)
class MailgunSettings(EmailHookSettings):
    signing_key: Secret = NO_KEY
    """The HTTP webhook signing key (Mailgun: Sending > Webhooks, or the account's API
    security page): the HMAC key of every route POST's ``signature``."""
    parent_signing_key: Secret = NO_KEY
    """For a subaccount's domain: the primary account's signing key, checked against the
    ``parent-signature`` Mailgun adds (either signature is enough). Set this, or
    ``signing_key``, or both."""
    max_age_s: int = RETRY_WINDOW_S
    """A request whose signed ``timestamp`` is further than this from the time it arrives
    is refused as stale (logged at warning). The default covers Mailgun's whole retry
    schedule (8 hours), so a POST refused during an outage is taken when it comes back;
    replay is stopped by the ``token``: remembered twice as long, a token seen again
    with another mail is refused."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({**CHECKS, "max_age_s": positive})
