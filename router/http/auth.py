"""Bearer-token authentication for ``/v1`` (webhooks verify their own signatures).

Two kinds of token. The API token (the administrator's) works everywhere. An agent token
(``router.agent_tokens``, minted by ``POST /v1/agents/{id}/token``) works only on what an
agent tool needs, as that one agent; the handler finds the agent in
``request.get(AGENT_ID)`` (None for the API token). Anything else is 403 ``forbidden``.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

import structlog
from aiohttp import web

from router import agent_tokens
from router.errors import Forbidden, Unauthorized
from router.http.keys import CLOCK, TOKEN
from router.http.responses import Handler
from router.queue_spec import AGENT_QUEUE_PREFIX
from router.settings import Secret

log = structlog.get_logger("router.http")

PUBLIC_PREFIXES = ("/v1/openapi.json", "/v1/asyncapi.json", "/v1/chat/")
"""Public: the documents, and the web chat (visitors prove themselves with a chat token)."""
AGENT_ID = web.RequestKey("agent_id", str)
"""``request[AGENT_ID]``: the agent an agent token speaks for (unset for the API token)."""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/v1/") and not _public(path):
        agent_id = _check(request, request.app[TOKEN])
        if agent_id is not None:
            _authorize_agent(request, agent_id)
            request[AGENT_ID] = agent_id
    return await handler(request)


def _public(path: str) -> bool:
    """Provider webhooks prove themselves with their own signatures."""
    if path.startswith(PUBLIC_PREFIXES):
        return True
    parts = path.split("/")
    return len(parts) == 5 and parts[2] == "connectors" and parts[4] == "webhook"


def agent_key(app: web.Application) -> bytes:
    """The key agent tokens are signed with, derived from the current API token."""
    return agent_tokens.derive_key(app[TOKEN].get())


def _check(request: web.Request, token: Secret) -> str | None:
    """None for the API token, the agent's id for a valid agent token, else 401."""
    given = _presented(request)
    if given is None:
        raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
    if hmac.compare_digest(given.encode(), token.get().encode()):
        return None
    if agent_tokens.is_agent_token(given):
        now = request.app[CLOCK].now()
        return agent_tokens.verify(agent_key(request.app), given, now=now).sub
    raise Unauthorized("invalid token")


def _authorize_agent(request: web.Request, agent_id: str) -> None:
    if not agent_may(request.method, request.rel_url.path_safe, agent_id):
        raise Forbidden(
            f"an agent token (agent {agent_id!r}) may not {request.method} {request.path}; "
            "this needs the API token"
        )


def agent_may(method: str, path: str, agent_id: str) -> bool:
    """Whether agent ``agent_id``'s token may call ``method path``: the queues it consumes
    (not another agent's personal queue), its own ``/v1/agents/{id}/...`` except minting
    tokens, conversations (read, post events), a customer and their history, attachment
    contents and delivery reports.

    ``path`` is the router's own view of the path (``rel_url.path_safe``: ``%2F`` stays
    encoded), so a segment here is a segment to the route it reaches."""
    read = method in ("GET", "HEAD")
    match path.split("/")[2:]:
        case ["queues"] | ["customers", _] | ["customers", _, "history"]:
            return read
        case ["attachments", _] | ["deliveries", _, _]:
            return read  # what a work item's message links to
        case ["queues", name, "subscribe"]:
            return read and _own_or_team(name, agent_id)
        case ["agents", owner, *rest]:
            return owner == agent_id and rest[:1] != ["token"]
        case ["conversations", _, *_]:
            return read or method == "POST"
    return False


def _own_or_team(queue: str, agent_id: str) -> bool:
    if queue.startswith(AGENT_QUEUE_PREFIX):
        return queue == AGENT_QUEUE_PREFIX + agent_id
    return True


def _presented(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("access_token")  # browsers cannot set headers on sockets
    return None


def resolve_token(configured: Secret, data_dir: Path) -> Secret:
    """The configured token, or one kept in ``<data dir>/api-token`` (made on first start)."""
    if configured:
        return configured
    path = data_dir / "api-token"
    if path.exists():
        return Secret(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    log.warning("auth.token_generated", path=str(path))
    return Secret(token)
