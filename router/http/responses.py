"""JSON in and out, and the one middleware that turns errors into JSON."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import structlog
from aiohttp import web

from router.errors import InputError, OmnirouteError, PayloadTooLarge, RateLimited, Unauthorized

log = structlog.get_logger("router.http")

_encoder = msgspec.json.Encoder()
T = TypeVar("T")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encoder.encode(data), status=status, content_type="application/json", headers=headers
    )


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


READ_CHUNK_BYTES = 64 * 1024


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` bytes: at once when the declared
    length is over, else as soon as the bytes read pass it (a chunked body declares none)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes is over the {limit} limit")
    body = bytearray()
    try:
        async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"body is over the {limit} byte limit")
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"body is over the {limit} byte limit") from None
    return bytes(body)


def int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``low..high``; ``InputError`` else."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InputError(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}") from None


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OmnirouteError as exc:
        level = "warning" if exc.status < 500 else "error"
        getattr(log, level)(
            "http.error",
            path=request.path,
            status=exc.status,
            code=exc.code,
            reason=exc.message[:300],
        )
        return json_response(
            error_body(exc.code, exc.message), status=exc.status, headers=_headers(exc)
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        log.warning("http.error", path=request.path, status=exc.status, code=code)
        return json_response(
            error_body(code, exc.reason),
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k == "Allow"},
        )
    except Exception:
        log.exception("http.internal_error", path=request.path)
        return json_response(error_body("internal", "internal error"), status=500)


def _headers(exc: OmnirouteError) -> dict[str, str] | None:
    """``WWW-Authenticate`` asking for basic auth; ``Retry-After`` (whole seconds)."""
    if isinstance(exc, Unauthorized) and exc.challenge:
        return {"WWW-Authenticate": exc.challenge}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return None
