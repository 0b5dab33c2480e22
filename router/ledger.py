"""The connectors' ledger: what the channels tell omniroute besides messages.

Delivery states of the messages a provider reports on (WhatsApp ``statuses``), the
quarantine of inbound messages that could not be parsed, the nonces of signed webhooks
that must not be replayed (Mailgun's tokens), and small cursors a poller keeps (the IMAP
UIDs it has stored). A port with a production implementation (``RedisLedger``) and an
embedded one (``SqliteLedger``) and one contract suite (``tests/contract/test_ledger.py``).
Implementations raise only ``router.errors`` exceptions (``BackendUnavailable``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

import msgspec

from router.models import DeliveryStatus


class DeliveryReport(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A provider's report on a message it carried (sent, delivered, read, failed)."""

    source: str
    external_id: str
    """The provider's id of the message reported on (a WhatsApp ``wamid``)."""
    status: DeliveryStatus
    at: datetime
    recipient: str | None = None
    """Whom the message was for, as the provider names them (masked in logs)."""
    error: str | None = None
    """The provider's error code and title, for ``failed``."""


class QuarantineEntry(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An inbound message no parser could make sense of, kept for an operator."""

    quarantine_id: str
    connector: str
    reason: str
    received_at: datetime
    size: int
    blob: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    """SHA-256 of the raw content, kept in the attachment directory."""
    content_type: str = "application/octet-stream"
    summary: dict[str, str] = {}
    """What could be read (``from``, ``subject``, ``message_id``), for the list view."""


class QuarantinePage(msgspec.Struct, kw_only=True):
    entries: list[QuarantineEntry]
    next_before: str | None = None
    """Cursor for the next (older) page; None on the last page."""


class Ledger(Protocol):
    async def open(self) -> None:
        """Connect or create the schema. Idempotent."""
        ...

    async def close(self) -> None: ...

    async def record_delivery(self, report: DeliveryReport) -> bool:
        """Keep the report; False (and nothing kept) when the same ``(source,
        external_id, status)`` was already recorded (a provider re-delivery): the first
        report of a status stays."""
        ...

    async def deliveries(self, source: str, external_id: str) -> list[DeliveryReport]:
        """The reports on one message, oldest ``at`` first (reports with the same ``at``
        in the order of ``DeliveryStatus``); empty when there are none."""
        ...

    async def quarantine(self, entry: QuarantineEntry) -> None:
        """Keep the entry (a second one with the same ``quarantine_id`` replaces it)."""
        ...

    async def quarantined(self, *, limit: int, before: str | None = None) -> QuarantinePage:
        """Entries newest ``received_at`` first (then ``quarantine_id``, descending);
        ``before`` is a cursor from a previous page, still valid when the entry it came
        from was dropped or replaced since. ``InputError`` for a malformed cursor or a
        ``limit`` below 1; a page holds at most 1000 entries whatever ``limit`` says."""
        ...

    async def get_quarantined(self, quarantine_id: str) -> QuarantineEntry | None: ...

    async def drop_quarantined(self, quarantine_id: str) -> bool:
        """Forget the entry (an operator dealt with it); False when unknown."""
        ...

    async def claim_nonce(
        self, scope: str, nonce: str, *, fingerprint: str, expires_at: datetime, now: datetime
    ) -> bool:
        """Atomically claim a signed request's one-time value. True when the nonce is new
        (or expired: its claim is renewed), or was claimed with the same ``fingerprint``
        (the provider retrying the same request); False when it was claimed with another
        fingerprint: a replay with a different body. Across processes, two claims of one
        new nonce with different fingerprints: exactly one wins.

        A claim holds while ``now < expires_at`` of the claim that took it; a retry with
        the same fingerprint answers True and leaves that ``expires_at`` as it was."""
        ...

    async def get_cursor(self, key: str) -> str | None:
        """A poller's saved position (``imap:<account>:<mailbox>``); None if never set."""
        ...

    async def set_cursor(self, key: str, value: str) -> None: ...
