"""What each configured queue promises: its calendar, default SLA policy and overflow.

Parsed from the ``[queues.<name>]`` tables of the configuration (``router.policy``
reads them); pure data, no I/O.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

AGENT_QUEUE_PREFIX = "agent."
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}")


def agent_queue(agent_id: str) -> str:
    """An agent's personal queue: offered first to that agent (sticky routing), named
    ``omniroute.agent.<agent_id>`` on RabbitMQ."""
    return AGENT_QUEUE_PREFIX + agent_id


def is_agent_queue(queue: str) -> bool:
    return queue.startswith(AGENT_QUEUE_PREFIX) and valid_agent_id(
        queue.removeprefix(AGENT_QUEUE_PREFIX)
    )


def valid_agent_id(agent_id: str) -> bool:
    return _AGENT_ID.fullmatch(agent_id) is not None


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
