"""Consumers standing in for agent tools: they receive work items, read
``message.attributes.bench_t`` back, and record POST → received latency.

- ``AmqpConsumer``: AMQP (aiormq) on the durable queue the server under test declared,
  manual ack of every item, prefetch ``capacity``.
- ``WsConsumer``: omniroute's ``GET /v1/queues/<name>/subscribe?capacity=N`` WebSocket,
  answering ``{"ack": item_id}`` for every item.

Both run in the orchestrator's event loop (``run.py``); the load generator is a
separate process, so its CPU does not delay the consumer's receive timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import Counter
from typing import Any

import aiohttp
import aiormq
import aiormq.abc
import msgspec
from aiormq.abc import DeliveredMessage


class _Message(msgspec.Struct):
    message_id: str = ""
    attributes: dict[str, Any] = {}


class _HistoryEntry(msgspec.Struct):
    message_id: str


class _Item(msgspec.Struct):
    item_id: str
    message: _Message
    history: list[_HistoryEntry] = []


class _Frame(msgspec.Struct):
    type: str
    item: _Item | None = None


class Tally:
    """What one consumer received: counts per phase tag, the latency of each measured
    item's message (``bench_t``), and when each message id was first seen.

    omniroute keeps one waiting item per conversation: a message that arrives while its
    conversation's item is still in the backlog is folded into that item, which then
    carries the newer message and lists the older one in ``history``. ``seen`` records
    every message id an item carries (its message and its history), so the bench can
    tell folded messages from lost ones and time them too.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.latencies: array[float] = array("d")
        self.seen: dict[str, float] = {}
        self.own: set[str] = set()
        """Message ids that were the message of an item (not only in its history)."""

    def record(self, item: _Item) -> None:
        now = time.monotonic()
        message = item.message
        attributes = message.attributes
        phase = str(attributes.get("bench_p", "?"))
        self.total += 1
        self.counts[phase] += 1
        if phase == "m":
            self.latencies.append(now - float(attributes["bench_t"]))
        seen = self.seen
        self.own.add(message.message_id)
        seen.setdefault(message.message_id, now)
        for entry in item.history:
            seen.setdefault(entry.message_id, now)


class AmqpConsumer:
    """On aiormq (what aio-pika is built on): about half aio-pika's CPU per delivery,
    which leaves more of the two cores to the servers under test."""

    def __init__(self, url: str, queue: str, *, capacity: int) -> None:
        self.tally = Tally()
        self._url = url
        self._queue_name = queue
        self._capacity = capacity
        self._decoder = msgspec.json.Decoder(_Item)
        self._connection: aiormq.abc.AbstractConnection | None = None

    async def start(self) -> None:
        self._connection = await aiormq.connect(self._url)
        channel = await self._connection.channel()
        await channel.basic_qos(prefetch_count=self._capacity)
        await channel.basic_consume(self._queue_name, self._on_message, no_ack=False)

    async def _on_message(self, message: DeliveredMessage) -> None:
        self.tally.record(self._decoder.decode(message.body))
        await message.channel.basic_ack(message.delivery_tag)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


class WsConsumer:
    def __init__(self, url: str, token: str, *, capacity: int) -> None:
        self.tally = Tally()
        self._url = f"{url}?capacity={capacity}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(self._url, headers=self._headers)
        self._task = asyncio.create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        decoder = msgspec.json.Decoder(_Frame)
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            decoded = decoder.decode(frame.data)
            if decoded.item is None:
                print(f"  websocket: {frame.data[:300]}")
                continue
            self.tally.record(decoded.item)
            await ws.send_str('{"ack":"%s"}' % decoded.item.item_id)  # noqa: UP031 — hot path

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
