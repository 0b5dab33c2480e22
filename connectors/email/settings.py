"""``[connectors.email]``: the raw endpoint ``POST /v1/connectors/email/raw``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.checks import Check, positive
from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES, EmailOptions
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

    checks: ClassVar[dict[str, Check]] = {
        "own_addresses": _addresses,
        "max_attachment_bytes": positive,
        "max_body_bytes": positive,
    }

    @property
    def options(self) -> EmailOptions:
        return EmailOptions(
            own_addresses=tuple(a.strip().lower() for a in self.own_addresses),
            max_attachment_bytes=self.max_attachment_bytes,
        )
