"""The contract of the ``PresenceStore`` port (``router/presence.py``), run against every
implementation through the ``presence`` fixture. Times are fixed datetimes; nothing
sleeps.

Readings of the protocol this suite pins down:

- A lapsed lease reads ``offline`` without writing: ``expire`` still returns the agent.
- An ``offline`` announcement keeps the holdings and is never returned by ``expire``.
- ``hold`` of an agent that never announced raises ``NotFound``; ``release`` of
  anything not held is a no-op.
- Holdings are listed in the order offered (``since``, then ``item_id``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.errors import BackendUnavailable, NotFound
from router.presence import AgentState, AgentStatus, HeldItem, PresenceIn, PresenceStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LEASE = 30 * SECOND


def available(**fields: object) -> PresenceIn:
    return PresenceIn(status="available", **fields)  # type: ignore[arg-type]


def held(item_id: str, channel: str = "chat", *, at: datetime = T0) -> HeldItem:
    return HeldItem(item_id=item_id, channel=channel, queue="support", since=at)


async def announce(
    presence: PresenceStore, agent_id: str, at: datetime = T0, status: str = "available"
) -> AgentState:
    return await presence.announce(
        agent_id,
        PresenceIn(status=status, capacity={"chat": 2}),  # type: ignore[arg-type]
        now=at,
        lease_until=at + LEASE,
    )


# --- announce and read ----------------------------------------------------------------


async def test_announce_then_get_round_trips_every_field(presence: PresenceStore) -> None:
    now = T0 + timedelta(microseconds=123_456)
    announcement = PresenceIn(
        status="away",
        queues=["support", "billing"],
        skills=["es", "refunds"],
        capacity={"chat": 3, "email": 5, "default": 2},
        lease_s=45,
    )
    answered = await presence.announce(
        "ana.lopez@acme", announcement, now=now, lease_until=now + 45 * SECOND
    )
    expected = AgentState(
        agent_id="ana.lopez@acme",
        status="away",
        queues=["support", "billing"],
        skills=["es", "refunds"],
        capacity={"chat": 3, "email": 5, "default": 2},
        lease_until=now + 45 * SECOND,
        updated_at=now,
        holding=[],
    )
    assert answered == expected
    assert await presence.get("ana.lopez@acme", now=now + SECOND) == expected
    got = await presence.get("ana.lopez@acme", now=now)
    assert got is not None
    assert got.lease_until.tzinfo is not None
    assert got.lease_until.utcoffset() == timedelta(0)


async def test_unknown_agent_reads_none(presence: PresenceStore) -> None:
    assert await presence.get("nobody", now=T0) is None
    assert await presence.all(now=T0) == []


async def test_a_lapsed_lease_reads_offline_without_writing(presence: PresenceStore) -> None:
    await announce(presence, "a1")
    before = await presence.get("a1", now=T0 + LEASE - SECOND)
    at_end = await presence.get("a1", now=T0 + LEASE)
    assert before is not None
    assert before.status == "available"
    assert at_end is not None
    assert at_end.status == "offline"
    assert [state.status for state in await presence.all(now=T0 + LEASE)] == ["offline"]
    # Reading wrote nothing: the agent is still live for an earlier reader, and the
    # lapse is still there for expire to take.
    again = await presence.get("a1", now=T0)
    assert again is not None
    assert again.status == "available"
    assert await presence.expire(T0 + LEASE) == ["a1"]


async def test_announce_answers_as_read_at_now(presence: PresenceStore) -> None:
    state = await presence.announce("a1", available(), now=T0, lease_until=T0)
    assert state.status == "offline"  # a lease that ends at once has ended


async def test_announce_replaces_the_last_one_and_keeps_holdings(
    presence: PresenceStore,
) -> None:
    await presence.announce(
        "a1",
        available(queues=["support", "sales"], skills=["fr"], capacity={"chat": 3}),
        now=T0,
        lease_until=T0 + LEASE,
    )
    await presence.hold("a1", held("i1"))
    later = T0 + 10 * SECOND
    state = await presence.announce(
        "a1", PresenceIn(status="away", queues=["sales"]), now=later, lease_until=later + LEASE
    )
    assert state.status == "away"
    assert state.queues == ["sales"]
    assert state.skills == []
    assert state.capacity == {}
    assert state.updated_at == later
    assert state.lease_until == later + LEASE
    assert state.holding == [held("i1")]


async def test_an_offline_announcement_keeps_holdings_and_is_never_expired(
    presence: PresenceStore,
) -> None:
    await announce(presence, "a1")
    await presence.hold("a1", held("i1"))
    state = await announce(presence, "a1", T0 + SECOND, status="offline")
    assert state.status == "offline"
    assert state.holding == [held("i1")]
    assert await presence.expire(T0 + 10 * LEASE) == []
    after = await presence.get("a1", now=T0 + 10 * LEASE)
    assert after is not None
    assert after.holding == [held("i1")]
    await presence.release("a1", "i1")
    after = await presence.get("a1", now=T0 + 10 * LEASE)
    assert after is not None
    assert after.holding == []


async def test_all_lists_every_agent_by_id(presence: PresenceStore) -> None:
    ids = [f"agent-{n:03d}" for n in range(300)]
    for n, agent_id in enumerate(reversed(ids)):
        await presence.announce(agent_id, available(), now=T0, lease_until=T0 + (n % 2 + 1) * LEASE)
    await presence.hold("agent-007", held("i7"))
    states = await presence.all(now=T0 + LEASE)
    assert [state.agent_id for state in states] == ids
    assert Counter(state.status for state in states) == {"available": 150, "offline": 150}
    assert next(s for s in states if s.agent_id == "agent-007").holding == [held("i7")]


async def test_reads_are_copies(presence: PresenceStore) -> None:
    announcement = available(queues=["support"], capacity={"chat": 1})
    state = await presence.announce("a1", announcement, now=T0, lease_until=T0 + LEASE)
    announcement.queues.append("sales")
    state.queues.append("billing")
    state.capacity["chat"] = 9
    got = await presence.get("a1", now=T0)
    assert got is not None
    got.holding.append(held("i9"))
    again = await presence.get("a1", now=T0)
    assert again is not None
    assert again.queues == ["support"]
    assert again.capacity == {"chat": 1}
    assert again.holding == []


# --- holdings and capacity ------------------------------------------------------------


async def test_hold_and_release_count_load_per_channel(presence: PresenceStore) -> None:
    await presence.announce(
        "a1", available(capacity={"chat": 2, "default": 4}), now=T0, lease_until=T0 + LEASE
    )
    await presence.hold("a1", held("c1", "chat", at=T0 + 2 * SECOND))
    await presence.hold("a1", held("c2", "chat", at=T0 + SECOND))
    await presence.hold("a1", held("e1", "email", at=T0 + SECOND))
    state = await presence.get("a1", now=T0)
    assert state is not None
    assert state.load() == {"chat": 2, "email": 1}
    assert state.limit("chat") == 2
    assert state.limit("email") == 4  # not named: the "default" slots
    # in the order offered: since, then item id
    assert [h.item_id for h in state.holding] == ["c2", "e1", "c1"]

    await presence.release("a1", "c2")
    state = await presence.get("a1", now=T0)
    assert state is not None
    assert state.load() == {"chat": 1, "email": 1}
    await presence.release("a1", "c1")
    await presence.release("a1", "e1")
    state = await presence.get("a1", now=T0)
    assert state is not None
    assert state.load() == {}
    assert state.holding == []


async def test_limit_without_a_default_is_one(presence: PresenceStore) -> None:
    state = await presence.announce(
        "a1", available(capacity={"email": 5}), now=T0, lease_until=T0 + LEASE
    )
    assert state.limit("email") == 5
    assert state.limit("sms") == 1


async def test_hold_and_release_are_idempotent(presence: PresenceStore) -> None:
    await announce(presence, "a1")
    await presence.hold("a1", held("i1", at=T0))
    await presence.hold("a1", held("i1", at=T0 + SECOND))
    state = await presence.get("a1", now=T0)
    assert state is not None
    assert state.holding == [held("i1", at=T0)]  # counted once, first offer kept
    assert state.load() == {"chat": 1}
    await presence.release("a1", "i1")
    await presence.release("a1", "i1")
    await presence.release("a1", "never-held")
    await presence.release("nobody", "i1")
    state = await presence.get("a1", now=T0)
    assert state is not None
    assert state.holding == []


async def test_hold_for_an_agent_that_never_announced_is_not_found(
    presence: PresenceStore,
) -> None:
    with pytest.raises(NotFound):
        await presence.hold("nobody", held("i1"))
    assert await presence.get("nobody", now=T0) is None


async def test_holdings_are_per_agent(presence: PresenceStore) -> None:
    await announce(presence, "a1")
    await announce(presence, "a2")
    await presence.hold("a1", held("i1"))
    await presence.hold("a2", held("i2"))
    await presence.release("a2", "i1")  # a1's item: not a2's to release
    a1 = await presence.get("a1", now=T0)
    a2 = await presence.get("a2", now=T0)
    assert a1 is not None
    assert a2 is not None
    assert [h.item_id for h in a1.holding] == ["i1"]
    assert [h.item_id for h in a2.holding] == ["i2"]


# --- expire ---------------------------------------------------------------------------


async def test_expire_takes_each_lapse_once_and_clears_its_holdings(
    presence: PresenceStore,
) -> None:
    await announce(presence, "early")  # lease ends at T0 + LEASE
    await announce(presence, "also-early", T0 - SECOND)
    await announce(presence, "late", T0 + 10 * SECOND)
    for agent_id in ("early", "late"):
        await presence.hold(agent_id, held(f"{agent_id}-1"))
    assert await presence.expire(T0 + LEASE - 2 * SECOND) == []
    assert await presence.expire(T0 + LEASE) == ["also-early", "early"]
    assert await presence.expire(T0 + LEASE) == []

    early = await presence.get("early", now=T0)  # even read before its lease ended
    late = await presence.get("late", now=T0 + LEASE)
    assert early is not None
    assert (early.status, early.holding) == ("offline", [])
    assert late is not None
    assert late.status == "available"
    assert [h.item_id for h in late.holding] == ["late-1"]

    assert await presence.expire(T0 + 10 * SECOND + LEASE) == ["late"]


async def test_an_expired_agent_comes_back_with_its_next_announcement(
    presence: PresenceStore,
) -> None:
    await announce(presence, "a1")
    await presence.hold("a1", held("i1"))
    assert await presence.expire(T0 + LEASE) == ["a1"]
    back = T0 + 2 * LEASE
    state = await announce(presence, "a1", back)
    assert state.status == "available"
    assert state.holding == []
    await presence.release("a1", "i1")  # the socket gives it back late: a no-op
    assert await presence.expire(back + LEASE - SECOND) == []
    assert await presence.expire(back + LEASE) == ["a1"]


async def test_expire_after_an_offline_announcement_then_return(
    presence: PresenceStore,
) -> None:
    await announce(presence, "a1", status="offline")
    assert await presence.expire(T0 + LEASE) == []
    await announce(presence, "a1", T0 + LEASE)
    assert await presence.expire(T0 + 2 * LEASE) == ["a1"]


@pytest.fixture(params=["memory", "redis"])
async def expirers(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[PresenceStore, PresenceStore]]:
    """Two handles on one shared presence: two Redis clients on one prefix (as two
    router processes have), or one ``MemoryPresence`` used by two tasks."""
    if request.param == "memory":
        from router.backends.memory_presence import MemoryPresence

        shared = MemoryPresence()
        pair: tuple[PresenceStore, PresenceStore] = (shared, shared)
    else:
        from router.backends.redis_presence import RedisPresence

        pair = (
            RedisPresence(redis_url, prefix=redis_prefix),
            RedisPresence(redis_url, prefix=redis_prefix),
        )
    for impl in pair:
        await impl.open()
    yield pair
    for impl in pair:
        await impl.close()


async def test_concurrent_expirers_never_both_take_an_agent(
    expirers: tuple[PresenceStore, PresenceStore],
) -> None:
    first, second = expirers
    ids = [f"agent-{n:03d}" for n in range(200)]
    for n, agent_id in enumerate(ids):
        await first.announce(agent_id, available(), now=T0, lease_until=T0 + (n % 20) * SECOND)
        await second.hold(agent_id, held(f"item-{n}"))

    async def sweep(store: PresenceStore) -> list[str]:
        taken: list[str] = []
        for step in range(25):
            taken += await store.expire(T0 + step * SECOND)
            await asyncio.sleep(0)  # let the other sweeper interleave
        return taken

    results = await asyncio.gather(*(sweep(store) for store in (first, second) * 2))
    taken = Counter(agent_id for result in results for agent_id in result)
    assert sorted(taken) == ids
    assert set(taken.values()) == {1}
    states = await second.all(now=T0)
    assert {state.status for state in states} == {"offline"}
    assert all(state.holding == [] for state in states)


# --- any sequence of calls, against a plain model ----------------------------------------


@dataclass
class _Modelled:
    status: AgentStatus
    lease_until: datetime
    updated_at: datetime
    gone: bool  # announced offline, or expired
    holding: dict[str, HeldItem] = field(default_factory=dict)


Call = (
    tuple[Literal["announce"], int, AgentStatus, int]
    | tuple[Literal["hold"], int, int, str]
    | tuple[Literal["release"], int, int]
    | tuple[Literal["expire"]]
    | tuple[Literal["read"], int]
)
Op = tuple[int, Call]  # seconds the clock moves first, then the call
# A clock moving in 5 s steps, leases of 0 to 10 s, two agents and two items: ties
# (a lease ending exactly at an expire or a read, an item offered twice) come up often.
agents = st.integers(0, 1)
items = st.integers(0, 1)
announce_calls = st.tuples(
    st.just("announce"),
    agents,
    st.sampled_from(["available", "away", "offline"]),
    st.sampled_from([0, 5, 10]),
)
hold_calls = st.tuples(st.just("hold"), agents, items, st.sampled_from(["chat", "email"]))
# Announcements and holds twice as likely as the rest: what the other calls act on.
calls = st.one_of(
    announce_calls,
    announce_calls,
    hold_calls,
    hold_calls,
    st.tuples(st.just("release"), agents, items),
    st.tuples(st.just("expire")),
    st.tuples(st.just("read"), st.sampled_from([-5, 0, 5])),
)
operations = st.lists(st.tuples(st.sampled_from([0, 5]), calls), min_size=4, max_size=30)


class _Run:
    """One example: agents named with a salt, so examples sharing a store stay apart."""

    def __init__(self, store: PresenceStore) -> None:
        self.store = store
        self.salt = uuid.uuid4().hex[:8]
        self.model: dict[str, _Modelled] = {}
        self.now = T0

    def agent(self, n: int) -> str:
        return f"agent{n}-{self.salt}"

    async def apply(self, op: Op) -> None:
        advance_s, call = op
        self.now += advance_s * SECOND
        match call:
            case ("announce", n, status, lease_s):
                await self.announce(self.agent(n), status, self.now + lease_s * SECOND)
            case ("hold", n, item, channel):
                offered = HeldItem(item_id=f"i{item}", channel=channel, queue="q", since=self.now)
                await self.hold(self.agent(n), offered)
            case ("release", n, item):
                await self.store.release(self.agent(n), f"i{item}")
                if (agent := self.model.get(self.agent(n))) is not None:
                    agent.holding.pop(f"i{item}", None)
            case ("expire",):
                await self.expire(self.now)
            case ("read", offset_s):
                await self.check(self.now + offset_s * SECOND)

    async def announce(self, agent_id: str, status: AgentStatus, lease_until: datetime) -> None:
        state = await self.store.announce(
            agent_id, PresenceIn(status=status), now=self.now, lease_until=lease_until
        )
        old = self.model.get(agent_id)
        self.model[agent_id] = _Modelled(
            status, lease_until, self.now, status == "offline", old.holding if old else {}
        )
        assert state == self.expected(agent_id, self.now)

    async def hold(self, agent_id: str, offered: HeldItem) -> None:
        agent = self.model.get(agent_id)
        if agent is None:
            with pytest.raises(NotFound):
                await self.store.hold(agent_id, offered)
        else:
            await self.store.hold(agent_id, offered)
            agent.holding.setdefault(offered.item_id, offered)

    async def expire(self, now: datetime) -> None:
        mine = [agent_id for agent_id in await self.store.expire(now) if self.salt in agent_id]
        lapsed = sorted(
            agent_id
            for agent_id, agent in self.model.items()
            if not agent.gone and agent.lease_until <= now
        )
        assert mine == lapsed
        for agent_id in lapsed:
            self.model[agent_id].gone = True
            self.model[agent_id].holding = {}

    def expected(self, agent_id: str, now: datetime) -> AgentState:
        agent = self.model[agent_id]
        offline = agent.gone or agent.lease_until <= now
        return AgentState(
            agent_id=agent_id,
            status="offline" if offline else agent.status,
            lease_until=agent.lease_until,
            updated_at=agent.updated_at,
            holding=sorted(agent.holding.values(), key=lambda h: (h.since, h.item_id)),
        )

    async def check(self, now: datetime) -> None:
        mine = [s for s in await self.store.all(now=now) if self.salt in s.agent_id]
        assert mine == [self.expected(agent_id, now) for agent_id in sorted(self.model)]
        for n in range(2):
            got = await self.store.get(self.agent(n), now=now)
            known = self.agent(n) in self.model
            assert got == (self.expected(self.agent(n), now) if known else None)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
async def test_any_sequence_of_calls_follows_the_model(
    presence: PresenceStore, ops: list[Op]
) -> None:
    run = _Run(presence)
    for op in ops:
        await run.apply(op)
    await run.check(run.now)
    await run.check(run.now + 100 * SECOND)
    await run.expire(run.now + 100 * SECOND)  # also leaves nothing for the next example
    await run.check(T0)


# --- RedisPresence only ---------------------------------------------------------------


async def test_redis_keys_stay_under_the_deployment_hash_tag(
    redis_url: str, redis_prefix: str
) -> None:
    from router.backends.redis_presence import RedisPresence

    store = RedisPresence(redis_url, prefix=redis_prefix)
    admin = aioredis.Redis.from_url(redis_url)
    await store.open()
    try:
        await announce(store, "a1")
        await store.hold("a1", held("i1"))
        keys = sorted([key.decode() async for key in admin.scan_iter(match=f"*{redis_prefix}*")])
        base = f"{{{redis_prefix}}}:"
        assert keys == [f"{base}agents", f"{base}holding:a1", f"{base}leases"]
    finally:
        await store.close()
        await admin.aclose()


async def test_redis_scripts_are_loaded_again_after_script_flush(
    redis_url: str, redis_prefix: str
) -> None:
    from router.backends.redis_presence import RedisPresence

    store = RedisPresence(redis_url, prefix=redis_prefix)
    admin = aioredis.Redis.from_url(redis_url)
    await store.open()
    try:
        await announce(store, "a1")
        await admin.script_flush()
        await store.hold("a1", held("i1"))
        await admin.script_flush()
        assert await store.expire(T0 + LEASE) == ["a1"]
    finally:
        await store.close()
        await admin.aclose()


async def test_unreachable_redis_is_backend_unavailable(redis_prefix: str) -> None:
    from router.backends.redis_presence import RedisPresence

    store = RedisPresence("redis://127.0.0.1:1/0", prefix=redis_prefix)
    try:
        with pytest.raises(BackendUnavailable):
            await store.open()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get("a1", now=T0),
            lambda: store.all(now=T0),
            lambda: store.release("a1", "i1"),
            lambda: store.expire(T0),
        ]
        for call in calls:
            with pytest.raises(BackendUnavailable):
                await call()
    finally:
        await store.close()
