"""``RedisPresence``: the production ``PresenceStore`` on Redis, shared by every router
process of a deployment.

Every step that touches more than one key is one Lua script, so an announcement and an
``expire`` never interleave, and two processes that ``expire`` at once never both get
the same agent. A read (``get``, ``all``) is one script too: one round trip and a
consistent snapshot however many agents there are.

Key schema (``P`` is the deployment prefix, as in ``router/backends/redis_store.py``;
every key starts with the hash tag ``{P}`` so a deployment lives in one Redis Cluster
slot). Times in scores are integer microseconds since the epoch; agent ids are
``router.queue_spec.valid_agent_id`` ones (no ``:``, no NUL)::

    {P}:agents              hash  agent id -> _Announced JSON (the last announcement: status,
                                  queues, skills, capacity, lease_until, updated_at)
    {P}:leases              zset  agent id -> lease_until µs, for agents not offline yet:
                                  an ``offline`` announcement and ``expire`` take it out,
                                  any other announcement puts it (back) in
    {P}:holding:<id>        hash  item id -> HeldItem JSON, what the agent holds

An agent reads ``offline`` when it is not in ``{P}:leases`` or its lease ended by the
reader's ``now``; the stored JSON keeps the status it announced. Presence is ephemeral:
Redis persistence is not needed for it.
"""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import msgspec

from router.backends.redis_codec import to_us
from router.backends.redis_errors import translated
from router.backends.redis_scripts import RedisScripted
from router.errors import NotFound
from router.presence import AgentState, AgentStatus, HeldItem, PresenceIn, read_at

# KEYS[1] = "{P}:"; ARGV: agent id, _Announced JSON, lease_until µs, "1" if not offline.
# Answers the agent's holdings.
_ANNOUNCE: Final = """
local B, id = KEYS[1], ARGV[1]
redis.call('HSET', B .. 'agents', id, ARGV[2])
if ARGV[4] == '1' then
  redis.call('ZADD', B .. 'leases', ARGV[3], id)
else
  redis.call('ZREM', B .. 'leases', id)
end
return redis.call('HVALS', B .. 'holding:' .. id)
"""

# ARGV: agent ids, none for every agent. Answers {announced JSON, 1 if in leases,
# {held JSON...}} per known agent, in the order asked (HKEYS order for all).
_READ: Final = """
local B = KEYS[1]
local ids = ARGV
if #ids == 0 then ids = redis.call('HKEYS', B .. 'agents') end
local out = {}
for _, id in ipairs(ids) do
  local announced = redis.call('HGET', B .. 'agents', id)
  if announced then
    local live = redis.call('ZSCORE', B .. 'leases', id) and 1 or 0
    out[#out + 1] = {announced, live, redis.call('HVALS', B .. 'holding:' .. id)}
  end
end
return out
"""

# ARGV: agent id, item id, HeldItem JSON. Answers -1 for an unknown agent, else 1 if
# the item is new to its holdings, 0 if held already (the first one stays).
_HOLD: Final = """
local B, id = KEYS[1], ARGV[1]
if redis.call('HEXISTS', B .. 'agents', id) == 0 then return -1 end
return redis.call('HSETNX', B .. 'holding:' .. id, ARGV[2], ARGV[3])
"""

# ARGV: now µs. Answers the ids whose lease ended by then, taken out of the leases
# (now offline) with their holdings dropped.
_EXPIRE: Final = """
local B = KEYS[1]
local ids = redis.call('ZRANGEBYSCORE', B .. 'leases', '-inf', ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZREM', B .. 'leases', id)
  redis.call('DEL', B .. 'holding:' .. id)
end
return ids
"""


class _Announced(msgspec.Struct, kw_only=True):
    """``AgentState`` without its holdings: one value of ``{P}:agents``."""

    agent_id: str
    status: AgentStatus
    queues: list[str]
    skills: list[str]
    capacity: dict[str, int]
    lease_until: datetime
    updated_at: datetime


_json = msgspec.json.Encoder()
_announced_decoder = msgspec.json.Decoder(_Announced)
_held_decoder = msgspec.json.Decoder(HeldItem)


class RedisPresence(RedisScripted):
    """The ``PresenceStore`` port on Redis; see the module docstring for the key schema."""

    role = "presence"
    scripts = MappingProxyType(
        {"announce": _ANNOUNCE, "read": _READ, "hold": _HOLD, "expire": _EXPIRE}
    )

    async def announce(
        self, agent_id: str, presence: PresenceIn, *, now: datetime, lease_until: datetime
    ) -> AgentState:
        announced = _Announced(
            agent_id=agent_id,
            status=presence.status,
            queues=list(presence.queues),
            skills=list(presence.skills),
            capacity=dict(presence.capacity),
            lease_until=lease_until,
            updated_at=now,
        )
        live = presence.status != "offline"
        holding = await self._run(
            "announce", agent_id, _json.encode(announced), to_us(lease_until), int(live)
        )
        return _state(announced, holding, expired=not live, now=now)

    async def get(self, agent_id: str, *, now: datetime) -> AgentState | None:
        rows = await self._run("read", agent_id)
        return _row(rows[0], now) if rows else None

    async def all(self, *, now: datetime) -> list[AgentState]:
        states = [_row(row, now) for row in await self._run("read")]
        return sorted(states, key=lambda state: state.agent_id)

    async def hold(self, agent_id: str, item: HeldItem) -> None:
        added = await self._run("hold", agent_id, item.item_id, _json.encode(item))
        if added == -1:
            raise NotFound(f"agent {agent_id!r} never announced its presence")

    async def release(self, agent_id: str, item_id: str) -> None:
        with translated:
            await self._redis.hdel(f"{self._base}holding:{agent_id}", item_id)

    async def expire(self, now: datetime) -> list[str]:
        ids: list[bytes] = await self._run("expire", to_us(now))
        return sorted(agent_id.decode() for agent_id in ids)


def _row(row: list[Any], now: datetime) -> AgentState:
    announced, live, holding = row
    return _state(_announced_decoder.decode(announced), holding, expired=not live, now=now)


def _state(
    announced: _Announced, holding: list[bytes], *, expired: bool, now: datetime
) -> AgentState:
    state = AgentState(
        agent_id=announced.agent_id,
        status=announced.status,
        queues=announced.queues,
        skills=announced.skills,
        capacity=announced.capacity,
        lease_until=announced.lease_until,
        updated_at=announced.updated_at,
        holding=[_held_decoder.decode(held) for held in holding],
    )
    return read_at(state, expired=expired, now=now)
