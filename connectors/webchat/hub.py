"""Agent replies to visitors, whichever router process holds the visitor's socket.

``POST /v1/conversations/{id}/replies`` may land on any router process, and the
visitor's socket (or sockets: two tabs) on any other. So a reply goes out as one event on
the broker's events exchange (routing key ``chat.reply``, body ``ChatReply``), and every
process's hub consumes those events and forwards each to the sockets it holds for that
visitor. A process that holds none drops it; a visitor connected nowhere misses it (see
the README: keeping replies for a later reconnect needs the store to keep outbound
messages, a follow-up).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Protocol

import msgspec
import structlog

from connectors.webchat.frames import ReplyFrame, encode
from router.background import Loop
from router.ports import Broker, Subscription

log = structlog.get_logger("connectors.webchat")

ROUTING_KEY = "chat.reply"
RETRY_S = 1.0


class ChatReply(msgspec.Struct, kw_only=True):
    """The ``chat.reply`` event: an agent's answer for one visitor."""

    visitor_id: str
    conversation_id: str
    agent_id: str
    text: str
    at: datetime

    def frame(self) -> str:
        return encode(
            ReplyFrame(
                text=self.text,
                agent_id=self.agent_id,
                at=self.at,
                conversation_id=self.conversation_id,
            )
        )


class Sink(Protocol):
    """One visitor socket. ``send_text`` on a socket that has gone returns quietly."""

    async def send_text(self, text: str) -> None: ...


class ChatHub:
    def __init__(self, broker: Broker, *, retry_s: float = RETRY_S) -> None:
        self._broker = broker
        self._sockets: defaultdict[str, set[Sink]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._closing = False
        self._retry_s = retry_s
        self._loop = Loop("webchat-replies", self._step, retry_s=retry_s)

    async def start(self) -> None:
        """Subscribe before returning, so a reply published once start-up is done
        reaches the sockets of this process."""
        self._subscription = await self._broker.subscribe_events(ROUTING_KEY)
        self._loop.start()

    async def stop(self) -> None:
        self._closing = True
        if self._subscription is not None:
            await self._subscription.close()
        await self._loop.stop()

    def attach(self, visitor_id: str, sink: Sink) -> None:
        self._sockets[visitor_id].add(sink)

    def detach(self, visitor_id: str, sink: Sink) -> None:
        sinks = self._sockets.get(visitor_id)
        if sinks is not None:
            sinks.discard(sink)
            if not sinks:
                del self._sockets[visitor_id]

    async def publish(self, reply: ChatReply) -> None:
        """Send ``reply`` towards every process; returns once the broker has it."""
        await self._broker.publish_event(ROUTING_KEY, msgspec.json.encode(reply))

    async def _step(self) -> float:
        """Forward replies until the subscription ends (at stop); then subscribe anew."""
        subscription = self._subscription or await self._broker.subscribe_events(ROUTING_KEY)
        self._subscription = subscription
        try:
            if not self._closing:
                async for delivery in subscription:
                    await self._forward(delivery.body)
                    await delivery.ack()
        finally:
            self._subscription = None
            await subscription.close()
        return self._retry_s

    async def _forward(self, body: bytes) -> None:
        try:
            reply = msgspec.json.decode(body, type=ChatReply)
        except msgspec.MsgspecError as exc:
            log.warning("webchat.bad_reply_event", error=str(exc)[:200])
            return
        sinks = list(self._sockets.get(reply.visitor_id, ()))
        if sinks:
            frame = reply.frame()
            await asyncio.gather(*(sink.send_text(frame) for sink in sinks))
            log.info(
                "webchat.reply_delivered",
                conversation_id=reply.conversation_id,
                sockets=len(sinks),
            )
