"""``[connectors.email]``: the raw endpoint ``POST /v1/connectors/email/raw``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES, EmailOptions


@dataclass(frozen=True)
class EmailSettings:
    own_addresses: tuple[str, ...] = ()
    """The support addresses omniroute receives at (see ``EmailOptions``)."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    max_body_bytes: int = 25 * 1024 * 1024
    """The largest raw message ``POST /v1/connectors/email/raw`` takes (413 above)."""

    checks: ClassVar[dict[str, Callable[[Any], str | None]]] = {}

    @property
    def options(self) -> EmailOptions:
        return EmailOptions(
            own_addresses=self.own_addresses, max_attachment_bytes=self.max_attachment_bytes
        )
