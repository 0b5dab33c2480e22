"""The pure parts of the IMAP poller: reading the server's answers (as aioimaplib hands
them over: a list of lines, literals as ``bytearray``), the search date, the cursor, the
backoff, and what is kept of a message too large to take."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from connectors.base import Parsed, Quarantined
from connectors.email.headers import decoded, split_headers

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]", re.IGNORECASE)
_BODY_LITERAL = re.compile(rb"BODY\[\] \{\d+\}$", re.IGNORECASE)
_HEADER_LITERAL = re.compile(rb"BODY\[HEADER\] \{\d+\}$", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Lines = Sequence[bytes | bytearray]


def uidvalidity(lines: Lines) -> int | None:
    """``OK [UIDVALIDITY 1795388948] UIDs valid`` in a SELECT answer."""
    return _code(_UIDVALIDITY, lines)


def uidnext(lines: Lines) -> int | None:
    """``OK [UIDNEXT 42] Predicted next UID`` in a SELECT answer."""
    return _code(_UIDNEXT, lines)


def _code(pattern: re.Pattern[bytes], lines: Lines) -> int | None:
    for line in lines:
        if isinstance(line, bytes) and (found := pattern.search(line)):
            return int(found.group(1))
    return None


def search_uids(lines: Lines) -> list[int]:
    """The UIDs of a ``UID SEARCH`` answer, ascending. aioimaplib gives the untagged
    ``* SEARCH 3 7`` as ``3 7`` and the tagged completion text last."""
    uids = {int(word) for line in lines[:-1] for word in bytes(line).split() if word.isdigit()}
    return sorted(uids)


def fetched_body(lines: Lines) -> bytes | None:
    """The ``BODY[]`` literal of a one-message ``UID FETCH``; None when the server sent
    none (the message was expunged meanwhile)."""
    return _literal(_BODY_LITERAL, lines)


def fetched_header(lines: Lines) -> bytes | None:
    """The ``BODY[HEADER]`` literal of a one-message ``UID FETCH``; None when none came."""
    return _literal(_HEADER_LITERAL, lines)


def _literal(opening: re.Pattern[bytes], lines: Lines) -> bytes | None:
    for line, following in itertools.pairwise(lines):
        if isinstance(line, bytes) and opening.search(line):
            return bytes(following)
    return None


def fetched_size(lines: Lines) -> int | None:
    """``RFC822.SIZE`` of a one-message ``UID FETCH``; None when the server sent none."""
    return _code(_SIZE, lines)


def imap_date(day: date) -> str:
    """A ``SEARCH`` date (RFC 3501 ``date``): ``1-Nov-2026``, month names in English
    whatever the locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def oversized(header: bytes, size: int, limit: int) -> Parsed:
    """A message over ``max_message_bytes``, never fetched: its header, quarantined, so
    an operator sees who wrote what and can read the rest in the mailbox."""
    fields: dict[str, str] = {}
    for name, value in split_headers(header):
        fields.setdefault(name.lower(), value)
    summary = {
        "from": fields.get("from"),
        "subject": decoded(fields.get("subject")),
        "message_id": fields.get("message-id"),
        "size": str(size),
    }
    held = Quarantined(
        reason=f"message of {size} bytes is over max_message_bytes ({limit}): only its "
        "header is kept, the message stays in the mailbox",
        raw=header,
        content_type="text/rfc822-headers",
        summary={key: value for key, value in summary.items() if value},
    )
    return Parsed(quarantined=[held])


@dataclass(frozen=True)
class Cursor:
    """Where a mailbox was left: every UID up to ``last_uid`` of this ``uidvalidity`` is
    stored. Kept as ``<uidvalidity>:<last uid>``."""

    uidvalidity: int
    last_uid: int

    def encode(self) -> str:
        return f"{self.uidvalidity}:{self.last_uid}"

    @classmethod
    def decode(cls, value: str | None) -> Cursor | None:
        """None for a missing or unreadable value (the mailbox is then read afresh)."""
        validity, sep, last = (value or "").partition(":")
        if not sep or not validity.isdigit() or not last.isdigit():
            return None
        return cls(int(validity), int(last))


def backoff_s(failures: int, min_s: float, max_s: float) -> float:
    """The pause before reconnecting after ``failures`` failures in a row: ``min_s``
    doubling each time, at most ``max_s``."""
    if failures <= 0:
        return 0.0
    return float(min(max_s, min_s * 2 ** min(failures - 1, 32)))
