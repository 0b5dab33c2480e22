"""The OpenAPI 3.1 document the daemon serves at ``GET /v1/openapi.json``. Schemas are
generated from the model structs, so the document cannot drift from the code; the few
written by hand (errors, queue list, a clock as the API shows it) are checked against
the code by the document's test.

Events go to RabbitMQ, not over HTTP, so they have no path: the ``Event`` component
pairs the routing key with the message body, ``EventPayload`` (``MergeRecord`` for
``customer.merged``); ``/v1/asyncapi.json`` documents the queues and events in full."""

from __future__ import annotations

from functools import cache
from typing import Any, get_args

import msgspec
from aiohttp import web

from router import __version__
from router.http import openapi_connectors
from router.http.responses import json_response
from router.lifecycle import AgentEvent, Event
from router.models import (
    ClockKind,
    ClockStatus,
    Conversation,
    Customer,
    HistoryPage,
    InboundMessage,
    MergeRecord,
    WorkItem,
)
from router.presence import AgentState, PresenceIn

routes = web.RouteTableDef()

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), 'Error: {"error": {"code", "message"}}')
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


_SOCKET_DOC = (
    'Frames from the daemon: {"type": "item", "redelivered": bool, "item": WorkItem} and '
    '{"type": "error", "error": {...}}. At most `capacity` items are unacknowledged; '
    "unacked items return to the queue when the socket closes. Authenticate with the "
    "Authorization header or ?access_token=."
)


_EVENTS_DOC = (
    "Moves the SLA clocks (a reply meets the response clock, pending pauses them, "
    "resolved stops them and withdraws the waiting item, reopened restarts them) and "
    "publishes conversation.<type> to omniroute.events (body: the Event schema). "
    "409 names why the transition is impossible (a reply to a resolved conversation)."
)


_PRESENCE_DOC = (
    "status available / away / offline; queues it serves (its personal queue agent.<id> "
    'always); skills; capacity per channel ({"chat": 3, "email": 5}, key default '
    "for the rest). With no new announcement within the lease the agent is offline: its "
    "sockets close (code 4000) and their unacknowledged items return to their queues."
)
_MINT_DOC = (
    "The token (agt.<payload>.<signature>) reaches only what an agent tool needs: "
    "GET /v1/queues and queue sockets (not another agent's personal queue), its own "
    "/v1/agents/{id}/ paths, conversations (events only as itself) and a customer's "
    "record and history; anything else is 403 forbidden. Rotating the API token revokes "
    "every agent token."
)
_AGENT_SOCKET_DOC = (
    'Frames from the daemon: item (as on the queue socket), {"type": "heartbeat", '
    '"lease_until"} and error. Frames from the tool: {"ack": id}, {"nack": id, '
    '"requeue": bool}, {"type": "heartbeat"} (renews the lease) and {"type": "presence", '
    "...PresenceIn} (announces). See /v1/asyncapi.json."
)


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _ERROR for s in statuses}


