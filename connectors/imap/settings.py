"""``[connectors.imap]``: the mailbox the poller reads, and how often."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from connectors.checks import not_negative, positive, tcp_port
from connectors.email import EmailOptions
from connectors.email.fields import DEFAULT_MAX_ATTACHMENT_BYTES
from connectors.email.trust import TRUST_CHECKS, email_options
from router.settings import Secret


def _mailbox(value: Any) -> str | None:
    if value and value.isascii() and value.isprintable():
        return None
    return "must be a printable ASCII mailbox name (as the server lists it)"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    password: Secret
    port: int = 993
    tls: bool = True
    """TLS from the first byte (port 993); false only for a server on loopback."""
    mailbox: str = "INBOX"
    poll_s: float = 60.0
    """How often to look for new mail when the server has no IDLE (or ``idle`` is false)."""
    idle: bool = True
    """Wait with IMAP IDLE when the server offers it: new mail is taken at once."""
    idle_renew_s: float = 29 * 60.0
    """IDLE is re-issued this often (servers may drop an IDLE after 30 minutes; lower it
    behind a NAT that forgets quiet connections sooner)."""
    own_addresses: tuple[str, ...] = ()
    trust_from: str = ""
    """``authenticated``: a From is verified only with a passing DMARC or aligned DKIM
    verdict from a trusted server; ``always``: every From is; empty: ``authenticated``
    once ``authserv_ids`` is set, else ``always`` (see the email connectors' README)."""
    authserv_ids: tuple[str, ...] = ()
    """The authserv-id(s) your mail server writes in ``Authentication-Results``
    (``mx.google.com`` for Gmail)."""
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    max_message_bytes: int = 25 * 1024 * 1024
    """A message larger than this (its ``RFC822.SIZE``) is not fetched: its header alone
    is quarantined, the message is marked read and stays in the mailbox."""
    since_days: int = 0
    """On a first run (no cursor yet, or a rebuilt mailbox), take only the unread mail
    that arrived within this many days (IMAP ``SINCE``, by the server's arrival date);
    older unread mail is left alone, unread. 0: every unread message."""
    timeout_s: float = 30.0
    """How long one IMAP command may take before the connection counts as lost."""
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    """After a lost connection, the pause before reconnecting starts at ``reconnect_min_s``
    and doubles with each failure in a row, up to ``reconnect_max_s``."""

    checks = MappingProxyType(
        {
            "port": tcp_port,
            "mailbox": _mailbox,
            "poll_s": positive,
            "idle_renew_s": positive,
            "max_attachment_bytes": positive,
            "max_message_bytes": positive,
            "since_days": not_negative,
            "timeout_s": positive,
            "reconnect_min_s": positive,
            "reconnect_max_s": positive,
            **TRUST_CHECKS,
        }
    )

    @property
    def options(self) -> EmailOptions:
        return email_options(
            self.own_addresses, self.max_attachment_bytes, self.trust_from, self.authserv_ids
        )

    @property
    def cursor_key(self) -> str:
        return f"imap:{self.user}@{self.host}/{self.mailbox}"
