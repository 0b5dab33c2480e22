"""``[connectors.email]``: the raw endpoint ``POST /v1/connectors/email/raw``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.checks import Check, positive
from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES, EmailOptions
from connectors.email.trust import TRUST_CHECKS, email_options
from router.errors import InvalidIdentity
from router.identity import normalize
from router.models import IdentityIn


def _addresses(value: Any) -> str | None:
    for address in value:
        try:
            normalize(IdentityIn(kind="email", value=address))
        except InvalidIdentity:
            return f"{address!r} is not an email address"
        if "+" in address.partition("@")[0]:
            return f"{address!r}: give the address without a +tag (tokens are added to it)"
    return None


@dataclass(frozen=True)
class EmailSettings:
    own_addresses: tuple[str, ...] = ()
    """The support addresses omniroute receives at (see ``EmailOptions``)."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    max_body_bytes: int = 25 * 1024 * 1024
    """The largest raw message ``POST /v1/connectors/email/raw`` takes (413 above)."""
    trust_from: str = ""
    """``authenticated``, ``always``, or empty: ``authenticated`` when ``authserv_ids`` is
    set, else ``always`` (see ``connectors.email.trust``)."""
    authserv_ids: tuple[str, ...] = ()
    """The authserv-ids of the servers whose ``Authentication-Results`` are trusted (the
    MTA that pipes mail to the raw endpoint)."""

    checks: ClassVar[dict[str, Check]] = {
        "own_addresses": _addresses,
        "max_attachment_bytes": positive,
        "max_body_bytes": positive,
        **TRUST_CHECKS,
    }

    @property
    def options(self) -> EmailOptions:
        return email_options(
            self.own_addresses, self.max_attachment_bytes, self.trust_from, self.authserv_ids
        )