def _paths() -> dict[str, Any]:
    accepted = _json(_ref("Accepted"), "Stored; routed to a queue")
    return {
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: store and broker reachable",
                "responses": {"200": {"description": "ready"}, **_errors(503)},
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}
        },
        "/v1/messages": {
            "post": {
                "summary": "Ingest one canonical message (generic connector)",
                "requestBody": {"required": True, **_json(_ref("InboundMessage"), "message")},
                "responses": {
                    "202": accepted,
                    "200": _json(
                        _ref("Accepted"), "Duplicate of a stored message (duplicate: true)"
                    ),
                    **_errors(400, 401, 413, 422, 503),
                },
            }
        },
        "/v1/customers": {
            "get": {
                "summary": "Look up the customer owning a verified identity",
                "parameters": [
                    {
                        "name": "identity",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "example": "email:maria.lopez@example.com"},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "customers": {"type": "array", "items": _ref("Customer")}
                            },
                        },
                        "matches (0 or 1)",
                    ),
                    **_errors(400, 401, 422),
                },
            }
        },
        "/v1/customers/{id}": {
            "get": {
                "summary": "Customer profile: identities, suggested links, attributes",
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref("Customer"), "profile"),
                    "308": {"description": "merged: Location names the surviving customer"},
                    **_errors(401, 404),
                },
            }
        },
        "/v1/customers/{id}/history": {
            "get": {
                "summary": "Every message of the customer on every channel, newest first",
                "parameters": [
                    _ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "next_before of the previous page",
                    },
                ],
                "responses": {
                    "200": _json(_ref("HistoryPage"), "page"),
                    "308": {"description": "merged"},
                    **_errors(400, 401, 404),
                },
            }
        },
        "/v1/customers/{id}/merge": {
            "post": {
                "summary": "Merge another customer into this one",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "required": ["other"],
                            "properties": {"other": {"type": "string"}},
                        },
                        "the customer to merge in",
                    ),
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "merge": _ref("MergeRecord"),
                                "customer": _ref("Customer"),
                            },
                        },
                        "merged",
                    ),
                    **_errors(400, 401, 404, 409),
                },
            }
        },
        "/v1/customers/{id}/merges": {
            "get": {
                "summary": "Merge records of the customer",
                "parameters": [_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "merges": {"type": "array", "items": _ref("MergeRecord")}
                            },
                        },
                        "records",
                    ),
                    **_errors(401, 404),
                },
            }
        },
        "/v1/conversations/{id}": {
            "get": {
                "summary": "Conversation state, queue, priority, deadline and SLA clocks",
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref("ConversationView"), "conversation"),
                    **_errors(401, 404),
                },
            }
        },
        "/v1/conversations/{id}/events": {
            "post": {
                "summary": "Report an agent event: accepted, replied, pending, resolved, "
                "reopened or transferred (to `queue`)",
                "description": _EVENTS_DOC,
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("AgentEvent"), "event")},
                "responses": {
                    "200": _json(_ref("ConversationView"), "the conversation after the event"),
                    "400": _json(_ref("Error"), "Malformed body or unknown event type"),
                    "404": _json(_ref("Error"), "Unknown conversation or transfer queue"),
                    "409": _json(_ref("Error"), "Impossible in the conversation's state"),
                    "422": _json(_ref("Error"), "A transfer without its target queue"),
                    **_errors(401, 413, 503),
                },
            }
        },
        "/v1/queues": {
            "get": {
                "summary": "Queues: backlog, ready, consumers, oldest deadline",
                "responses": {"200": _json(_ref("QueueList"), "queues"), **_errors(401)},
            }
        },
        "/v1/agents": {
            "get": {
                "summary": "Agents: status, queues, skills, capacity, load and what they hold",
                "responses": {"200": _json(_ref("AgentList"), "agents"), **_errors(401, 403)},
            }
        },
        "/v1/agents/{id}": {
            "get": {
                "summary": "One agent's presence and load",
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref("AgentView"), "agent"),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/agents/{id}/presence": {
            "post": {
                "summary": "Announce or renew an agent's presence (a lease of lease_s)",
                "description": _PRESENCE_DOC,
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("PresenceIn"), "presence")},
                "responses": {
                    "200": _json(_ref("AgentView"), "the agent after the announcement"),
                    "422": _json(_ref("Error"), "invalid_agent_id or unknown_queue"),
                    **_errors(400, 401, 403, 413),
                },
            }
        },
        "/v1/agents/{id}/token": {
            "post": {
                "summary": "Mint a per-agent token (API token only)",
                "description": _MINT_DOC,
                "parameters": [_ID],
                "requestBody": {
                    "required": False,
                    **_json(
                        {
                            "type": "object",
                            "properties": {"ttl_s": {"type": "number", "exclusiveMinimum": 0}},
                        },
                        "optional lifetime in seconds (default 30 days, at most 365 days)",
                    ),
                },
                "responses": {
                    "201": _json(_ref("AgentToken"), "the token"),
                    "422": _json(_ref("Error"), "invalid_agent_id"),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/agents/{id}/subscribe": {
            "get": {
                "summary": "WebSocket: the agent's own items (personal queue and the queues "
                "of its presence) within its capacity per channel",
                "description": _AGENT_SOCKET_DOC,
                "parameters": [_ID],
                "responses": {
                    "101": {"description": "switching to WebSocket"},
                    **_errors(400, 401, 403, 422),
                },
            }
        },
        "/v1/queues/{name}/subscribe": {
            "get": {
                "summary": 'WebSocket: receive work items, answer {"ack": id} or {"nack": id}',
                "description": _SOCKET_DOC,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "capacity",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                    },
                ],
                "responses": {
                    "101": {"description": "switching to WebSocket"},
                    **_errors(400, 401, 404),
                },
            }
        },
    }


