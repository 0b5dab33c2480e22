"""One visitor's socket, after the token was checked: frames in, frames out.

The HTTP layer (``router.http.chat``) hands each frame it reads to ``receive`` and stops
reading when it answers False (the socket was closed). A message is acked only once the
intake has stored it; a refused frame gets an error frame and the socket stays open; a
token that expired while connected closes the socket with ``CLOSE_UNAUTHORIZED``.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from connectors.base import Intake
from connectors.webchat.connector import WebChatConnector
from connectors.webchat.frames import (
    Ack,
    BadFrame,
    ErrorFrame,
    Frame,
    Identified,
    IdentifyFrame,
    MessageFrame,
    Out,
    Pong,
    Ready,
    decode,
    encode,
)
from connectors.webchat.parse import SOURCE
from connectors.webchat.tokens import Claims
from router.clock import Clock
from router.errors import InputError, OmnirouteError

log = structlog.get_logger("connectors.webchat")

CLOSE_UNAUTHORIZED = 4401
"""The close code for a missing, bad or expired visitor token (4000-4999: the
application's own; 4401 reads as HTTP's 401)."""


class Socket(Protocol):
    async def send_text(self, text: str) -> None:
        """Send one frame; returns quietly when the visitor has gone."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class VisitorSession:
    def __init__(
        self,
        *,
        chat: WebChatConnector,
        intake: Intake,
        clock: Clock,
        socket: Socket,
        visitor: Claims,
    ) -> None:
        self._chat = chat
        self._intake = intake
        self._clock = clock
        self._socket = socket
        self.visitor = visitor
        """Who the socket speaks for; ``identify`` renews it."""

    async def ready(self, heartbeat_s: float) -> None:
        visitor = self.visitor
        await self._send(
            Ready(
                visitor_id=visitor.visitor_id,
                expires_at=visitor.expires_at,
                heartbeat_s=heartbeat_s,
            )
        )

    async def receive(self, data: str | bytes) -> bool:
        """Handle one frame the visitor sent; False once the socket is closed."""
        if self.visitor.expired(self._clock.now()):
            await self._socket.close(CLOSE_UNAUTHORIZED, "visitor token expired")
            return False
        if not isinstance(data, str):
            await self._send(ErrorFrame(code=BadFrame.code, message="frames are JSON text"))
            return True
        try:
            frame = decode(data)
        except BadFrame as exc:
            await self._send(ErrorFrame(code=exc.code, message=exc.message, id=exc.frame_id))
            return True
        try:
            await self._handle(frame)
        except OmnirouteError as exc:
            frame_id = frame.id if isinstance(frame, MessageFrame) else None
            await self._send(ErrorFrame(code=exc.code, message=exc.message, id=frame_id))
        return True

    async def _handle(self, frame: Frame) -> None:
        match frame:
            case MessageFrame():
                await self._store(frame)
            case IdentifyFrame():
                await self._identify(frame)
            case _:
                await self._send(Pong())

    async def _store(self, frame: MessageFrame) -> None:
        """Store the message, then ack it (a duplicate is acked with the first one's ids)."""
        self._chat.check_message(self.visitor.visitor_id)
        parsed = self._chat.message(self.visitor, frame, now=self._clock.now())
        accepted = await self._intake.accept(SOURCE, parsed)
        if not accepted.message_ids:  # quarantined: the pipeline refused it
            raise InputError("the message was refused and quarantined for an operator")
        ack = Ack(
            id=frame.id,
            message_id=accepted.message_ids[0],
            conversation_id=accepted.conversation_ids[0],
            duplicate=accepted.duplicates > 0,
        )
        await self._send(ack)

    async def _identify(self, frame: IdentifyFrame) -> None:
        token, visitor = self._chat.identify(self.visitor, frame, now=self._clock.now())
        self.visitor = visitor
        log.info("webchat.identified", email_given=visitor.email is not None)
        await self._send(
            Identified(
                token=token, expires_at=visitor.expires_at, name=visitor.name, email=visitor.email
            )
        )

    async def _send(self, frame: Out) -> None:
        await self._socket.send_text(encode(frame))
