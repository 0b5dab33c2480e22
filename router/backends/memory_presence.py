"""``MemoryPresence``: the embedded ``PresenceStore``, in this process only.

Presence is ephemeral (every tool announces again within its lease), so nothing here
needs to survive a restart. No method awaits anything, so each one is atomic among the
tasks of the event loop: two tasks that ``expire`` at once never both get an agent.
Every read returns fresh structs; a caller changing them changes nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from router.errors import NotFound
from router.presence import AgentState, HeldItem, PresenceIn, read_at


@dataclass
class _Agent:
    announced: PresenceIn
    """A copy of the announcement (the caller keeps its own)."""
    lease_until: datetime
    updated_at: datetime
    expired: bool = False
    """``expire`` took it (or it announced ``offline``): ``expire`` skips it."""
    holding: dict[str, HeldItem] = field(default_factory=dict)


class MemoryPresence:
    """The ``PresenceStore`` port in a dict; see ``router/presence.py`` for the contract."""

    def __init__(self) -> None:
        self._agents: dict[str, _Agent] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def announce(
        self, agent_id: str, presence: PresenceIn, *, now: datetime, lease_until: datetime
    ) -> AgentState:
        old = self._agents.get(agent_id)
        agent = _Agent(
            announced=msgspec.structs.replace(
                presence,
                queues=list(presence.queues),
                skills=list(presence.skills),
                capacity=dict(presence.capacity),
            ),
            lease_until=lease_until,
            updated_at=now,
            expired=presence.status == "offline",
            holding=old.holding if old is not None else {},
        )
        self._agents[agent_id] = agent
        return _read(agent_id, agent, now)

    async def get(self, agent_id: str, *, now: datetime) -> AgentState | None:
        agent = self._agents.get(agent_id)
        return _read(agent_id, agent, now) if agent is not None else None

    async def all(self, *, now: datetime) -> list[AgentState]:
        return [_read(agent_id, self._agents[agent_id], now) for agent_id in sorted(self._agents)]

    async def hold(self, agent_id: str, item: HeldItem) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id!r} never announced its presence")
        agent.holding.setdefault(item.item_id, item)

    async def release(self, agent_id: str, item_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.holding.pop(item_id, None)

    async def expire(self, now: datetime) -> list[str]:
        lapsed = sorted(
            agent_id
            for agent_id, agent in self._agents.items()
            if not agent.expired and agent.lease_until <= now
        )
        for agent_id in lapsed:
            agent = self._agents[agent_id]
            agent.expired = True
            agent.holding = {}
        return lapsed


def _read(agent_id: str, agent: _Agent, now: datetime) -> AgentState:
    announced = agent.announced
    state = AgentState(
        agent_id=agent_id,
        status=announced.status,
        queues=list(announced.queues),
        skills=list(announced.skills),
        capacity=dict(announced.capacity),
        lease_until=agent.lease_until,
        updated_at=agent.updated_at,
        holding=list(agent.holding.values()),
    )
    return read_at(state, expired=agent.expired, now=now)