def _clock_view() -> dict[str, Any]:
    """``router.sla.clock_view``'s dict (a plain dict, so written out here)."""
    when = {"type": ["string", "null"], "format": "date-time"}
    properties = {
        "kind": {"enum": list(get_args(ClockKind))},
        "status": {"enum": list(get_args(ClockStatus))},
        "target_s": {"type": "integer", "description": "target in business seconds"},
        "started_at": {"type": "string", "format": "date-time"},
        "due": {**when, "description": "when it breaches while it runs"},
        "paused_s": {"type": "number"},
        "met_at": when,
        "breached": {"type": "boolean"},
        "warned_at": when,
        "breached_at": when,
        "remaining_s": {"type": ["number", "null"]},
    }
    return {
        "type": "object",
        "description": "One SLA clock as the API shows it. paused_s includes a pause "
        "still going on; remaining_s is the business time left of a running clock.",
        "required": list(properties),
        "properties": properties,
    }


def _extra_schemas() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "ClockView": _clock_view(),
        "ConversationView": {
            "description": "The conversation as stored, with its clocks as the API shows them",
            "allOf": [
                _ref("Conversation"),
                {
                    "type": "object",
                    "required": ["clocks"],
                    "properties": {"clocks": {"type": "array", "items": _ref("ClockView")}},
                },
            ],
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": string, "message": string},
                }
            },
        },
        "Accepted": {
            "type": "object",
            "required": [
                "message_id",
                "customer_id",
                "conversation_id",
                "queue",
                "priority",
                "deadline",
                "duplicate",
            ],
            "properties": {
                "message_id": string,
                "customer_id": string,
                "conversation_id": string,
                "queue": string,
                "priority": {"type": "integer"},
                "deadline": {"type": "string", "format": "date-time"},
                "duplicate": {"type": "boolean"},
            },
        },
        "AgentView": {
            "description": "An agent's presence, with its load (items held per channel)",
            "allOf": [
                _ref("AgentState"),
                {
                    "type": "object",
                    "required": ["load"],
                    "properties": {
                        "load": {"type": "object", "additionalProperties": {"type": "integer"}}
                    },
                },
            ],
        },
        "AgentList": {
            "type": "object",
            "required": ["agents"],
            "properties": {"agents": {"type": "array", "items": _ref("AgentView")}},
        },
        "AgentToken": {
            "type": "object",
            "required": ["agent_id", "token", "expires_at"],
            "properties": {
                "agent_id": string,
                "token": string,
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "QueueList": {
            "type": "object",
            "properties": {
                "queues": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": string,
                            "backlog": {"type": "integer"},
                            "ready": {"type": "integer"},
                            "depth": {"type": "integer"},
                            "consumers": {"type": "integer"},
                            "oldest_deadline": {"type": ["string", "null"], "format": "date-time"},
                            "at_risk": {
                                "type": "integer",
                                "description": "waiting items due within routing.at_risk_s",
                            },
                        },
                    },
                }
            },
        },
    }


_STRUCTS = (
    InboundMessage,
    Customer,
    HistoryPage,
    Conversation,
    MergeRecord,
    WorkItem,
    AgentEvent,
    Event,
    PresenceIn,
    AgentState,
)


@cache
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _STRUCTS + openapi_connectors.STRUCTS,
        ref_template=_REF,
    )
    components["Event"] = {
        **components["Event"],
        "description": "An event on the topic exchange omniroute.events: the message body "
        "is `payload` (JSON), published with `routing_key` as the AMQP routing key. Keys: "
        "sla.warning, sla.breached, conversation.<accepted|replied|pending|resolved|"
        "reopened|transferred>, conversation.overflowed; customer.merged (body: "
        "MergeRecord).",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "omniroute",
            "version": __version__,
            "description": "Omnichannel message routing daemon. "
            "/v1 needs Authorization: Bearer <token>.",
        },
        "components": {
            "schemas": {**components, **_extra_schemas()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {**_paths(), **openapi_connectors.paths()},
    }


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())
