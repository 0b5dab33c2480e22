"""Agent presence: who is really there to take work, and how much more they can take.

An agent tool announces itself (``POST /v1/agents/{id}/presence`` or a ``presence``
frame on its WebSocket) with a status, the queues it serves, its skills and its
capacity per channel. Presence is a lease: an announcement holds for ``lease_s``; with
no new one by then the agent is offline, its sockets close (their unacknowledged items
go back to their queues) and no new work is offered to it.

The ``PresenceStore`` port keeps this shared between router processes: ``RedisPresence``
in production, ``MemoryPresence`` for the embedded default (one process; presence is
ephemeral by nature, so it need not survive a restart). Pure data and the port here;
no I/O library is imported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Protocol

import msgspec

AgentStatus = Literal["available", "away", "offline"]
QueueName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Skill = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Slots = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class PresenceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an agent tool announces (the body of ``POST /v1/agents/{id}/presence``)."""

    status: AgentStatus
    queues: list[QueueName] = []
    """The queues it serves; its personal queue ``agent.<id>`` is always served."""
    skills: list[Skill] = []
    capacity: dict[str, Slots] = {}
    """Most items held at once per channel (``{"chat": 3, "email": 5}``); a channel not
    named here gets ``default`` (the key ``"default"``, else 1)."""
    lease_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] | None = None
    """How long this announcement holds; None: the configured default."""


class HeldItem(msgspec.Struct, frozen=True, kw_only=True):
    item_id: str
    channel: str
    queue: str
    since: datetime


class AgentState(msgspec.Struct, kw_only=True):
    """An agent as ``GET /v1/agents`` shows it."""

    agent_id: str
    status: AgentStatus
    queues: list[str] = []
    skills: list[str] = []
    capacity: dict[str, int] = {}
    lease_until: datetime
    updated_at: datetime
    holding: list[HeldItem] = []
    """Items offered to it and not yet acknowledged (its load)."""

    def limit(self, channel: str) -> int:
        return self.capacity.get(channel, self.capacity.get("default", 1))

    def load(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for held in self.holding:
            out[held.channel] = out.get(held.channel, 0) + 1
        return out


class PresenceStore(Protocol):
    """Shared presence of agents. Times are given, never read from a clock."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def announce(
        self, agent_id: str, presence: PresenceIn, *, now: datetime, lease_until: datetime
    ) -> AgentState:
        """Store the announcement (replacing the last one) and return the agent's state;
        what it holds is kept."""
        ...

    async def get(self, agent_id: str, *, now: datetime) -> AgentState | None:
        """The agent as stored; one whose lease ended by ``now`` reads as ``offline``."""
        ...

    async def all(self, *, now: datetime) -> list[AgentState]:
        """Every agent known, by id (lapsed leases read as ``offline``)."""
        ...

    async def hold(self, agent_id: str, item: HeldItem) -> None:
        """The agent was offered this item (it counts against its capacity)."""
        ...

    async def release(self, agent_id: str, item_id: str) -> None:
        """The agent acknowledged or gave back the item."""
        ...

    async def expire(self, now: datetime) -> list[str]:
        """Agents whose lease ended by ``now`` and were not offline yet: now offline,
        their holdings cleared. Atomic: each lapse is returned to one caller, once."""
        ...
