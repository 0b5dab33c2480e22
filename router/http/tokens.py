"""``POST /v1/agents/{id}/token``: the administrator mints a token for one agent tool.

Body optional: ``{"ttl_s": N}`` (1 s to 365 days; default 30 days). Answers 201
``{"agent_id", "token", "expires_at"}``; 422 for an agent id that
``router.queue_spec.valid_agent_id`` refuses. Only the API token may mint (the auth
middleware refuses an agent token here). Tokens are not stored: rotating the API token
revokes them all. The token itself is never logged.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import structlog
from aiohttp import web

from router import agent_tokens
from router.errors import InvalidAgentId
from router.http.auth import agent_key
from router.http.keys import CLOCK
from router.http.responses import decode, json_response, read_body
from router.queue_spec import valid_agent_id

log = structlog.get_logger("router.http.tokens")
routes = web.RouteTableDef()

MAX_BODY_BYTES = 1024


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ttl_s: Annotated[float, msgspec.Meta(ge=1, le=agent_tokens.MAX_TTL_S)] = (
        agent_tokens.DEFAULT_TTL_S
    )


@routes.post("/v1/agents/{id}/token")
async def mint_token(request: web.Request) -> web.Response:
    agent_id = request.match_info["id"]
    if not valid_agent_id(agent_id):
        raise InvalidAgentId(
            "agent id must be 1 to 128 characters: letters, digits, then also _ . @ -"
        )
    body = await read_body(request, MAX_BODY_BYTES)
    wanted = decode(body, TokenRequest) if body.strip() else TokenRequest()
    minted = agent_tokens.mint(
        agent_key(request.app), agent_id, now=request.app[CLOCK].now(), ttl_s=wanted.ttl_s
    )
    log.info("agent_token.minted", agent_id=agent_id, expires_at=minted.expires_at.isoformat())
    return json_response(minted, status=201)
