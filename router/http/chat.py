"""The web chat (the ``webchat`` connector): a website's widget talks to omniroute.

- ``POST /v1/chat/sessions`` (public) ``{"name"?, "email"?, "visitor_token"?}`` →
  ``{"visitor_id", "token", "expires_at", "ws_url", "resumed"}``: a signed visitor token,
  new, or renewed for the visitor whose current token is given (same visitor id, so the
  same customer and conversation).
- ``GET /v1/chat/ws?token=...`` (public): the visitor's socket; its frames are
  described in ``connectors.webchat.frames``. A message is acked once stored. A missing, bad or
  expired token closes the socket with code 4401 and the reason (browsers cannot read an
  HTTP status refusing an upgrade, but they can read a close code); so does a token
  expiring while connected, at the next frame.
- ``POST /v1/conversations/{id}/replies`` (API or agent token) ``{"agent_id", "text"}``:
  an agent answers a web chat conversation. The reply goes to the visitor's sockets on
  every router process (``connectors.webchat.hub``) and the conversation gets the agent
  event ``replied`` (its SLA clocks move). Other channels: 409 ``outbound_unsupported``.

Both public endpoints check the ``Origin`` header against the connector's
``allowed_origins`` (403) and answer browsers' CORS preflight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import structlog
from aiohttp import WSMsgType, web

from connectors.webchat import WebChatConnector
from connectors.webchat.hub import ChatHub, ChatReply
from connectors.webchat.parse import IDENTITY_KIND, SOURCE
from connectors.webchat.session import CLOSE_UNAUTHORIZED, VisitorSession
from connectors.webchat.tokens import Claims, Email, VisitorName
from router.errors import Conflict, Forbidden, InputError, NotFound, Unauthorized
from router.http.auth import AGENT_ID
from router.http.conversations import view
from router.http.keys import (
    BROKER,
    CLOCK,
    CONNECTORS,
    CONVERSATIONS,
    INTAKE,
    SETTINGS,
    SOCKETS,
    STORE,
)
from router.http.responses import decode, json_response, read_body
from router.identity import mask
from router.lifecycle import AgentEvent

log = structlog.get_logger("router.http.chat")
routes = web.RouteTableDef()

HUB = web.AppKey("chat_hub", ChatHub)
HEARTBEAT_S = 30.0
"""aiohttp pings the socket this often (browsers answer by themselves) and closes it when
no answer comes within half of it."""
MAX_BODY_BYTES = 16 * 1024
MAX_REPLY_CHARS = 32 * 1024
_CORS_MAX_AGE_S = "600"


class OutboundUnsupported(Conflict):
    code = "outbound_unsupported"


class SessionIn(msgspec.Struct, forbid_unknown_fields=True):
    name: VisitorName | None = None
    email: Email | None = None
    visitor_token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    """The visitor's current token: renew it (same visitor, same conversation)."""


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True):
    agent_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REPLY_CHARS)]


def setup(app: web.Application) -> None:
    """Register the chat hub's start-up and clean-up with the app (``create_app``), last
    of the resources (it needs the broker and the connectors; it stops first), and the
    CORS headers of the chat's public endpoints."""
    app.cleanup_ctx.append(_hub_ctx)
    app.on_response_prepare.append(_cors)


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    if not isinstance(app[CONNECTORS].get(SOURCE), WebChatConnector):
        yield
        return
    hub = ChatHub(app[BROKER])
    await hub.start()
    app[HUB] = hub
    try:
        yield
    finally:
        await hub.stop()


# --- sessions -----------------------------------------------------------------------


@routes.post("/v1/chat/sessions")
async def start_session(request: web.Request) -> web.Response:
    chat = _allowed_chat(request)
    chat.check_session(request.remote or "unknown")
    body = await read_body(request, MAX_BODY_BYTES)
    given = decode(body, SessionIn) if body.strip() else SessionIn()
    token, visitor = chat.session(
        now=request.app[CLOCK].now(),
        resume=given.visitor_token,
        name=given.name,
        email=given.email,
    )
    resumed = given.visitor_token is not None
    log.info("webchat.session", visitor=_masked(visitor), resumed=resumed)
    return json_response(
        {
            "visitor_id": visitor.visitor_id,
            "token": token,
            "expires_at": visitor.expires_at,
            "ws_url": _ws_url(request, token),
            "resumed": resumed,
        }
    )


@routes.options("/v1/chat/sessions")
async def preflight(request: web.Request) -> web.Response:
    _allowed_chat(request)
    headers = {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": _CORS_MAX_AGE_S,
    }
    return web.Response(status=204, headers=headers)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    """A browser on an allowed origin may read the chat's answers (errors included)."""
    origin = request.headers.get("Origin")
    if origin is None or not request.path.startswith("/v1/chat/"):
        return
    chat = request.app[CONNECTORS].get(SOURCE) if CONNECTORS in request.app else None
    if isinstance(chat, WebChatConnector) and chat.origin_allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


