"""Escalation timers on SQLite: one row per ``Timer.key``, ordered by when it is due.

Times are integer microseconds since the epoch (exact for any ``datetime``), so the due
check ``at <= now`` is exact. Firing deletes the rows it returns in the same statement
inside a ``BEGIN IMMEDIATE`` transaction: another connection on the file (another
process) waits for the write lock and then sees them gone, so each timer fires once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import msgspec

from router.models import Timer

from .sqlite_read import encode

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

decode_timer = msgspec.json.Decoder(Timer).decode

_ARM = """INSERT INTO timers (key, at_us, body) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET at_us = excluded.at_us, body = excluded.body"""
_DISARM = "DELETE FROM timers WHERE key = ?"
_FIRE = """DELETE FROM timers WHERE key IN (SELECT key FROM timers WHERE at_us <= ?
    ORDER BY at_us, key LIMIT ?) RETURNING at_us, key, body"""
_NEXT = "SELECT MIN(at_us) FROM timers"


def to_us(when: datetime) -> int:
    return (when - _EPOCH) // _US


def from_us(us: int) -> datetime:
    return _EPOCH + us * _US


def arm(db: sqlite3.Connection, timers: Iterable[Timer]) -> None:
    """Arm each timer; one armed under the same key before is moved."""
    db.executemany(_ARM, [(t.key, to_us(t.at), encode(t)) for t in timers])


def disarm(db: sqlite3.Connection, keys: Iterable[str]) -> None:
    db.executemany(_DISARM, [(key,) for key in keys])


def fire(db: sqlite3.Connection, now: datetime, limit: int) -> list[Timer]:
    """Remove and return the due timers, earliest first (the caller holds the write
    transaction)."""
    rows = db.execute(_FIRE, (to_us(now), limit)).fetchall()
    rows.sort(key=lambda row: (row[0], row[1]))  # RETURNING has no order of its own
    return [decode_timer(body) for _, _, body in rows]


def next_due(db: sqlite3.Connection) -> datetime | None:
    (at_us,) = db.execute(_NEXT).fetchone()
    return None if at_us is None else from_us(at_us)
