"""Agents at work: presence leases, per-channel capacity and the agent's own socket.

``Agents`` is one per router process. It validates and stores announcements in the
shared ``PresenceStore``, keeps the agent sockets of this process (``AgentSession``) and
sweeps leases every ``agents.sweep_ms``: ``PresenceStore.expire`` for the shared state,
and every local socket whose agent's lease lapsed is closed with code 4000, its
unacknowledged items going back to their queues at once. An agent that is ``away``, or
announced ``offline`` and whose lease still runs, keeps its socket and is sent nothing new.

An ``AgentSession`` consumes on the tool's behalf: one broker subscription per queue it
serves (its personal queue ``agent.<id>`` and every queue of its presence). The broker's
prefetch is only a look-ahead; what reaches the tool is decided here, by the daemon's
own accounting: an item is forwarded while the agent is ``available`` and holds fewer
items of the item's channel than ``AgentState.limit(channel)`` (holdings are the shared
``PresenceStore`` ones, so every socket of the agent counts). A forwarded item is held
(``PresenceStore.hold``) until the tool acks or nacks it. An item that cannot be
forwarded waits in the session, at most one per channel, and goes out when a slot frees;
any further one for that channel is given back (``nack(requeue=True)``) so that other
agents can take it. The give-back waits ``GIVE_BACK_DELAY_S`` first: a requeued message
goes straight back to a consumer with free prefetch, often this very one, and without
the pause a lone full agent would spin it round as fast as the broker can.

Items go back "at their original urgency": RabbitMQ requeues a message at its place in
the queue; the embedded broker puts it back in publish order, ahead of everything
published after it. Either way the dispatcher published in urgency order, so the item
is offered again before anything less urgent released after it.

No I/O library here: the socket is the ``AgentSocket`` port the HTTP layer implements.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

import msgspec
import structlog

from router.background import Loop
from router.clock import Clock
from router.errors import (
    Conflict,
    InputError,
    InvalidAgentId,
    NotFound,
    OmnirouteError,
)
from router.ports import Broker, Delivery, Subscription
from router.presence import AgentState, HeldItem, PresenceIn, PresenceStore
from router.queue_spec import agent_queue, valid_agent_id
from router.settings import AgentsSettings

log = structlog.get_logger("router.agents")

LEASE_EXPIRED_CODE: Final = 4000
"""WebSocket close code for a socket whose agent's lease lapsed."""
GIVE_BACK_DELAY_S: Final = 1.0
MAX_PREFETCH: Final = 10_000


class UnknownQueue(InputError):
    status = 422
    code = "unknown_queue"


class UnknownItem(NotFound):
    code = "unknown_item"


class SocketClosed(Exception):
    """The tool's socket went away while the daemon was sending to it."""


class AgentSocket(Protocol):
    """What a session needs of the tool's socket (the HTTP layer frames the JSON)."""

    async def send_item(self, body: bytes, *, redelivered: bool) -> None:
        """Send one work item; ``SocketClosed`` if the socket is gone."""
        ...

    async def send_heartbeat(self, lease_until: datetime) -> None: ...

    async def close(self, *, code: int, reason: str) -> None: ...


class _ItemHead(msgspec.Struct):
    item_id: str
    channel: str


@dataclass(slots=True, frozen=True)
class _Offer:
    queue: str
    item_id: str
    channel: str
    delivery: Delivery


def check_agent_id(agent_id: str) -> None:
    if not valid_agent_id(agent_id):
        raise InvalidAgentId(
            f"invalid agent id {agent_id[:140]!r}: 1 to 128 characters, a letter or digit "
            "first, then letters, digits and _ . @ -"
        )


def prefetch_for(state: AgentState | None) -> int:
    """The broker look-ahead per queue: every slot, one held back per channel, one more."""
    if state is None:
        return 2
    return min(max(2, sum(state.capacity.values()) + len(state.capacity) + 1), MAX_PREFETCH)


def lapsed(state: AgentState, now: datetime) -> bool:
    """Its lease ended: it is gone (an agent that announced ``offline`` keeps its socket
    until then, receiving nothing new)."""
    return state.lease_until <= now


