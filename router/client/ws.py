"""Work items over the daemon's WebSocket, as ``Offer`` objects.

Protocol (JSON text frames; the daemon's AsyncAPI document is the reference). The
daemon sends ``{"type": "item", "redelivered": bool, "item": <work item>}``,
``{"type": "heartbeat", "lease_until": ...}`` (agent sockets) and
``{"type": "error", "error": {"code", "message"}}``; the tool answers
``{"ack": id}`` or ``{"nack": id, "requeue": bool}``, and on an agent socket also
``{"type": "presence", ...}`` and ``{"type": "heartbeat"}`` to keep its lease. Frame
types this client does not know are skipped, so a newer daemon does not break it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, Self

import aiohttp
import msgspec

from router.client.models import ClientError, Offer, Resource, Settle
from router.models import WorkItem
from router.presence import PresenceIn

_encoder = msgspec.json.Encoder()
_HANDSHAKE_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


class _Frame(msgspec.Struct):
    type: str
    redelivered: bool = False
    item: WorkItem | None = None
    error: dict[str, Any] | None = None
    lease_until: datetime | None = None


_frames = msgspec.json.Decoder(_Frame)


class WsSubscription(Resource):
    """One socket: iterate it for offers. Use it as ``async with`` (or iterate it to its
    end) so the socket closes; closing gives every unsettled item back to its queue.

    A task reads the socket all the time, so pings are answered and heartbeats seen
    while a person takes minutes over one item; offers wait in order until asked for.
    An error frame from the daemon (an answer it could not use) is raised from the
    iteration as ``ClientError(400, code, message)``; the socket stays open and the
    iteration can go on. ``close_code`` tells why the daemon closed the socket
    (4000: the agent's lease expired)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        presence: PresenceIn | None = None,
        heartbeat_s: float | None = None,
    ) -> None:
        self._session = session
        self._url = url
        self._presence = presence
        self._heartbeat_s = heartbeat_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._inbox: asyncio.Queue[Offer | ClientError | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.lease_until: datetime | None = None
        self.close_code: int | None = None

    async def open(self) -> None:
        try:
            self._ws = await self._session.ws_connect(self._url)
        except aiohttp.WSServerHandshakeError as exc:
            code = _HANDSHAKE_CODES.get(exc.status, "bad_request")
            raise ClientError(exc.status, code, f"cannot subscribe: HTTP {exc.status}") from None
        except aiohttp.ClientError as exc:
            raise ClientError(503, "unreachable", f"cannot reach the daemon: {exc}") from None
        if self._presence is not None:
            await self.announce(self._presence)
        self._tasks.append(asyncio.create_task(self._read(self._ws)))
        if self._heartbeat_s:
            self._tasks.append(asyncio.create_task(self._heartbeats(self._heartbeat_s)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()
            self.close_code = self.close_code or self._ws.close_code

    async def announce(self, presence: PresenceIn) -> None:
        """Announce (or change) this agent's presence over its socket."""
        await self._send({"type": "presence", **msgspec.to_builtins(presence)})

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Offer:
        if self._ws is None:
            await self.open()
        got = await self._inbox.get()
        if got is None:
            self._inbox.put_nowait(None)  # ended: every later call ends too
            await self.close()
            raise StopAsyncIteration
        if isinstance(got, ClientError):
            raise got
        return got

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._frame(message.data)
        finally:
            self.close_code = ws.close_code
            self._inbox.put_nowait(None)

    def _frame(self, data: str) -> None:
        try:
            frame = _frames.decode(data)
        except msgspec.MsgspecError as exc:
            self._inbox.put_nowait(ClientError(502, "bad_frame", f"unreadable frame: {exc}"))
            return
        if frame.type == "item" and frame.item is not None:
            settle = self._settler(frame.item.item_id)
            self._inbox.put_nowait(Offer(frame.item, frame.redelivered, settle))
        elif frame.type == "error":
            error = frame.error or {}
            code, text = str(error.get("code", "error")), str(error.get("message", ""))
            self._inbox.put_nowait(ClientError(400, code, text))
        elif frame.type == "heartbeat":
            self.lease_until = frame.lease_until

    def _settler(self, item_id: str) -> Settle:
        async def settle(ack: bool, requeue: bool) -> None:
            await self._send({"ack": item_id} if ack else {"nack": item_id, "requeue": requeue})

        return settle

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise ClientError(503, "disconnected", "the socket is closed; its items went back")
        try:
            await self._ws.send_str(_encoder.encode(frame).decode())
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise ClientError(503, "disconnected", f"the socket dropped: {exc}") from None

    async def _heartbeats(self, every_s: float) -> None:
        """Renew the lease while the tool runs: a tool that dies stops renewing, and the
        daemon gives its items back when the lease runs out."""
        while self._ws is not None and not self._ws.closed:
            await asyncio.sleep(self._next_heartbeat_s(every_s))
            with contextlib.suppress(ClientError):
                await self._send({"type": "heartbeat"})

    def _next_heartbeat_s(self, every_s: float) -> float:
        """``every_s``, or sooner: a third of the time the lease has left, so a lease
        shorter than the interval is still renewed in time."""
        if self.lease_until is None:
            return every_s
        left_s = (self.lease_until - datetime.now(UTC)).total_seconds()
        return max(min(every_s, left_s / 3), 0.05)
