"""The simulated store: waiting items in per-queue backlogs, ordered by the ordering
under test, and ``apply_update`` with the store's semantics of a ``ConversationUpdate``.

An item waits in one or more queues (``ItemChange.also_offer``); each queue keeps one
heap per set of required skills, so an agent looks only at the heaps whose skills it
has. Heaps are cleaned lazily: an entry is stale when its item was taken, re-scored
(``version`` moved) or left that queue.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import msgspec

from router import urgency
from router.models import Conversation, ConversationUpdate, ItemChange, Timer

_PRIORITY_SPAN = 1 << 40


@dataclass(slots=True, eq=False)
class Item:
    item_id: str
    conversation_id: str
    seq: int
    """Arrival order (FIFO)."""
    arrived_s: float
    queue: str
    """The queue decided at arrival (the report's row)."""
    priority: int
    """The priority decided at arrival (the report's row, strict priority's order)."""
    due_s: float
    """When its first response is due (the SLA clock, else the decision's deadline)."""
    handle_s: float
    skills: frozenset[str]
    score: int
    """The urgency score (``router.urgency``); escalations lower it, never raise it."""
    current_priority: int
    queues: set[str] = field(default_factory=set)
    version: int = 0
    taken: bool = False


Ordering = Callable[[Item], int]


def policy_key(item: Item) -> int:
    return item.score


def fifo_key(item: Item) -> int:
    return item.seq


def strict_key(item: Item) -> int:
    return item.priority * _PRIORITY_SPAN + item.seq


ORDERINGS: dict[str, Ordering] = {"policy": policy_key, "fifo": fifo_key, "strict": strict_key}

_Entry = tuple[int, int, int, Item]  # key, seq, version, item


class Backlogs:
    def __init__(self, key: Ordering) -> None:
        self._key = key
        self._lanes: dict[str, dict[frozenset[str], list[_Entry]]] = {}

    def put(self, item: Item, queue: str) -> None:
        item.queues.add(queue)
        lanes = self._lanes.setdefault(queue, {})
        heap = lanes.setdefault(item.skills, [])
        heapq.heappush(heap, (self._key(item), item.seq, item.version, item))

    def reorder(self, item: Item) -> None:
        """The item's key changed: queue it again; the old entries go stale."""
        item.version += 1
        for queue in item.queues:
            heap = self._lanes[queue][item.skills]
            heapq.heappush(heap, (self._key(item), item.seq, item.version, item))

    def best(self, queues: tuple[str, ...], skills: frozenset[str]) -> Item | None:
        """The most urgent item among ``queues`` an agent with ``skills`` may take;
        equal keys go to the earlier queue (the agent's preference)."""
        found: tuple[int, int, int] | None = None
        best: Item | None = None
        for rank, queue in enumerate(queues):
            for heap in self._heaps(queue, skills):
                key, seq, _, item = heap[0]
                if found is None or (key, rank, seq) < found:
                    found, best = (key, rank, seq), item
        return best

    def take(self, item: Item) -> None:
        item.taken = True
        item.queues.clear()

    def waiting(self) -> Iterator[Item]:
        seen: set[int] = set()
        for lanes in self._lanes.values():
            for heap in lanes.values():
                for _, _, version, item in heap:
                    if _live(item, version) and id(item) not in seen:
                        seen.add(id(item))
                        yield item

    def _heaps(self, queue: str, skills: frozenset[str]) -> Iterator[list[_Entry]]:
        for needed, heap in self._lanes.get(queue, {}).items():
            if needed <= skills:
                while heap and not _valid(heap[0], queue):
                    heapq.heappop(heap)
                if heap:
                    yield heap


def _live(item: Item, version: int) -> bool:
    return not item.taken and item.version == version


def _valid(entry: _Entry, queue: str) -> bool:
    _, _, version, item = entry
    return _live(item, version) and queue in item.queues


class Timers:
    """Armed timers by key; ``due`` yields what the event loop must schedule."""

    def __init__(self) -> None:
        self.armed: dict[str, Timer] = {}

    def arm(self, timer: Timer) -> None:
        self.armed[timer.key] = timer

    def disarm(self, key: str) -> None:
        self.armed.pop(key, None)

    def fire(self, timer: Timer) -> bool:
        """True once for a timer still armed as it was scheduled."""
        if self.armed.get(timer.key) != timer:
            return False
        del self.armed[timer.key]
        return True


@dataclass(slots=True)
class Applied:
    """What an update did that the event loop must act on."""

    conversation: Conversation
    armed: list[Timer]
    offered: list[str]
    """Queues the waiting item newly waits in (agents there may take it)."""


def apply_update(
    conv: Conversation,
    update: ConversationUpdate,
    item: Item | None,
    backlogs: Backlogs,
    timers: Timers,
) -> Applied:
    """The store's ``update_conversation`` on the simulated state (see ``router.ports``):
    fields, then the item change (withdraw, re-score never less urgent, move, also
    offer), then timers disarmed and armed. ``item`` is the conversation's waiting item.
    Creating an item (``create_item_id``) is not simulated: a transferred conversation
    whose item was taken already stays answered."""
    if update.expected_version != conv.version:
        raise AssertionError(f"simulated store out of step on {conv.conversation_id}")
    changes = {
        name: getattr(update, name)
        for name in ("state", "queue", "priority", "deadline", "assignee", "resolved_at", "sla")
        if getattr(update, name) is not msgspec.UNSET
    }
    if update.at is not None:
        changes["updated_at"] = update.at
    offered: list[str] = []
    change = update.item
    if change is not None and item is not None and not item.taken:
        if change.withdraw:
            backlogs.take(item)
            changes["item_id"] = None
        else:
            offered = _change_item(item, change, backlogs)
    conv = msgspec.structs.replace(conv, **changes, version=conv.version + 1)
    for key in update.disarm:
        timers.disarm(key)
    for timer in update.arm:
        timers.arm(timer)
    return Applied(conv, list(update.arm), offered)


def _change_item(item: Item, change: ItemChange, backlogs: Backlogs) -> list[str]:
    if change.priority is not None and change.deadline is not None:
        score = urgency.rescore(item.score, change.deadline, change.priority)
        item.current_priority = change.priority
        if score != item.score:
            item.score = score
            backlogs.reorder(item)
    offered: list[str] = []
    move_to = change.move_to
    if move_to is not None and item.queues != {move_to}:
        item.queues.clear()
        item.version += 1
        backlogs.put(item, move_to)
        offered.append(move_to)
    also = change.also_offer
    if also is not None and also not in item.queues:
        backlogs.put(item, also)
        offered.append(also)
    return offered