def _ws_url(request: web.Request, token: str) -> str:
    """Where the widget connects: ``http.public_url`` when set (behind a proxy), else
    the address this request came to."""
    public = request.app[SETTINGS].http.public_url.rstrip("/")
    base = public or f"{request.scheme}://{request.host}"
    base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/v1/chat/ws?token={token}"


# --- the visitor's socket -------------------------------------------------------------


@routes.get("/v1/chat/ws")
async def visitor_socket(request: web.Request) -> web.WebSocketResponse:
    chat = _allowed_chat(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=chat.max_frame_bytes)
    if not ws.can_prepare(request).ok:
        raise InputError("/v1/chat/ws is a WebSocket: connect with a WebSocket client")
    try:
        visitor = chat.visitor(request.query.get("token"), now=request.app[CLOCK].now())
    except Unauthorized as exc:
        await ws.prepare(request)
        log.info("webchat.refused", reason=exc.message[:120])
        await ws.close(code=CLOSE_UNAUTHORIZED, message=_reason(exc.message))
        return ws
    await ws.prepare(request)
    socket = _Socket(ws)
    session = VisitorSession(
        chat=chat,
        intake=request.app[INTAKE],
        clock=request.app[CLOCK],
        socket=socket,
        visitor=visitor,
    )
    hub = request.app[HUB]
    hub.attach(visitor.visitor_id, socket)
    request.app[SOCKETS].add(ws)
    log.info("webchat.connected", visitor=_masked(visitor))
    try:
        await session.ready(HEARTBEAT_S)
        await _read_frames(ws, session)
    finally:
        hub.detach(visitor.visitor_id, socket)
        request.app[SOCKETS].discard(ws)
        log.info("webchat.disconnected", visitor=_masked(visitor))
    return ws


class _Socket:
    """``connectors.webchat.session.Socket`` (and the hub's ``Sink``) over aiohttp."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send_text(self, text: str) -> None:
        if self._ws.closed:
            return
        try:
            await self._ws.send_str(text)
        except ConnectionResetError:  # the visitor has gone; the reader loop ends too
            return

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=_reason(reason))


async def _read_frames(ws: web.WebSocketResponse, session: VisitorSession) -> None:
    async for received in ws:
        if received.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return  # an error: the connection is gone
        if not await session.receive(received.data):
            return


# --- agent replies --------------------------------------------------------------------


@routes.post("/v1/conversations/{id}/replies")
async def post_reply(request: web.Request) -> web.Response:
    reply = decode(await read_body(request, MAX_BODY_BYTES + 4 * MAX_REPLY_CHARS), ReplyIn)
    agent = request.get(AGENT_ID)
    if agent is not None and reply.agent_id != agent:
        raise Forbidden(f"this token is agent {agent!r}, not {reply.agent_id!r}")
    conversation_id = request.match_info["id"]
    found = await request.app[STORE].get_conversation(conversation_id)
    if found is None:
        raise NotFound(f"no conversation {conversation_id!r}")
    if found.source != SOURCE or not found.thread:
        raise OutboundUnsupported(
            f"omniroute does not send replies on the {found.channel} channel "
            f"(source {found.source!r}) yet: reply with the provider's own tools and post "
            "the event 'replied' to /v1/conversations/{id}/events"
        )
    hub = request.app.get(HUB)
    if hub is None:
        raise OutboundUnsupported("the webchat connector is not configured: no visitor to reach")
    event = AgentEvent(type="replied", agent_id=reply.agent_id)
    updated = await request.app[CONVERSATIONS].event(conversation_id, event)
    out = ChatReply(
        visitor_id=found.thread,
        conversation_id=conversation_id,
        agent_id=reply.agent_id,
        text=reply.text,
        at=request.app[CLOCK].now(),
    )
    await hub.publish(out)
    log.info("webchat.reply", conversation_id=conversation_id)
    return json_response({"reply": out, "conversation": view(request.app, updated)})


# --- helpers --------------------------------------------------------------------------


def _allowed_chat(request: web.Request) -> WebChatConnector:
    """The configured connector, once the request's ``Origin`` is one it allows."""
    chat = request.app[CONNECTORS].get(SOURCE)
    if not isinstance(chat, WebChatConnector):
        raise NotFound("the web chat is not configured: add a [connectors.webchat] table")
    origin = request.headers.get("Origin")
    if not chat.origin_allowed(origin):
        shown = "no Origin header" if origin is None else f"origin {origin[:100]!r}"
        raise Forbidden(f"{shown} may not use the web chat (connectors.webchat.allowed_origins)")
    return chat


def _masked(visitor: Claims) -> str:
    return mask(f"{IDENTITY_KIND}:{visitor.visitor_id}")


def _reason(message: str) -> bytes:
    """A close reason: at most 123 bytes of UTF-8."""
    return message.encode()[:123].decode(errors="ignore").encode()
