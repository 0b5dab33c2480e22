"""What every transport of the client hands out: an ``Offer`` of one work item, and the
one error type, ``ClientError``, for anything the daemon or the broker refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import msgspec

from router.models import WorkItem

Settle = Callable[[bool, bool], Awaitable[None]]
"""``settle(ack, requeue)``: how a transport acknowledges or gives back one delivery."""


class ClientError(Exception):
    """The daemon answered ``{"error": {"code", "message"}}`` (``status`` is the HTTP
    status), sent an error frame on a socket, or the broker refused a request."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Offer:
    """One work item offered to this tool. Settle it exactly once: ``ack()`` when done
    with it, ``nack(requeue=True)`` to give it back to the queue (it keeps its
    ``item_id`` and comes back ``redelivered``), ``nack(requeue=False)`` to reject it
    (dead-lettered). Items not settled when the connection closes go back by themselves."""

    __slots__ = ("_settle", "item", "redelivered", "settled")

    def __init__(self, item: WorkItem, redelivered: bool, settle: Settle) -> None:
        self.item = item
        self.redelivered = redelivered
        self.settled = False
        self._settle = settle

    async def ack(self) -> None:
        await self._once(ack=True, requeue=False)

    async def nack(self, requeue: bool = True) -> None:
        await self._once(ack=False, requeue=requeue)

    async def _once(self, *, ack: bool, requeue: bool) -> None:
        if self.settled:
            raise ClientError(409, "already_settled", f"item {self.item.item_id} was settled")
        self.settled = True
        await self._settle(ack, requeue)

    def __repr__(self) -> str:
        item = self.item
        return f"Offer({item.item_id!r}, queue={item.queue!r}, redelivered={self.redelivered})"


_item_decoder = msgspec.json.Decoder(WorkItem)


def decode_item(body: bytes | str) -> WorkItem:
    """A work item from its JSON; fields a newer daemon adds are ignored."""
    try:
        return _item_decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise ClientError(502, "bad_item", f"not a work item: {exc}") from None


def error_from(status: int, body: Any) -> ClientError:
    """The daemon's ``{"error": {"code", "message"}}``, or a stand-in for a body that is
    not one (a proxy's HTML page, say)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        return ClientError(status, str(error["code"]), str(error.get("message", "")))
    return ClientError(status, "http_error", f"HTTP {status}")


class Resource:
    """Something with ``open()`` and ``close()`` that is also an async context manager
    (the client, its sockets, its RabbitMQ connection and subscriptions)."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
