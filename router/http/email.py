"""``POST /v1/connectors/email/raw``: one RFC 5322 message (``message/rfc822``), for a
mail server's pipe or a script (API token). Parsed by the ``email`` connector.

Answers ``202`` with the ``Accepted`` JSON once the mail is stored (a message, an
auto-reply or bounce recorded, or a mail that could not be read kept in quarantine), and
``200`` when nothing new was stored (the same Message-ID again, or mail from one of the
connector's own addresses). ``404`` when the ``email`` connector is not configured,
``413`` over its ``max_body_bytes``.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from router.errors import InputError
from router.http.connectors import body_limit, connector, webhook_request
from router.http.keys import INTAKE, METRICS
from router.http.responses import json_response, read_body

log = structlog.get_logger("router.email")

routes = web.RouteTableDef()

NAME = "email"


@routes.post("/v1/connectors/email/raw")
async def raw(request: web.Request) -> web.Response:
    found = connector(request, NAME)
    body = await read_body(request, body_limit(request, NAME))
    if not body.strip():
        raise InputError("the body must be one email message (message/rfc822), not empty")
    parsed = await found.parse(webhook_request(request, body))
    accepted = await request.app[INTAKE].accept(NAME, parsed)
    request.app[METRICS].webhooks.labels(NAME).inc()
    log.info(
        "email.stored",
        via="raw",
        accepted=accepted.accepted,
        duplicates=accepted.duplicates,
        recorded=accepted.recorded,
        quarantined=accepted.quarantined,
        ignored=accepted.ignored,
    )
    stored = accepted.accepted + accepted.recorded + accepted.quarantined
    return json_response(accepted, status=202 if stored else 200)
