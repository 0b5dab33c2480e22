"""Discrete-event simulation of one day of agents working the backlogs.

Events on a simulated clock (a heap; nothing sleeps): an arrival queues an item (or
joins the waiting item of its thread), an agent starting a shift or finishing an item
takes the most urgent item among the queues it serves, and, for the ``policy``
ordering, a due timer goes through the real lifecycle (escalation, overflow) and its
``ConversationUpdate`` is applied as the store would. ``fifo`` and ``strict`` are the
baselines: arrival order, and (priority, arrival), without escalation.

The first response is the moment an agent picks an item up: its wait is measured from
arrival, and it breaches when that is after the first-response due time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from router.models import Conversation, ConversationUpdate, Timer
from router.simulate.adapter import SimRouter
from router.simulate.agents import AgentsSpec
from router.simulate.backlog import ORDERINGS, Backlogs, Item, Timers, apply_update
from router.simulate.prepare import Arrival

_ARRIVAL, _SHIFT_START, _SHIFT_END, _FREE, _TIMER = range(5)


@dataclass(slots=True, eq=False)
class Agent:
    agent_id: str
    group: str
    queues: tuple[str, ...]
    skills: frozenset[str]
    start_s: float
    end_s: float
    busy_s: float = 0.0
    idle_since: float | None = None


@dataclass(slots=True)
class Served:
    """One item's outcome: the row it counts in and its first response."""

    queue: str
    priority: int
    wait_s: float
    breached: bool
    served: bool


@dataclass
class RunResult:
    ordering: str
    outcomes: list[Served]
    agents: list[Agent]
    end_s: float
    escalations: int = 0


def make_agents(spec: AgentsSpec, day: date) -> list[Agent]:
    agents: list[Agent] = []
    for group in spec.groups:
        start, end = group.shift(day, spec.zone)
        agents += [
            Agent(
                f"{group.name}-{n}",
                group.name,
                group.queues,
                group.skills,
                start.timestamp(),
                end.timestamp(),
            )
            for n in range(1, group.count + 1)
        ]
    return agents


def run(
    arrivals: list[Arrival],
    agents: list[Agent],
    ordering: str,
    router: SimRouter,
    on_arrival: Callable[[], None] = lambda: None,
) -> RunResult:
    """Replay ``arrivals`` against fresh copies of ``agents`` under ``ordering``."""
    return _Simulation(arrivals, agents, ordering, router, on_arrival).run()


