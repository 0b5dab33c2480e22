"""Customers: profile, lookup, unified history, merge."""

from __future__ import annotations

import msgspec
from aiohttp import web

from router.errors import InputError, NotFound
from router.http.keys import BROKER, CLOCK, METRICS, SETTINGS, STORE
from router.http.responses import decode, int_param, json_response, read_body
from router.identity import parse_key
from router.models import Customer, MergeRecord

routes = web.RouteTableDef()

MAX_PAGE = 200


class MergeBody(msgspec.Struct, forbid_unknown_fields=True):
    other: str


@routes.get("/v1/customers")
async def lookup(request: web.Request) -> web.Response:
    key = request.query.get("identity")
    if not key:
        raise InputError("give ?identity=kind:value, e.g. identity=email:maria@example.com")
    region = request.app[SETTINGS].identity.default_region or None
    identity = parse_key(key, default_region=region)
    store = request.app[STORE]
    customer_id = await store.find_customer(identity.key)
    customer = await store.get_customer(customer_id) if customer_id else None
    return json_response({"customers": [customer] if customer else []})


@routes.get("/v1/customers/{id}")
async def profile(request: web.Request) -> web.Response:
    customer = await _live(request)
    return json_response(customer)


@routes.get("/v1/customers/{id}/history")
async def history(request: web.Request) -> web.Response:
    customer = await _live(request)
    limit = int_param(request, "limit", default=50, low=1, high=MAX_PAGE)
    before = request.query.get("before") or None
    page = await request.app[STORE].history(customer.customer_id, limit=limit, before=before)
    return json_response(page)


@routes.get("/v1/customers/{id}/merges")
async def merges(request: web.Request) -> web.Response:
    customer = await _customer(request)
    return json_response({"merges": await request.app[STORE].merges(customer.customer_id)})


@routes.post("/v1/customers/{id}/merge")
async def merge(request: web.Request) -> web.Response:
    """Merge ``other`` into this customer (an agent confirmed they are one person)."""
    body = decode(await read_body(request, request.app[SETTINGS].http.max_body_bytes), MergeBody)
    store = request.app[STORE]
    record = await store.merge(
        request.match_info["id"], body.other, at=request.app[CLOCK].now(), reason="api"
    )
    request.app[METRICS].merges.labels("api").inc()
    await publish_merge(request.app, record)
    return json_response({"merge": record, "customer": await store.get_customer(record.winner)})


async def publish_merge(app: web.Application, record: MergeRecord) -> None:
    await app[BROKER].publish_event("customer.merged", msgspec.json.encode(record))


async def _customer(request: web.Request) -> Customer:
    customer = await request.app[STORE].get_customer(request.match_info["id"])
    if customer is None:
        raise NotFound(f"no customer {request.match_info['id']!r}")
    return customer


async def _live(request: web.Request) -> Customer:
    """The customer, or a redirect to the customer it was merged into."""
    customer = await _customer(request)
    if customer.merged_into is None:
        return customer
    winner = await request.app[STORE].resolve_customer(customer.customer_id)
    suffix = request.path.removeprefix(f"/v1/customers/{customer.customer_id}")
    location = f"/v1/customers/{winner}{suffix}"
    if request.query_string:
        location += f"?{request.query_string}"
    raise web.HTTPPermanentRedirect(location)
