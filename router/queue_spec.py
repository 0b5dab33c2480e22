"""What each configured queue promises: its calendar, default SLA policy and overflow.

Parsed from the ``[queues.<name>]`` tables of the configuration (``router.policy``
reads them); pure data, no I/O.
"""

from __future__ import annotations

from typing import Literal

import msgspec

OverflowAt = Literal["warning", "breach"]
OverflowMode = Literal["move", "also"]


class OverflowSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a waiting item goes when its queue cannot serve it in time, like a
    TaskRouter workflow's next target: after ``after_s`` seconds waiting and/or at the
    SLA ``at`` point, the item moves to (``move``) or is also offered in (``also``) the
    queue ``to``."""

    to: str
    after_s: int | None = None
    at: OverflowAt | None = None
    mode: OverflowMode = "move"


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    calendar: str = "always"
    """The business-hours calendar its SLA clocks count in (``always``: 24x7)."""
    sla: str | None = None
    """The SLA policy when no rule names one (None: the routing default)."""
    overflow: OverflowSpec | None = None
