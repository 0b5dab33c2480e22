"""Operations endpoints: liveness, readiness (backends reachable), Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router.errors import BackendUnavailable
from router.http.keys import BROKER, METRICS, STORE
from router.http.queues import queue_states
from router.http.responses import error_body, json_response

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks = {"store": request.app[STORE].ping(), "broker": request.app[BROKER].ping()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    down = {name: r for name, r in zip(checks, results, strict=True) if r is not None}
    if not down:
        return json_response({"status": "ready"})
    for error in down.values():
        if not isinstance(error, BackendUnavailable):
            raise error
    message = "; ".join(f"{name}: {error}" for name, error in down.items())
    return json_response(error_body("backend_unavailable", message), status=503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    with contextlib.suppress(BackendUnavailable):  # counters still serve; depths keep their last
        await _refresh_depths(request.app)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _refresh_depths(app: web.Application) -> None:
    gauge = app[METRICS].queue_depth
    for queue in await queue_states(app):
        gauge.labels(queue["name"], "backlog").set(queue["backlog"])
        gauge.labels(queue["name"], "ready").set(queue["ready"])
        gauge.labels(queue["name"], "at_risk").set(queue["at_risk"])
