"""Agents: presence (``POST /v1/agents/{id}/presence``), who is there
(``GET /v1/agents``, ``GET /v1/agents/{id}``) and the agent's own socket
(``GET /v1/agents/{id}/subscribe``).

The socket speaks the frames of ``router.http.frames`` and two more from the tool:
``{"type": "presence", ...PresenceIn fields}`` announces (or changes) its presence and
``{"type": "heartbeat"}`` renews the lease with the last announcement; each is answered
with ``{"type": "heartbeat", "lease_until": ...}``, as is every ``agents.heartbeat_s``.
The items are the agent's personal queue's and its presence's queues', forwarded within
its capacity per channel (see ``router.agents``). A socket whose lease lapses is closed
with code 4000, reason "lease expired".
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec
import structlog
from aiohttp import WSMsgType, web

from router.agents import AgentSession, SocketClosed, check_agent_id
from router.errors import InputError, NotFound, OmnirouteError
from router.http.frames import (
    Answer,
    decode_json,
    heartbeat_frame,
    item_frame,
    send_error,
    to_answer,
)
from router.http.keys import AGENTS, SOCKETS
from router.http.responses import decode, json_response, read_body
from router.presence import AgentState, PresenceIn

log = structlog.get_logger("router.http.agents")
routes = web.RouteTableDef()

MAX_BODY_BYTES = 64 * 1024


class Heartbeat(msgspec.Struct):
    """The tool's ``{"type": "heartbeat"}``."""


def agent_view(state: AgentState) -> dict[str, Any]:
    """An agent as ``GET /v1/agents`` shows it: its state and its load per channel."""
    view: dict[str, Any] = msgspec.to_builtins(state)
    view["load"] = state.load()
    return view


@routes.post("/v1/agents/{id}/presence")
async def announce(request: web.Request) -> web.Response:
    agent_id = request.match_info["id"]
    check_agent_id(agent_id)
    presence = decode(await read_body(request, MAX_BODY_BYTES), PresenceIn)
    state = await request.app[AGENTS].announce(agent_id, presence)
    return json_response(agent_view(state))


@routes.get("/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    states = await request.app[AGENTS].all()
    return json_response({"agents": [agent_view(state) for state in states]})


@routes.get("/v1/agents/{id}")
async def get_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["id"]
    state = await request.app[AGENTS].get(agent_id)
    if state is None:
        raise NotFound(f"no agent {agent_id!r} has announced its presence")
    return json_response(agent_view(state))


@routes.get("/v1/agents/{id}/subscribe")
async def subscribe(request: web.Request) -> web.WebSocketResponse:
    agent_id = request.match_info["id"]
    ws = web.WebSocketResponse(heartbeat=30)
    session = await request.app[AGENTS].open_session(agent_id, _Socket(ws))
    try:
        await ws.prepare(request)
        request.app[SOCKETS].add(ws)
        log.info("agent.connected", agent_id=agent_id)
        await session.start()
        await _read_frames(ws, session)
    finally:
        request.app[SOCKETS].discard(ws)
        # aiohttp cancels the handler once the peer has gone: give everything back anyway
        await asyncio.shield(session.finish())
        log.info("agent.disconnected", agent_id=agent_id)
    return ws


class _Socket:
    """``router.agents.AgentSocket`` over an aiohttp WebSocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send_item(self, body: bytes, *, redelivered: bool) -> None:
        await self._send(item_frame(body, redelivered=redelivered))

    async def send_heartbeat(self, lease_until: datetime) -> None:
        await self._send(heartbeat_frame(lease_until))

    async def close(self, *, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode())

    async def _send(self, text: str) -> None:
        if self._ws.closed:
            raise SocketClosed
        try:
            await self._ws.send_str(text)
        except ConnectionResetError:
            raise SocketClosed from None


async def _read_frames(ws: web.WebSocketResponse, session: AgentSession) -> None:
    async for frame in ws:
        if frame.type != WSMsgType.TEXT:
            continue
        try:
            parsed = _parse(frame.data)
        except InputError as exc:
            await send_error(ws, "bad_frame", exc.message)
            continue
        try:
            await _handle(session, parsed)
        except OmnirouteError as exc:
            await send_error(ws, exc.code, exc.message)


def _parse(data: str) -> Answer | Heartbeat | PresenceIn:
    frame = decode_json(data)
    if not isinstance(frame, dict) or "type" not in frame:
        return to_answer(frame)
    kind = frame.pop("type")
    if kind == "heartbeat":
        return Heartbeat()
    if kind == "presence":
        try:
            return msgspec.convert(frame, PresenceIn)
        except msgspec.ValidationError as exc:
            raise InputError(f"invalid presence: {exc}") from None
    raise InputError(f"unknown frame type {kind!r}: heartbeat, presence, ack or nack")


async def _handle(session: AgentSession, frame: Answer | Heartbeat | PresenceIn) -> None:
    match frame:
        case Heartbeat():
            await session.renew()
        case PresenceIn():
            await session.announce(frame)
        case Answer(ack=str() as item_id):
            await session.settle(item_id, ack=True)
        case Answer(nack=str() as item_id):
            await session.settle(item_id, ack=False, requeue=frame.requeue)
        case _:
            raise InputError("an ack or nack names the item it settles")
