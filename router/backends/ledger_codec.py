"""What both ledgers share: the records' JSON, the quarantine's order and cursors, and
the order of a message's delivery reports, so ``SqliteLedger`` and ``RedisLedger`` read
the ``Ledger`` port (``router/ledger.py``) the same way.

A quarantined entry's *position* is ``"<18-digit µs since 0001-01-01 UTC>:<id>"``: the
byte order of positions is the list's order read backwards (``received_at``, then
``quarantine_id``), and a page's ``next_before`` is the position of its last entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, get_args

import msgspec

from router.errors import InputError
from router.ledger import DeliveryReport, QuarantineEntry
from router.models import DeliveryStatus

MAX_PAGE: Final = 1000
"""Entries per quarantine page at most: a larger ``limit`` reads this many."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_YEAR_1_US: Final = 62_135_596_800_000_000  # from 0001-01-01 to the epoch: positions >= 0
_US: Final = timedelta(microseconds=1)
_POSITION: Final = re.compile(r"\d{18}:[^\x00]+\Z")
# A tie on ``at`` lists the reports in the order a message goes through them.
_STATUS_RANK: Final = {status: rank for rank, status in enumerate(get_args(DeliveryStatus))}

encode: Final = msgspec.json.Encoder().encode
decode_report: Final = msgspec.json.Decoder(DeliveryReport).decode
decode_entry: Final = msgspec.json.Decoder(QuarantineEntry).decode


def to_us(when: datetime) -> int:
    """Microseconds since the epoch (a naive time is read as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _US


def position(entry: QuarantineEntry) -> str:
    return f"{to_us(entry.received_at) + _YEAR_1_US:018d}:{entry.quarantine_id}"


def page_size(limit: int) -> int:
    if limit < 1:
        raise InputError("quarantine limit must be at least 1")
    return min(limit, MAX_PAGE)


def checked_cursor(before: str | None) -> str | None:
    """``before`` as given, after checking it is a position; ``InputError`` if not."""
    if before is not None and not _POSITION.match(before):
        raise InputError("quarantine cursor is malformed; use a page's next_before as given")
    return before


def in_order(reports: Iterable[DeliveryReport]) -> list[DeliveryReport]:
    """Oldest ``at`` first; on a tie, in the order of ``DeliveryStatus``."""
    return sorted(reports, key=lambda report: (report.at, _STATUS_RANK[report.status]))
