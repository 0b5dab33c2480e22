"""Conversations: state and SLA clocks, and the agent events that move them.

``GET /v1/conversations/{id}`` shows the conversation with each clock (target, due,
paused time, met / breached). ``POST /v1/conversations/{id}/events`` takes
``{"type": "accepted"|"replied"|"resolved"|"reopened"|"pending"|"transferred",
"agent_id": ..., "queue": ...}``: 404 for an unknown conversation, 409 with the reason
for an event impossible in its state (a reply on a resolved conversation).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from router import sla
from router.errors import Forbidden, NotFound
from router.http.auth import AGENT_ID
from router.http.keys import CLOCK, CONVERSATIONS, POLICY, SETTINGS, STORE
from router.http.responses import decode, json_response, read_body
from router.lifecycle import AgentEvent
from router.models import Conversation

routes = web.RouteTableDef()


@routes.get("/v1/conversations/{id}")
async def conversation(request: web.Request) -> web.Response:
    found = await request.app[STORE].get_conversation(request.match_info["id"])
    if found is None:
        raise NotFound(f"no conversation {request.match_info['id']!r}")
    return json_response(view(request.app, found))


@routes.post("/v1/conversations/{id}/events")
async def post_event(request: web.Request) -> web.Response:
    body = await read_body(request, request.app[SETTINGS].http.max_body_bytes)
    event = decode(body, AgentEvent)
    agent = request.get(AGENT_ID)
    if agent is not None and event.agent_id != agent:
        raise Forbidden(f"this token is agent {agent!r}, not {event.agent_id!r}")
    updated = await request.app[CONVERSATIONS].event(request.match_info["id"], event)
    return json_response(view(request.app, updated))


def view(app: web.Application, conv: Conversation) -> dict[str, Any]:
    """The conversation as stored, with its clocks as the API shows them."""
    out: dict[str, Any] = msgspec.to_builtins(conv)
    now = app[CLOCK].now()
    calendar = None
    if conv.sla is not None:
        calendar = app[POLICY].calendars.get(conv.sla.calendar)
    clocks = conv.sla.clocks if conv.sla is not None else []
    out["clocks"] = msgspec.to_builtins([sla.clock_view(c, now, calendar) for c in clocks])
    return out
