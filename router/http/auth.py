"""Bearer-token authentication for ``/v1`` (webhooks verify their own signatures)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

import structlog
from aiohttp import web

from router.errors import Unauthorized
from router.http.keys import TOKEN
from router.http.responses import Handler
from router.settings import Secret

log = structlog.get_logger("router.http")

PUBLIC_PREFIXES = ("/v1/openapi.json", "/v1/connectors/")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/v1/") and not path.startswith(PUBLIC_PREFIXES):
        _check(request, request.app[TOKEN])
    return await handler(request)


def _check(request: web.Request, token: Secret) -> None:
    given = _presented(request)
    if given is None:
        raise Unauthorized("missing credentials: send Authorization: Bearer <token>")
    if not hmac.compare_digest(given.encode(), token.get().encode()):
        raise Unauthorized("invalid token")


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
