"""The ``trust_from`` and ``authserv_ids`` settings every email way in has: their checks,
the mode an empty ``trust_from`` stands for, and the start-up warnings.

- webhooks (``postmark``, ``mailgun``, ``sendgrid``): ``trust_from`` defaults to
  ``authenticated``: the provider's own verdicts (SendGrid's ``dkim``, Mailgun's
  ``X-Mailgun-Dkim-Check-Result``, Postmark's ``X-Spam-Tests``) come with every mail.
- raw, SMTP, IMAP: the verdicts are the ``Authentication-Results`` the receiving server
  (your MX, your mailbox provider) stamps, readable only once its authserv-id is known.
  ``trust_from`` empty (the default) means ``authenticated`` when ``authserv_ids`` is
  set, else ``always``, with a warning at start-up: with no trusted receiver named there
  is nothing to verify a From with, and marking every sender unverified would stop email
  joining anyone's other channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from connectors.checks import Check
from connectors.email.auth import TRUST_FROM, TrustFrom
from connectors.email.fields import EmailOptions

log = structlog.get_logger("connectors.email")

AUTO = ""
"""``trust_from`` left empty: ``authenticated`` with ``authserv_ids``, else ``always``."""


def trust_from_check(auto: bool) -> Check:
    """The check of a ``trust_from`` value (empty allowed when ``auto``)."""
    allowed = (AUTO, *TRUST_FROM) if auto else TRUST_FROM

    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return "must be " + " or ".join(repr(a) for a in allowed if a)

    return check


def authserv_ids_check(value: Any) -> str | None:
    bad = [i for i in value if not i or any(c.isspace() or c in ';()"' for c in i)]
    return f"not authserv-ids (host names): {', '.join(map(repr, bad))}" if bad else None


TRUST_CHECKS: dict[str, Check] = {
    "trust_from": trust_from_check(auto=True),
    "authserv_ids": authserv_ids_check,
}
"""The checks of ``trust_from`` (empty allowed) and ``authserv_ids``."""


def trust_mode(trust_from: str, authserv_ids: Sequence[str]) -> TrustFrom:
    """The mode ``trust_from`` names; empty: ``authenticated`` when ``authserv_ids`` is
    set, else ``always``."""
    if trust_from == "always":
        return "always"
    if trust_from == "authenticated" or authserv_ids:
        return "authenticated"
    return "always"


def email_options(
    own_addresses: Sequence[str],
    max_attachment_bytes: int,
    trust_from: str,
    authserv_ids: Sequence[str],
) -> EmailOptions:
    """``EmailOptions`` from a way in's settings (``trust_from`` resolved)."""
    return EmailOptions(
        own_addresses=tuple(a.strip().lower() for a in own_addresses),
        max_attachment_bytes=max_attachment_bytes,
        trust_from=trust_mode(trust_from, authserv_ids),
        authserv_ids=tuple(i.strip().lower() for i in authserv_ids),
    )


def announce(
    connector: str, options: EmailOptions, *, provider_verdicts: bool = False
) -> str | None:
    """At start-up: warn when a From is taken as verified without proof, or when no From
    can ever be verified (``authenticated`` with nothing to read a verdict from). Once
    per connector and warning in a process (settings are checked, then built). The
    warning's event name, or None."""
    if options.trust_from == "always":
        event, hint = (
            "email.from_not_authenticated",
            "every From address is taken as verified, so a forged From joins that "
            "customer's history: set authserv_ids to your receiving server's authserv-id",
        )
    elif not provider_verdicts and not options.authserv_ids:
        event, hint = (
            "email.from_never_verified",
            "trust_from is authenticated but authserv_ids is empty: no verdict can be "
            "read, every sender stays unverified",
        )
    else:
        return None
    if (connector, event) not in _warned:
        _warned.add((connector, event))
        log.warning(event, connector=connector, hint=hint)
    return event


_warned: set[tuple[str, str]] = set()
