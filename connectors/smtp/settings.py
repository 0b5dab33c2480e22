"""``[connectors.smtp]``: where the listener binds, whom it takes mail for, how much."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from connectors.checks import addresses, positive, tcp_port
from connectors.email import EmailOptions
from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES
from connectors.email.trust import TRUST_CHECKS, email_options


def _domains(value: Any) -> str | None:
    bad = [d for d in value if not d or "@" in d or " " in d]
    return f"not domain names: {', '.join(map(repr, bad))}" if bad else None


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    """The address the listener binds."""
    port: int = 2525
    own_addresses: tuple[str, ...] = ()
    """The support addresses (see ``EmailOptions``); mail for them is accepted too."""
    accept_domains: tuple[str, ...] = ()
    """Mail for any address at these domains is accepted (``acme.example``)."""
    recipients: tuple[str, ...] = ()
    """Mail for these addresses (and their plus-addresses) is accepted; any other
    recipient gets 550: the listener is never an open relay."""
    max_message_bytes: int = 25 * 1024 * 1024
    """A larger message gets 552 (announced as the ESMTP ``SIZE``)."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    hostname: str = ""
    """The name in the greeting and ``EHLO`` answer; empty: this machine's host name."""
    trust_from: str = ""
    """``authenticated``, ``always``, or empty: ``authenticated`` when ``authserv_ids`` is
    set, else ``always`` (see ``connectors.email.trust``)."""
    authserv_ids: tuple[str, ...] = ()
    """The authserv-id(s) your MX writes in its ``Authentication-Results`` headers."""

    checks = MappingProxyType(
        {
            "port": tcp_port,
            "max_message_bytes": positive,
            "max_attachment_bytes": positive,
            "accept_domains": _domains,
            "recipients": addresses,
            "own_addresses": addresses,
            **TRUST_CHECKS,
        }
    )

    @property
    def options(self) -> EmailOptions:
        return email_options(
            self.own_addresses, self.max_attachment_bytes, self.trust_from, self.authserv_ids
        )
