"""The JSON text frames both agent sockets speak (``/v1/queues/{name}/subscribe`` and
``/v1/agents/{id}/subscribe``).

Out: ``{"type": "item", "redelivered": bool, "item": <work item>}``,
``{"type": "heartbeat", "lease_until": ...}`` and
``{"type": "error", "error": {"code", "message"}}``. In: ``{"ack": "<item_id>"}`` and
``{"nack": "<item_id>", "requeue": bool}`` (``requeue: false`` dead-letters the item).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from router.errors import InputError
from router.http.responses import error_body

ANSWER_SHAPE = '{"ack": id} or {"nack": id, "requeue": bool}'
_encoder = msgspec.json.Encoder()


class Answer(msgspec.Struct, forbid_unknown_fields=True):
    """The tool settles one item it was sent."""

    ack: str | None = None
    nack: str | None = None
    requeue: bool = True

    @property
    def item_id(self) -> str | None:
        return self.ack or self.nack


def decode_json(data: str | bytes) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InputError(f"frame is not valid JSON: {exc}") from None


def to_answer(frame: Any) -> Answer:
    try:
        return msgspec.convert(frame, Answer)
    except msgspec.ValidationError as exc:
        raise InputError(f"expected {ANSWER_SHAPE}: {exc}") from None


def item_frame(body: bytes, *, redelivered: bool) -> str:
    """The item frame around a work item's JSON as the broker holds it (not re-encoded)."""
    frame = b'{"type":"item","redelivered":%s,"item":%s}' % (
        b"true" if redelivered else b"false",
        body,
    )
    return frame.decode()


def heartbeat_frame(lease_until: datetime) -> str:
    return _encoder.encode({"type": "heartbeat", "lease_until": lease_until}).decode()


def error_frame(code: str, message: str) -> str:
    return _encoder.encode({"type": "error", **error_body(code, message)}).decode()


async def send_error(ws: web.WebSocketResponse, code: str, message: str) -> None:
    await ws.send_str(error_frame(code, message))
