"""Identifiers: time-ordered, URL-safe, unique across processes.

An id is ``<prefix>_<26 chars>``: 48 bits of milliseconds and 80 random bits in
base32hex (``0-9a-v``), so ids sort by creation time. One message draws one suffix and
derives the ids of everything it may create (customer, conversation, item) from it: each
message creates at most one of each, so they stay unique.
"""

from __future__ import annotations

import base64
import os
import time


def new_suffix() -> str:
    ms = time.time_ns() // 1_000_000
    raw = (ms & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + os.urandom(10)
    return base64.b32hexencode(raw).decode("ascii")[:26].lower()


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_suffix()}"
