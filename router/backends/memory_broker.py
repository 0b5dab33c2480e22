"""The embedded broker: agent queues, the events exchange and inbound, in process.

It keeps RabbitMQ's semantics, so the contract suite runs unchanged against both
brokers and an agent tool cannot tell them apart (except that nothing survives the
process, hence ``durable = False``):

- Each queue is a FIFO of ready messages. Deliveries go round robin to the queue's
  subscriptions; each holds at most ``prefetch`` unacked deliveries.
- ``nack(requeue=True)`` and closing a subscription put its unacked messages back at
  the front of the queue in their original (publish) order, flagged ``redelivered``.
- ``nack(requeue=False)`` moves the message to ``dead_letters`` (RabbitMQ: the dead
  letter exchange ``omniroute.dead``).
- Settling a delivery twice, or after its subscription closed, raises ``Conflict``.
  RabbitMQ answers a second ack of a delivery tag by closing the channel
  (PRECONDITION_FAILED, unknown delivery tag); ``AmqpBroker`` refuses it before it is
  sent and raises the same ``Conflict``.
- ``depth`` counts ready messages and live subscriptions; like a queue declare on
  RabbitMQ it creates an unknown queue.
- Events: topic matching (``*`` one word, ``#`` zero or more words) to the queues of
  ``subscribe_events``; such a queue goes away with its subscription.
- Inbound: ``consume_inbound`` feeds ``publish_inbound`` messages to the handler with
  the policy of ``router.backends.inbound.handle_inbound``, which ``AmqpBroker`` shares.
- ``on_settled``: after a consumer acks or rejects agent-queue messages the callback
  gets their ids, batched, from one background task at a time.

Everything is driven by the calls themselves (publish, settle, close wake exactly the
waiters concerned); there is no polling.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog

from router.backends.inbound import handle_inbound
from router.errors import BackendUnavailable, Conflict, InputError
from router.ids import new_id
from router.ports import InboundHandler, QueueDepth

log = structlog.get_logger(__name__)

SettledCallback = Callable[[Sequence[str]], Awaitable[None]]
_Outcome = Literal["ack", "requeue", "drop"]

DEFAULT_INBOUND_PREFETCH: Final = 32
DEFAULT_INBOUND_RETRY_DELAY_S: Final = 0.5
_SETTLE_ATTEMPTS: Final = 3
_SETTLE_RETRY_DELAY_S: Final = 0.5


# --- the inbound policy both brokers apply ----------------------------------------------


# --- topic matching ---------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    words = routing_key.split(".") if routing_key else []
    reachable = {0}  # how many words of the key the pattern so far can have consumed
    for word in pattern.split("."):
        if word == "#":
            reachable = set(range(min(reachable), len(words) + 1)) if reachable else set()
        else:
            reachable = {i + 1 for i in reachable if i < len(words) and word in ("*", words[i])}
    return len(words) in reachable


# --- queues, deliveries, subscriptions --------------------------------------------------


@dataclass(slots=True)
class _Message:
    seq: int
    message_id: str
    body: bytes
    redelivered: bool = False


@dataclass(slots=True, frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    body: bytes


@dataclass(eq=False)
class _Queue:
    name: str
    reports_settled: bool
    """Agent queues report acks to ``on_settled``; event and inbound queues do not."""
    ready: deque[_Message] = field(default_factory=deque)
    consumers: list[MemorySubscription] = field(default_factory=list)
    _turn: int = 0

    def put(self, messages: Sequence[_Message]) -> None:
        self.ready.extend(messages)
        self.dispatch()

    def requeue(self, messages: Sequence[_Message]) -> None:
        """Back in publish order, ahead of everything published after them."""
        for message in messages:
            message.redelivered = True
            bisect.insort(self.ready, message, key=_seq)
        self.dispatch()

    def dispatch(self) -> None:
        while self.ready:
            consumer = self._next_with_room()
            if consumer is None:
                return
            consumer.deliver(self.ready.popleft())

    def _next_with_room(self) -> MemorySubscription | None:
        count = len(self.consumers)
        for step in range(count):
            index = (self._turn + step) % count
            consumer = self.consumers[index]
            if consumer.has_room:
                self._turn = index + 1
                return consumer
        return None


def _seq(message: _Message) -> int:
    return message.seq


class MemoryDelivery:
    """One message handed to a ``MemorySubscription``."""

    __slots__ = ("_message", "_settled", "_subscription")

    def __init__(self, message: _Message, subscription: MemorySubscription) -> None:
        self._message = message
        self._subscription = subscription
        self._settled = False

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def message_id(self) -> str:
        return self._message.message_id

    @property
    def redelivered(self) -> bool:
        return self._message.redelivered

    async def ack(self) -> None:
        self._settle("ack")

    async def nack(self, *, requeue: bool = True) -> None:
        self._settle("requeue" if requeue else "drop")

    def _settle(self, outcome: _Outcome) -> None:
        if self._settled:
            raise Conflict(f"delivery {self._message.message_id} is already settled")
        self._subscription.settle(self._message, outcome)
        self._settled = True


class MemorySubscription:
    """A consumer of one ``_Queue`` holding at most ``prefetch`` unacked deliveries."""

    def __init__(self, broker: MemoryBroker, queue: _Queue, prefetch: int) -> None:
        if prefetch < 1:
            raise InputError("prefetch must be at least 1")
        self._broker = broker
        self._queue = queue
        self._prefetch = prefetch
        self._unacked: dict[int, _Message] = {}
        self._inbox: deque[MemoryDelivery] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False

    @property
    def has_room(self) -> bool:
        return not self.closed and len(self._unacked) < self._prefetch

    def deliver(self, message: _Message) -> None:
        self._unacked[message.seq] = message
        self._inbox.append(MemoryDelivery(message, self))
        self._wakeup.set()

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> MemoryDelivery:
        while not self._inbox:
            if self.closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._inbox.popleft()

    def settle(self, message: _Message, outcome: _Outcome) -> None:
        if self._unacked.pop(message.seq, None) is None:
            raise Conflict(f"delivery {message.message_id} was returned to its queue")
        if outcome == "requeue":
            self._queue.requeue([message])
            return
        if outcome == "drop":
            self._broker.dead_letter(self._queue.name, message)
        if self._queue.reports_settled:
            self._broker.report_settled(message.message_id)
        self._queue.dispatch()

    async def close(self) -> None:
        """Stop consuming; unacked deliveries go back to the front of the queue."""
        if self.closed:
            return
        self.closed = True
        self._inbox.clear()
        self._wakeup.set()
        self._queue.consumers.remove(self)
        returned = sorted(self._unacked.values(), key=_seq)
        self._unacked.clear()
        self._broker.forget(self)
        self._queue.requeue(returned)


# --- settlement reports -----------------------------------------------------------------


class _SettledReporter:
    """Collects settled message ids and hands them to the callback in batches, from one
    task that exists only while there is something to report."""

    def __init__(self, retry_delay_s: float) -> None:
        self._callback: SettledCallback | None = None
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._retry_delay_s = retry_delay_s

    def set_callback(self, callback: SettledCallback) -> None:
        self._callback = callback

    def add(self, message_id: str) -> None:
        if self._callback is None:
            return
        self._pending.append(message_id)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="memory-broker:settled")

    async def flush(self) -> None:
        if self._task is not None:
            await self._task

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._report(batch)
        finally:
            self._task = None

    async def _report(self, batch: list[str]) -> None:
        assert self._callback is not None  # add() queues nothing without one
        for attempt in range(1, _SETTLE_ATTEMPTS + 1):
            try:
                await self._callback(batch)
            except BackendUnavailable as exc:
                log.warning(
                    "broker.settled_report_failed",
                    items=len(batch),
                    attempt=attempt,
                    error=exc.message,
                )
                await asyncio.sleep(self._retry_delay_s * attempt)
            else:
                return
        log.error("broker.settled_report_dropped", items=len(batch))


# --- the broker -------------------------------------------------------------------------


class MemoryBroker:
    """In-process implementation of ``router.ports.Broker``; see the module docstring."""

    durable = False

    def __init__(
        self,
        *,
        inbound_prefetch: int = DEFAULT_INBOUND_PREFETCH,
        inbound_retry_delay_s: float = DEFAULT_INBOUND_RETRY_DELAY_S,
    ) -> None:
        self._queues: dict[str, _Queue] = {}
        self._event_queues: dict[MemorySubscription, tuple[str, _Queue]] = {}
        self._inbound = _Queue("inbound", reports_settled=False)
        self._inbound_prefetch = inbound_prefetch
        self._inbound_retry_delay_s = inbound_retry_delay_s
        self._subscriptions: set[MemorySubscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._settled = _SettledReporter(retry_delay_s=_SETTLE_RETRY_DELAY_S)
        self._seq = itertools.count()
        self._closed = False
        self.dead_letters: list[DeadLetter] = []
        """Messages rejected without requeue, oldest first."""

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for subscription in list(self._subscriptions):
            await subscription.close()
        await self._settled.flush()

    async def ping(self) -> None:
        if self._closed:
            raise BackendUnavailable("the embedded broker is closed")

    async def declare_queue(self, queue: str) -> None:
        self._queue(queue)

    async def publish(self, queue: str, bodies: Sequence[tuple[str, bytes]]) -> None:
        self._queue(queue).put([self._message(mid, body) for mid, body in bodies])

    async def publish_event(self, routing_key: str, body: bytes) -> None:
        message_id = new_id("evt")
        for pattern, queue in self._event_queues.values():
            if topic_matches(pattern, routing_key):
                queue.put([self._message(message_id, body)])

    async def depth(self, queue: str) -> QueueDepth:
        q = self._queue(queue)
        return QueueDepth(ready=len(q.ready), consumers=len(q.consumers))

    async def subscribe(self, queue: str, *, prefetch: int) -> MemorySubscription:
        return self._subscribe(self._queue(queue), prefetch)

    async def subscribe_events(self, pattern: str, *, prefetch: int = 100) -> MemorySubscription:
        queue = _Queue(f"events:{pattern}", reports_settled=False)
        subscription = self._subscribe(queue, prefetch)
        self._event_queues[subscription] = (pattern, queue)
        return subscription

    async def publish_inbound(self, body: bytes) -> None:
        self._inbound.put([self._message(new_id("in"), body)])

    async def consume_inbound(self, handler: InboundHandler) -> None:
        subscription = self._subscribe(self._inbound, self._inbound_prefetch)
        self._spawn(self._run_inbound(subscription, handler), name="memory-broker:inbound")

    def on_settled(self, callback: SettledCallback) -> None:
        self._settled.set_callback(callback)

    # --- called by subscriptions --------------------------------------------------------

    def dead_letter(self, queue: str, message: _Message) -> None:
        self.dead_letters.append(DeadLetter(queue, message.message_id, message.body))

    def report_settled(self, message_id: str) -> None:
        self._settled.add(message_id)

    def forget(self, subscription: MemorySubscription) -> None:
        self._subscriptions.discard(subscription)
        self._event_queues.pop(subscription, None)

    # --- internals ----------------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(name, reports_settled=True)
        return queue

    def _message(self, message_id: str, body: bytes) -> _Message:
        return _Message(next(self._seq), message_id, body)

    def _subscribe(self, queue: _Queue, prefetch: int) -> MemorySubscription:
        subscription = MemorySubscription(self, queue, prefetch)
        self._subscriptions.add(subscription)
        queue.consumers.append(subscription)
        queue.dispatch()
        return subscription

    async def _run_inbound(self, subscription: MemorySubscription, handler: InboundHandler) -> None:
        """At most ``inbound_prefetch`` handlers run at once: the prefetch bounds them."""
        async for delivery in subscription:
            work = handle_inbound(delivery, handler, retry_delay_s=self._inbound_retry_delay_s)
            self._spawn(work, name="memory-broker:inbound-message")

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
