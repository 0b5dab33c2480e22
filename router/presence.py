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

How a stored agent reads at ``now`` (``get``, ``all``, the answer of ``announce``): its
status is ``offline`` once its lease ended (``lease_until <= now``) or ``expire`` took
it, whatever it announced; nothing is written by reading. What it holds is listed in the
order it was offered (``since``, then ``item_id``).

Holdings outlive the status on purpose: an announcement, even ``offline``, keeps them,
because the socket that was offered those items still has them and releases each one as
it is acknowledged or given back. Only ``expire`` clears them, for an agent whose lease
lapsed: it is gone, and its sockets are closed by whoever ``expire`` returns it to.
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
    """An item offered to an agent and not yet acknowledged or given back."""

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
        """Most items of ``channel`` it may hold at once."""
        return self.capacity.get(channel, self.capacity.get("default", 1))

    def load(self) -> dict[str, int]:
        """Items held per channel (channels it holds nothing of are absent)."""
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
        """Store the announcement (replacing the last status, queues, skills, capacity
        and lease; ``updated_at`` becomes ``now``) and return the agent as read at
        ``now``. What it holds is kept, also when it announces ``offline`` (the socket
        that was offered the items releases them). An agent ``expire`` took comes back
        with its next announcement, holding nothing."""
        ...

    async def get(self, agent_id: str, *, now: datetime) -> AgentState | None:
        """The agent as read at ``now`` (see the module docstring), or None if it
        never announced. One whose lease ended by ``now`` reads as ``offline``."""
        ...

    async def all(self, *, now: datetime) -> list[AgentState]:
        """Every agent that ever announced, ordered by id, each read at ``now`` as
        ``get`` reads it (lapsed leases read as ``offline``). One round trip."""
        ...

    async def hold(self, agent_id: str, item: HeldItem) -> None:
        """The agent was offered this item: it counts against its capacity for
        ``item.channel`` until released. Holding an item it already holds changes
        nothing (the first ``since`` stays). ``NotFound`` if it never announced."""
        ...

    async def release(self, agent_id: str, item_id: str) -> None:
        """The agent acknowledged or gave back the item; an item it does not hold
        (never held, released already, cleared by ``expire``) is a no-op."""
        ...

    async def expire(self, now: datetime) -> list[str]:
        """Agents whose lease ended by ``now`` (``lease_until <= now``) and were not
        offline yet: now offline, their holdings cleared; their ids, sorted. Atomic:
        across processes each lapse is returned to exactly one caller, once. An agent
        that announced ``offline`` is not offline "yet": it is never returned and keeps
        its holdings until they are released."""
        ...


def read_at(state: AgentState, *, expired: bool, now: datetime) -> AgentState:
    """``state`` as the stores show it at ``now``: ``offline`` once ``expire`` took it
    or its lease ended, holdings in the order offered. Both stores build a fresh state
    per read, so this changes ``state`` in place and returns it."""
    if expired or state.lease_until <= now:
        state.status = "offline"
    state.holding.sort(key=lambda held: (held.since, held.item_id))
    return state