def as_announcement(state: AgentState) -> PresenceIn:
    """The announcement ``state`` came from, to renew it as it was."""
    return PresenceIn(
        status=state.status,
        queues=list(state.queues),
        skills=list(state.skills),
        capacity=dict(state.capacity),
        lease_s=(state.lease_until - state.updated_at).total_seconds(),
    )


class Agents:
    """Presence, capacity and lease sweeping for one router process."""

    def __init__(
        self,
        *,
        presence: PresenceStore,
        broker: Broker,
        clock: Clock,
        settings: AgentsSettings,
        queues: Iterable[str],
    ) -> None:
        self.presence = presence
        self.broker = broker
        self.clock = clock
        self.settings = settings
        self._queues = tuple(queues)
        self._sessions: dict[str, set[AgentSession]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop = Loop("agents:sweeper", self._tick, retry_s=settings.sweep_ms / 1000)

    # --- presence -----------------------------------------------------------------------

    async def announce(self, agent_id: str, presence: PresenceIn) -> AgentState:
        """Store the announcement (a new lease from now) and let this process's sockets
        of the agent follow it: new queues, freed capacity, a heartbeat frame."""
        check_agent_id(agent_id)
        unknown = [q for q in presence.queues if q not in self._queues]
        if unknown:
            raise UnknownQueue(
                f"unknown queues {unknown}: configured are {list(self._queues)} (the "
                "personal queue agent.<id> is always served)"
            )
        now = self.clock.now()
        lease_s = presence.lease_s or self.settings.lease_s
        state = await self.presence.announce(
            agent_id, presence, now=now, lease_until=now + timedelta(seconds=lease_s)
        )
        log.info("agent.announced", agent_id=agent_id, status=state.status, queues=state.queues)
        for session in list(self._sessions.get(agent_id, ())):
            await session.follow(state, heartbeat=True)
        return state

    async def renew(self, agent_id: str) -> AgentState:
        """A heartbeat: the last announcement again, with a new lease."""
        now = self.clock.now()
        state = await self.presence.get(agent_id, now=now)
        if state is None:
            raise NotFound(f"agent {agent_id!r} has not announced its presence")
        if lapsed(state, now):
            raise Conflict(f"the lease of agent {agent_id!r} lapsed: announce again")
        return await self.announce(agent_id, as_announcement(state))

    async def get(self, agent_id: str) -> AgentState | None:
        return await self.presence.get(agent_id, now=self.clock.now())

    async def all(self) -> list[AgentState]:
        return await self.presence.all(now=self.clock.now())

    def serves(self, state: AgentState | None) -> set[str]:
        """The configured queues of ``state`` (a queue since unconfigured is skipped)."""
        if state is None:
            return set()
        return {q for q in state.queues if q in self._queues}

    # --- sockets ------------------------------------------------------------------------

    async def open_session(self, agent_id: str, socket: AgentSocket) -> AgentSession:
        """Subscribe to the agent's queues (errors surface here, before the socket is
        accepted); ``AgentSession.start`` then begins forwarding."""
        check_agent_id(agent_id)
        lock = self._locks.setdefault(agent_id, asyncio.Lock())
        session = AgentSession(self, agent_id, socket, lock)
        state = await self.get(agent_id)
        try:
            await session.subscribe({agent_queue(agent_id)} | self.serves(state), state)
        except BaseException:
            await session.finish()
            raise
        return session

    def register(self, session: AgentSession) -> None:
        self._sessions.setdefault(session.agent_id, set()).add(session)

    def forget(self, session: AgentSession) -> None:
        sessions = self._sessions.get(session.agent_id)
        if sessions is None:
            return
        sessions.discard(session)
        if not sessions:
            del self._sessions[session.agent_id]
            self._locks.pop(session.agent_id, None)

    def sessions(self) -> list[AgentSession]:
        return [s for group in self._sessions.values() for s in group]

    # --- leases -------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Expire lapsed leases; close this process's sockets of agents whose lease lapsed;
        let the others follow their presence (it may have been announced on another
        router) and send their due heartbeats."""
        now = self.clock.now()
        expired = await self.presence.expire(now)
        if expired:
            log.info("agent.leases_lapsed", agents=expired)
        closing = []
        for session in self.sessions():
            state = await self.presence.get(session.agent_id, now=now)
            if state is not None and lapsed(state, now):
                closing.append(session)
            else:
                await session.follow(state, heartbeat=session.heartbeat_due(now))
        await asyncio.gather(
            *(s.close(code=LEASE_EXPIRED_CODE, reason="lease expired") for s in closing)
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _tick(self) -> float:
        await self.sweep()
        return self.settings.sweep_ms / 1000


class AgentSession:
    """One agent socket: its subscriptions, what it was offered and what waits."""

    def __init__(
        self, service: Agents, agent_id: str, socket: AgentSocket, lock: asyncio.Lock
    ) -> None:
        self.agent_id = agent_id
        self._service = service
        self._presence = service.presence
        self._socket = socket
        self._lock = lock
        """Shared by the agent's sessions in this process: one capacity decision at a time."""
        self._subscriptions: dict[str, Subscription] = {}
        self._subscribing = asyncio.Lock()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._retiring: set[str] = set()
        self._forwarded: dict[str, _Offer] = {}
        self._waiting: dict[str, _Offer] = {}
        """Held back for a full channel, at most one per channel."""
        self._giving_back: set[asyncio.Task[None]] = set()
        self._next_heartbeat: datetime | None = None
        self._started = False
        self._finished = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """The socket is open: forward items and send the first heartbeat."""
        self._started = True
        self._service.register(self)
        for queue in self._subscriptions:
            self._pump(queue)
        await self.follow(await self._service.get(self.agent_id), heartbeat=True)

    async def close(self, *, code: int, reason: str) -> None:
        """Give everything back at once, then close the socket."""
        log.info("agent.socket_closing", agent_id=self.agent_id, reason=reason)
        await self.finish()
        await self._socket.close(code=code, reason=reason)

    async def finish(self) -> None:
        """Unsubscribe (unacked deliveries go back to their queues) and release what the
        agent was offered. Idempotent."""
        if self._finished:
            return
        self._finished = True
        self._service.forget(self)
        tasks = [*self._pumps.values(), *self._giving_back]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with self._subscribing:  # a subscription on its way is closed too
            for subscription in self._subscriptions.values():
                with contextlib.suppress(OmnirouteError):
                    await subscription.close()
        offered, self._forwarded = list(self._forwarded), {}
        self._waiting.clear()
        for item_id in offered:
            with contextlib.suppress(OmnirouteError):
                await self._presence.release(self.agent_id, item_id)

    def heartbeat_due(self, now: datetime) -> bool:
        return self._next_heartbeat is not None and now >= self._next_heartbeat

    async def follow(self, state: AgentState | None, *, heartbeat: bool) -> None:
        """Serve the queues of ``state``, forward what now fits, maybe send a heartbeat."""
        if self._finished:
            return
        wanted = {agent_queue(self.agent_id)} | self._service.serves(state)
        try:
            await self.subscribe(wanted - set(self._subscriptions), state)
        except OmnirouteError as exc:  # the next sweep tries again
            log.warning("agent.subscribe_failed", agent_id=self.agent_id, error=exc.message)
        async with self._lock:
            for queue in set(self._pumps) - wanted:
                await self._retire(queue)
            await self._refill()
        if heartbeat:
            await self._heartbeat(state)

    async def subscribe(self, queues: set[str], state: AgentState | None) -> None:
        # One subscriber at a time: the sweeper and a presence frame may both follow at
        # once, and a queue subscribed twice would leave one consumer nobody reads or
        # closes, holding its items until the process ends.
        async with self._subscribing:
            for queue in sorted(queues):
                if self._finished:
                    return
                self._retiring.discard(queue)
                if queue not in self._subscriptions:
                    prefetch = prefetch_for(state)
                    self._subscriptions[queue] = await self._service.broker.subscribe(
                        queue, prefetch=prefetch
                    )
                if self._started and queue not in self._pumps and not self._finished:
                    self._pump(queue)

    # --- from the tool ------------------------------------------------------------------

    async def settle(self, item_id: str, *, ack: bool, requeue: bool = True) -> None:
        """The tool acked (or nacked) an item it was offered; its slot frees."""
        async with self._lock:
            offer = self._forwarded.pop(item_id, None)
            if offer is None:
                raise UnknownItem(f"no unacknowledged item {item_id!r} on this socket")
            try:
                if ack:
                    await offer.delivery.ack()
                else:
                    await offer.delivery.nack(requeue=requeue)
            finally:
                await self._presence.release(self.agent_id, item_id)
            await self._close_retired()
            await self._refill()

    async def announce(self, presence: PresenceIn) -> AgentState:
        return await self._service.announce(self.agent_id, presence)

    async def renew(self) -> AgentState:
        return await self._service.renew(self.agent_id)

    # --- items from the broker ----------------------------------------------------------

    def _pump(self, queue: str) -> None:
        task = asyncio.create_task(self._consume(queue), name=f"agent:{self.agent_id}:{queue}")
        self._pumps[queue] = task

    async def _consume(self, queue: str) -> None:
        try:
            async for delivery in self._subscriptions[queue]:
                async with self._lock:
                    await self._place(queue, delivery)
        except SocketClosed:
            return
        except OmnirouteError as exc:  # the store or broker went away: the tool reconnects
            log.warning("agent.consume_failed", agent_id=self.agent_id, error=exc.message)
            await self._socket.close(code=1011, reason="backend unavailable")
        except Exception:
            log.exception("agent.consume_failed", agent_id=self.agent_id)
            await self._socket.close(code=1011, reason="internal error")

    async def _place(self, queue: str, delivery: Delivery) -> None:
        try:
            head = msgspec.json.decode(delivery.body, type=_ItemHead)
        except msgspec.MsgspecError:
            log.error("agent.bad_item", agent_id=self.agent_id, queue=queue)
            await delivery.nack(requeue=False)
            return
        offer = _Offer(queue, head.item_id, head.channel, delivery)
        if offer.channel in self._waiting:
            self._give_back(offer)
        elif await self._has_room(offer.channel):
            await self._forward(offer)
        else:
            self._waiting[offer.channel] = offer

    async def _has_room(self, channel: str) -> bool:
        state = await self._service.get(self.agent_id)
        if state is None or state.status != "available":
            return False
        return state.load().get(channel, 0) < state.limit(channel)

    async def _forward(self, offer: _Offer) -> None:
        self._forwarded[offer.item_id] = offer
        held = HeldItem(
            item_id=offer.item_id,
            channel=offer.channel,
            queue=offer.queue,
            since=self._service.clock.now(),
        )
        await self._presence.hold(self.agent_id, held)
        await self._socket.send_item(offer.delivery.body, redelivered=offer.delivery.redelivered)

    async def _refill(self) -> None:
        for channel, offer in list(self._waiting.items()):
            if await self._has_room(channel):
                del self._waiting[channel]
                with contextlib.suppress(SocketClosed):  # finish() cleans up
                    await self._forward(offer)

    def _give_back(self, offer: _Offer) -> None:
        task = asyncio.create_task(self._give_back_later(offer.delivery))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def _give_back_later(self, delivery: Delivery) -> None:
        await asyncio.sleep(GIVE_BACK_DELAY_S)
        with contextlib.suppress(OmnirouteError):  # the subscription closed: back already
            await delivery.nack(requeue=True)

    # --- queues it no longer serves -----------------------------------------------------

    async def _retire(self, queue: str) -> None:
        """Stop reading the queue; its subscription closes once nothing the tool holds
        came from it (closing returns every unacked delivery, the tool's too)."""
        self._pumps.pop(queue).cancel()
        for channel, offer in list(self._waiting.items()):
            if offer.queue == queue:
                del self._waiting[channel]
        self._retiring.add(queue)
        await self._close_retired()

    async def _close_retired(self) -> None:
        busy = {offer.queue for offer in self._forwarded.values()}
        for queue in sorted(self._retiring - busy):
            self._retiring.discard(queue)
            subscription = self._subscriptions.pop(queue)
            with contextlib.suppress(OmnirouteError):
                await subscription.close()

    async def _heartbeat(self, state: AgentState | None) -> None:
        """Tell the tool until when its lease holds (nothing to tell before it announced)."""
        now = self._service.clock.now()
        self._next_heartbeat = now + timedelta(seconds=self._service.settings.heartbeat_s)
        if state is not None:
            with contextlib.suppress(SocketClosed):
                await self._socket.send_heartbeat(state.lease_until)
