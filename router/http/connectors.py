"""Provider webhooks (``GET|POST /v1/connectors/{name}/webhook``) and what connectors
leave for operators: quarantined messages, delivery reports and attachment contents.

A webhook POST is verified on its raw body before anything is parsed (401 and nothing
stored on a bad signature), checked against replays when its signature covers a nonce,
parsed by the connector, and stored through the intake before the 2xx goes out.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import structlog
from aiohttp import web

from connectors.base import WEBHOOK_PATH, Connector, Reply, WebhookRequest, webhook_url
from router.errors import NotFound, Unauthorized
from router.http.keys import BLOBS, CLOCK, CONNECTORS, INTAKE, LEDGER, METRICS, SETTINGS
from router.http.responses import int_param, json_response, read_body
from router.ledger import QuarantineEntry

log = structlog.get_logger("router.connectors")

routes = web.RouteTableDef()


def connector(request: web.Request, name: str | None = None) -> Connector:
    name = name or request.match_info["name"]
    found = request.app[CONNECTORS].get(name)
    if found is None:
        raise NotFound(f"no connector {name!r} is configured (see `omniroute connectors`)")
    return found


def webhook_connector(request: web.Request) -> Connector:
    """The configured connector the path names, if it takes webhooks (404 otherwise)."""
    found = connector(request)
    if not found.manifest.webhook:
        raise NotFound(f"connector {found.manifest.name!r} has no webhook")
    return found


def body_limit(request: web.Request, name: str) -> int:
    """The connector's ``max_body_bytes`` setting when it has one, else ``http``'s."""
    conf = request.app[SETTINGS].connectors.get(name)
    own = getattr(conf, "max_body_bytes", None)
    return int(own) if own else request.app[SETTINGS].http.max_body_bytes


def webhook_request(request: web.Request, body: bytes) -> WebhookRequest:
    public = request.app[SETTINGS].http.public_url.rstrip("/")
    url = public + request.path_qs if public else str(request.url)
    return WebhookRequest(
        method=request.method,
        url=url,
        headers=request.headers,
        body=body,
        received_at=request.app[CLOCK].now(),
        query=tuple(request.query.items()),
    )


def reply_response(reply: Reply) -> web.Response:
    return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)


@routes.get(WEBHOOK_PATH)
async def handshake(request: web.Request) -> web.Response:
    found = webhook_connector(request)
    reply = found.handshake(webhook_request(request, b""))
    log.info("webhook.handshake", connector=found.manifest.name)
    return reply_response(reply)


@routes.post(WEBHOOK_PATH)
async def webhook(request: web.Request) -> web.Response:
    found = webhook_connector(request)
    name = found.manifest.name
    body = await read_body(request, body_limit(request, name))
    incoming = webhook_request(request, body)
    try:
        verified = found.verify(incoming)
    except (UnicodeError, ValueError):  # a signature header or field no provider would send
        raise Unauthorized("malformed signature") from None
    if verified.nonce is not None:
        now = incoming.received_at
        fresh = await request.app[LEDGER].claim_nonce(
            name,
            verified.nonce,
            fingerprint=verified.fingerprint or hashlib.sha256(body).hexdigest(),
            expires_at=now + timedelta(seconds=verified.nonce_ttl_s),
            now=now,
        )
        if not fresh:
            raise Unauthorized("signature token already used for another request (replay)")
    parsed = await found.parse(incoming)
    accepted = await request.app[INTAKE].accept(name, parsed)
    request.app[METRICS].webhooks.labels(name).inc()
    log.info(
        "webhook.stored",
        connector=name,
        accepted=accepted.accepted,
        duplicates=accepted.duplicates,
        recorded=accepted.recorded,
        edited=accepted.edited,
        deliveries=accepted.deliveries,
        quarantined=accepted.quarantined,
        ignored=accepted.ignored,
    )
    if parsed.reply is not None:
        return reply_response(parsed.reply)
    return json_response(accepted)


@routes.get("/v1/connectors")
async def list_connectors(request: web.Request) -> web.Response:
    public = request.app[SETTINGS].http.public_url
    out = []
    for _, found in sorted(request.app[CONNECTORS].items()):
        manifest = found.manifest
        out.append(
            {
                "name": manifest.name,
                "channel": manifest.channel,
                "title": manifest.title,
                "webhook": webhook_url(manifest, public),
            }
        )
    return json_response({"connectors": out})


@routes.get("/v1/quarantine")
async def quarantined(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", default=50, low=1, high=500)
    page = await request.app[LEDGER].quarantined(limit=limit, before=request.query.get("before"))
    return json_response(page)


@routes.get("/v1/quarantine/{quarantine_id}")
async def quarantined_one(request: web.Request) -> web.Response:
    return json_response(await _quarantined(request))


@routes.get("/v1/quarantine/{quarantine_id}/raw")
async def quarantined_raw(request: web.Request) -> web.StreamResponse:
    entry = await _quarantined(request)
    return _file(request, entry.blob, entry.content_type)


async def _quarantined(request: web.Request) -> QuarantineEntry:
    entry = await request.app[LEDGER].get_quarantined(request.match_info["quarantine_id"])
    if entry is None:
        raise NotFound("no such quarantined message")
    return entry


@routes.delete("/v1/quarantine/{quarantine_id}")
async def drop_quarantined(request: web.Request) -> web.Response:
    if not await request.app[LEDGER].drop_quarantined(request.match_info["quarantine_id"]):
        raise NotFound("no such quarantined message")
    return web.Response(status=204)


@routes.get("/v1/deliveries/{source}/{external_id}")
async def deliveries(request: web.Request) -> web.Response:
    reports = await request.app[LEDGER].deliveries(
        request.match_info["source"], request.match_info["external_id"]
    )
    return json_response({"deliveries": reports})


@routes.get("/v1/attachments/{blob}")
async def attachment(request: web.Request) -> web.StreamResponse:
    return _file(request, request.match_info["blob"], "application/octet-stream")


def _file(request: web.Request, blob: str, content_type: str) -> web.StreamResponse:
    path = request.app[BLOBS].path(blob)
    if not path.is_file():
        raise NotFound("no such attachment")
    return web.FileResponse(
        path,
        headers={"Content-Type": content_type, "X-Content-Type-Options": "nosniff"},
    )
