"""``[connectors.mailgun]`` (or ``OMNIROUTE_CONNECTORS_MAILGUN_<KEY>``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from connectors.checks import not_empty, positive
from connectors.email_hooks import CHECKS, EmailHookSettings
from router.settings import Secret


@dataclass(frozen=True, kw_only=True)
class MailgunSettings(EmailHookSettings):
    signing_key: Secret
    """The domain's HTTP webhook signing key (Mailgun: Sending > Webhooks, or the
    account's API security page): the HMAC key of every route POST's ``signature``."""
    max_age_s: int = 900
    """A request whose signed ``timestamp`` is further than this from the time it arrives
    is refused as stale; its ``token`` is remembered twice as long, so a token seen again
    with another body is refused as a replay."""

    # Not annotated: ``router.settings.build_table`` reads every annotation as a key.
    checks = MappingProxyType({**CHECKS, "signing_key": not_empty, "max_age_s": positive})
