"""``POST /v1/messages``: the generic connector — one canonical message as JSON."""

from __future__ import annotations

from aiohttp import web

from router.http.keys import INGESTOR, SETTINGS
from router.http.responses import json_response, read_body
from router.models import IngestResult

routes = web.RouteTableDef()


@routes.post("/v1/messages")
async def post_message(request: web.Request) -> web.Response:
    body = await read_body(request, request.app[SETTINGS].http.max_body_bytes)
    result = await request.app[INGESTOR].ingest_json(body)
    return json_response(accepted(result), status=200 if result.duplicate else 202)


def accepted(result: IngestResult) -> dict[str, object]:
    return {
        "message_id": result.message_id,
        "customer_id": result.customer_id,
        "conversation_id": result.conversation_id,
        "queue": result.queue,
        "priority": result.priority,
        "deadline": result.deadline,
        "duplicate": result.duplicate,
    }