@dataclass
class _Simulation:
    arrivals: list[Arrival]
    template: list[Agent]
    ordering: str
    router: SimRouter
    on_arrival: Callable[[], None]
    events: list[tuple[float, int, int, Any]] = field(default_factory=list)
    counter: int = 0
    idle: list[Agent] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    """The waiting item of each conversation."""
    open_threads: dict[str, Item] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    outcomes: list[Served] = field(default_factory=list)
    timers: Timers = field(default_factory=Timers)
    escalations: int = 0

    def __post_init__(self) -> None:
        self.backlogs = Backlogs(ORDERINGS[self.ordering])
        self.lifecycle = self.ordering == "policy"
        self.agents = [
            Agent(a.agent_id, a.group, a.queues, a.skills, a.start_s, a.end_s)
            for a in self.template
        ]

    def run(self) -> RunResult:
        for arrival in self.arrivals:
            self._push(arrival.at_s, _ARRIVAL, arrival)
        for agent in self.agents:
            self._push(agent.start_s, _SHIFT_START, agent)
            self._push(agent.end_s, _SHIFT_END, agent)
        last = self.arrivals[-1].at_s if self.arrivals else 0.0
        end_s = max([last, *(a.end_s for a in self.agents)])
        handlers = (self._arrive, self._shift_start, self._shift_end, self._free, self._timer)
        while self.events and self.events[0][0] <= end_s:
            now, _, kind, payload = heapq.heappop(self.events)
            handlers[kind](now, payload)
        self._unserved(end_s)
        return RunResult(self.ordering, self.outcomes, self.agents, end_s, self.escalations)

    def _push(self, at_s: float, kind: int, payload: object) -> None:
        self.counter += 1
        heapq.heappush(self.events, (at_s, self.counter, kind, payload))

    # --- events -------------------------------------------------------------------

    def _arrive(self, now: float, arrival: Arrival) -> None:
        self.on_arrival()
        waiting = self.open_threads.get(arrival.thread)
        if waiting is not None and not waiting.taken:
            self._join(waiting, arrival)
            return
        item = Item(
            item_id=arrival.item_id,
            conversation_id=arrival.conversation_id,
            seq=arrival.seq,
            arrived_s=now,
            queue=arrival.decision.queue,
            priority=arrival.decision.priority,
            due_s=arrival.due_s,
            handle_s=arrival.handle_s,
            skills=frozenset(arrival.decision.skills),
            score=arrival.score,
            current_priority=arrival.decision.priority,
        )
        self.open_threads[arrival.thread] = item
        self.items[item.conversation_id] = item
        if self.lifecycle:
            self.conversations[item.conversation_id] = arrival.conversation()
            for timer in arrival.decision.timers:
                self._arm(timer)
        self.backlogs.put(item, item.queue)
        self._offer(item, item.queue, now)

    def _join(self, item: Item, arrival: Arrival) -> None:
        """A further message of a waiting thread joins its item, as the store does:
        the more urgent score and priority win; the agent needs time for it too."""
        item.handle_s += arrival.handle_s
        priority = min(item.current_priority, arrival.decision.priority)
        score = min(item.score // 8, arrival.score // 8) * 8 + priority
        item.current_priority = priority
        if self.lifecycle and score < item.score:
            item.score = score
            self.backlogs.reorder(item)

    def _shift_start(self, now: float, agent: Agent) -> None:
        self._next(agent, now)

    def _shift_end(self, now: float, agent: Agent) -> None:
        if agent.idle_since is not None:
            agent.idle_since = None
            self.idle.remove(agent)

    def _free(self, now: float, done: tuple[Agent, Item]) -> None:
        agent, item = done
        if self.lifecycle:
            self._agent_event(item.conversation_id, "resolved", agent, now)
        if now < agent.end_s:
            self._next(agent, now)

    def _timer(self, now: float, timer: Timer) -> None:
        if not self.timers.fire(timer):
            return
        conv = self.conversations[timer.conversation_id]
        update = self.router.on_timer(conv, timer, timer.at)
        if update is not None:
            if update.item is not None:
                self.escalations += 1
            self._apply(conv, update, now)

    # --- agents -------------------------------------------------------------------

    def _next(self, agent: Agent, now: float) -> None:
        item = self.backlogs.best(agent.queues, agent.skills)
        if item is None:
            agent.idle_since = now
            self.idle.append(agent)
        else:
            self._assign(agent, item, now)

    def _offer(self, item: Item, queue: str, now: float) -> None:
        """An item newly waits in ``queue``: an idle agent serving it takes it (the
        one that prefers the queue most, then the one idle longest)."""
        best: tuple[int, float] | None = None
        chosen: Agent | None = None
        for agent in self.idle:
            if queue in agent.queues and item.skills <= agent.skills:
                rank = (agent.queues.index(queue), agent.idle_since or 0.0)
                if best is None or rank < best:
                    best, chosen = rank, agent
        if chosen is not None:
            self.idle.remove(chosen)
            chosen.idle_since = None
            self._assign(chosen, item, now)

    def _assign(self, agent: Agent, item: Item, now: float) -> None:
        self.backlogs.take(item)
        wait_s = now - item.arrived_s
        self.outcomes.append(Served(item.queue, item.priority, wait_s, now > item.due_s, True))
        agent.busy_s += max(0.0, min(item.handle_s, agent.end_s - now))
        self._push(now + item.handle_s, _FREE, (agent, item))
        if self.lifecycle:
            conv = self.conversations[item.conversation_id]
            self.conversations[item.conversation_id] = _claimed(conv)
            self._agent_event(item.conversation_id, "replied", agent, now)

    # --- the store --------------------------------------------------------------------

    def _agent_event(self, conversation_id: str, event: str, agent: Agent, now: float) -> None:
        conv = self.conversations[conversation_id]
        update = self.router.on_agent(conv, event, agent.agent_id, _at(now))
        if update is not None:
            self._apply(conv, update, now)

    def _apply(self, conv: Conversation, update: ConversationUpdate, now: float) -> None:
        item = self.items.get(conv.conversation_id) if conv.item_id else None
        applied = apply_update(conv, update, item, self.backlogs, self.timers)
        self.conversations[conv.conversation_id] = applied.conversation
        for timer in applied.armed:
            self._push(timer.at.timestamp(), _TIMER, timer)
        if item is not None:
            for queue in applied.offered:
                self._offer(item, queue, now)

    def _arm(self, timer: Timer) -> None:
        self.timers.arm(timer)
        self._push(timer.at.timestamp(), _TIMER, timer)

    def _unserved(self, end_s: float) -> None:
        for item in self.backlogs.waiting():
            wait_s = end_s - item.arrived_s
            self.outcomes.append(
                Served(item.queue, item.priority, wait_s, end_s > item.due_s, False)
            )


def _claimed(conv: Conversation) -> Conversation:
    """A claim clears the conversation's waiting item (``Store.claim``)."""
    return msgspec.structs.replace(conv, item_id=None)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
