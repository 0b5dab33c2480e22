"""The AsyncAPI 2.6.0 document the daemon serves at ``GET /v1/asyncapi.json``: the queue
contract an agent tool is written against without reading our code.

It describes both ways to take work: the RabbitMQ topology (``<prefix>.queue.<name>``,
``<prefix>.agent.<agent_id>``, the ``<prefix>.events`` topic exchange and its routing
keys, ``<prefix>.inbound``, ``<prefix>.dead``) and the daemon's WebSockets
(``/v1/queues/{name}/subscribe``, ``/v1/agents/{agent_id}/subscribe``) with their
frames. Names use the configured ``amqp.prefix``; ``x-omniroute-queues`` lists the
configured queues. Payload schemas are generated from the model structs (as the OpenAPI
document's are), so they cannot drift from the code; the frames around them are written
here and checked against real frames by the document's test.

In AsyncAPI 2 terms the operations are the daemon's offer to a tool: ``subscribe`` is
what a tool receives, ``publish`` what it sends.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, get_args

import msgspec
from aiohttp import web
from yarl import URL

from connectors.webchat.hub import ChatReply
from router import __version__
from router.http.keys import SETTINGS
from router.http.queues import MAX_CAPACITY
from router.http.responses import json_response
from router.ledger import DeliveryReport
from router.lifecycle import EventPayload
from router.models import EventType, InboundMessage, MergeRecord, WorkItem
from router.presence import PresenceIn
from router.settings import Settings

routes = web.RouteTableDef()

ASYNCAPI_VERSION: Final = "2.6.0"
AGENT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}$"
"""``router.queue_spec.valid_agent_id`` as a JSON Schema pattern (the test holds them
equal)."""

_REF: Final = "#/components/schemas/{name}"
_AMQP_BINDING: Final = "0.2.0"
_WS_BINDING: Final = "0.1.0"
_STRUCTS: Final = (
    WorkItem,
    InboundMessage,
    EventPayload,
    MergeRecord,
    PresenceIn,
    DeliveryReport,
    ChatReply,
)

_ACK_DOC: Final = (
    "Consume with manual acknowledgement. Your prefetch is your capacity: at most that "
    "many items are yours unacknowledged at once. Ack an item once you hold it. "
    "`nack` with requeue puts it back for another consumer; without requeue (reject) it "
    "is dead-lettered to `{dead}`. An item not acked when your channel or connection "
    "closes goes back to the queue at once. A returned item comes again with the AMQP "
    "`redelivered` flag set, and with the same `item_id` (also the AMQP `message_id`): "
    "`item_id` is stable across redeliveries and escalations, so de-duplicate on it. "
    "The daemon releases items just in time, most urgent first (SLA deadline, then "
    "priority), and keeps the queue shallow, so arrival order is urgency order."
)
_SOCKET_DOC: Final = (
    "The daemon consumes on the socket's behalf and sends each item as an `item` frame. "
    'Answer `{{"ack": item_id}}` once you hold it, or `{{"nack": item_id, "requeue": '
    'true}}` to give it back (`"requeue": false` rejects it: dead-lettered to `{dead}` '
    "on RabbitMQ). Items not acked when the socket closes go back to their queue at once "
    "and come again with `redelivered: true` and the same `item_id`: de-duplicate on "
    "`item_id`. Items arrive most urgent first (SLA deadline, then priority). A frame "
    "the daemon cannot use gets an `error` frame; the socket stays open."
)


@routes.get("/v1/asyncapi.json")
async def asyncapi(request: web.Request) -> web.Response:
    scheme = "wss" if request.secure else "ws"
    return json_response(document(request.app[SETTINGS], ws_url=f"{scheme}://{request.host}"))


def document(settings: Settings, *, ws_url: str) -> dict[str, Any]:
    """The document for this daemon's settings; ``ws_url`` is where its sockets are."""
    names = _Names(settings.amqp.prefix)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:omniroute",
        "info": _info(),
        "defaultContentType": "application/json",
        "servers": _servers(settings, ws_url),
        "channels": {**_amqp_channels(settings, names), **_socket_channels(settings, names)},
        "components": _components(),
        "x-omniroute-queues": list(settings.queue_names),
        "x-omniroute-broker": "embedded" if settings.embedded else "rabbitmq",
    }


class _Names:
    """The RabbitMQ names under ``prefix`` (``router.backends.amqp_broker``)."""

    def __init__(self, prefix: str) -> None:
        self.queue = f"{prefix}.queue.{{name}}"
        self.agent = f"{prefix}.agent.{{agent_id}}"
        self.events = f"{prefix}.events"
        self.inbound = f"{prefix}.inbound"
        self.dead = f"{prefix}.dead"


def _info() -> dict[str, Any]:
    return {
        "title": "omniroute agent queues",
        "version": __version__,
        "description": "Work items for agent tools, on RabbitMQ or over the daemon's "
        "WebSockets, and the events omniroute publishes. The HTTP API (messages, "
        "conversations and agent events) is the OpenAPI document at /v1/openapi.json.",
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
    }


# --- servers --------------------------------------------------------------------------


def _servers(settings: Settings, ws_url: str) -> dict[str, Any]:
    return {
        "amqp": _amqp_server(settings),
        "ws": {
            "url": ws_url,
            "protocol": "wss" if ws_url.startswith("wss:") else "ws",
            "description": "The daemon's WebSockets (both backends). Authenticate with "
            "Authorization: Bearer <token> or ?access_token=<token>.",
            "security": [{"bearer": []}, {"accessToken": []}],
        },
    }


def _amqp_server(settings: Settings) -> dict[str, Any]:
    if settings.embedded:
        return {
            "url": "amqp://localhost:5672/",
            "protocol": "amqp",
            "protocolVersion": "0.9.1",
            "description": "Not in use: this daemon runs the embedded broker, so take "
            "work over the WebSockets. The AMQP channels apply when amqp.url "
            "(OMNIROUTE_AMQP_URL) is set.",
        }
    url = URL(settings.amqp.url.get()).with_user(None)  # never the credentials
    return {
        "url": str(url),
        "protocol": url.scheme,
        "protocolVersion": "0.9.1",
        "description": "RabbitMQ, shared by every omniroute process.",
        "security": [{"amqpUser": []}],
        "x-queue-type": settings.amqp.queue_type,
    }


def _vhost(settings: Settings) -> str:
    if settings.embedded:
        return "/"
    return URL(settings.amqp.url.get()).path.removeprefix("/") or "/"


# --- AMQP channels --------------------------------------------------------------------


def _amqp_channels(settings: Settings, names: _Names) -> dict[str, Any]:
    vhost = _vhost(settings)
    return {
        names.queue: _work_queue(
            settings,
            names,
            name=names.queue,
            parameter=("name", _queue_parameter(settings)),
            description="One durable queue per configured agent queue "
            "(x-omniroute-queues), published to through the default exchange.",
            operation_id="receiveWorkItem",
        ),
        names.agent: _work_queue(
            settings,
            names,
            name=names.agent,
            parameter=("agent_id", _agent_parameter()),
            description="An agent's personal queue (sticky routing offers a returning "
            "customer's conversation here first); declared when first used.",
            operation_id="receivePersonalWorkItem",
        ),
        names.events: _events_channel(names, vhost),
        names.inbound: _inbound_channel(names, vhost),
        names.dead: _dead_channel(settings, names, vhost),
    }


def _queue_arguments(settings: Settings, names: _Names) -> dict[str, str]:
    """What ``AmqpBroker`` declares the queue with; a tool that declares it too must
    pass the same (or declare passively)."""
    arguments = {"x-dead-letter-exchange": names.dead}
    if settings.amqp.queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments


def _durable_queue(name: str, vhost: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {
                "name": name,
                "durable": True,
                "exclusive": False,
                "autoDelete": False,
                "vhost": vhost,
            },
            "bindingVersion": _AMQP_BINDING,
        }
    }


def _work_queue(
    settings: Settings,
    names: _Names,
    *,
    name: str,
    parameter: tuple[str, dict[str, Any]],
    description: str,
    operation_id: str,
) -> dict[str, Any]:
    return {
        "description": description,
        "servers": ["amqp"],
        "parameters": dict([parameter]),
        "bindings": _durable_queue(name, _vhost(settings)),
        "x-amqp-arguments": _queue_arguments(settings, names),
        "subscribe": {
            "operationId": operation_id,
            "summary": "Receive work items; capacity is your prefetch",
            "description": _ACK_DOC.format(dead=names.dead),
            "bindings": {"amqp": {"ack": True, "bindingVersion": _AMQP_BINDING}},
            "x-prefetch": "your capacity: basic.qos(prefetch_count=capacity)",
            "message": _message_ref("WorkItem"),
        },
    }


def _queue_parameter(settings: Settings) -> dict[str, Any]:
    return {
        "description": "A configured agent queue (x-omniroute-queues).",
        "schema": {"type": "string", "enum": list(settings.queue_names)},
    }


def _agent_parameter() -> dict[str, Any]:
    return {
        "description": "The agent's id.",
        "schema": {"type": "string", "pattern": AGENT_ID_PATTERN},
    }


_EVENT_MESSAGES: Final = (
    "SlaWarning",
    "SlaBreached",
    "ConversationEvent",
    "ConversationOverflowed",
    "CustomerMerged",
    "MessageDelivery",
    "ChatReply",
)


def _events_channel(names: _Names, vhost: str) -> dict[str, Any]:
    keys = [key for message in _EVENT_MESSAGES for key in _routing_keys(message)]
    return {
        "description": "Topic exchange. Bind a queue of your own with a routing key "
        "pattern (`sla.*`, `conversation.#`, `#`); the routing key names the event "
        "(x-routing-keys), the body is its payload. An event nobody is bound for is "
        "dropped.",
        "servers": ["amqp"],
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": names.events,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": vhost,
                },
                "bindingVersion": _AMQP_BINDING,
            }
        },
        "x-routing-keys": keys,
        "subscribe": {
            "operationId": "receiveEvent",
            "summary": "SLA warnings and breaches, agent events, overflows, merges",
            "bindings": {"amqp": {"ack": True, "bindingVersion": _AMQP_BINDING}},
            "message": {"oneOf": [_message_ref(m) for m in _EVENT_MESSAGES]},
        },
    }


def _inbound_channel(names: _Names, vhost: str) -> dict[str, Any]:
    return {
        "description": f"Fanout exchange bound to the durable queue `{names.inbound}` "
        "(any routing key). For connectors that prefer a broker to POST /v1/messages.",
        "servers": ["amqp"],
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": names.inbound,
                    "type": "fanout",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": vhost,
                },
                "bindingVersion": _AMQP_BINDING,
            }
        },
        "publish": {
            "operationId": "sendInboundMessage",
            "summary": "Ingest one canonical message",
            "description": "Acked by omniroute once stored (the same pipeline as POST "
            "/v1/messages; a repeat of (source, external_id) is a duplicate and changes "
            f"nothing). Input that is not a valid message is dead-lettered to `{names.dead}`"
            "; a store outage leaves it for redelivery. Publish persistent messages "
            "with publisher confirms.",
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": _AMQP_BINDING}},
            "message": _message_ref("InboundMessage"),
        },
    }


def _dead_channel(settings: Settings, names: _Names, vhost: str) -> dict[str, Any]:
    arguments = _queue_arguments(settings, names)
    del arguments["x-dead-letter-exchange"]
    return {
        "description": f"Dead letters: the fanout exchange `{names.dead}` bound to this "
        "durable queue. Work items rejected without requeue and inbound input that is "
        "not a valid message land here (AMQP header x-death names the queue), kept for "
        "an operator to inspect or shovel back.",
        "servers": ["amqp"],
        "bindings": _durable_queue(names.dead, vhost),
        "x-amqp-arguments": arguments,
        "subscribe": {
            "operationId": "receiveDeadLetter",
            "summary": "Inspect rejected messages",
            "message": _message_ref("DeadLetter"),
        },
    }


# --- WebSocket channels ---------------------------------------------------------------


def _socket_channels(settings: Settings, names: _Names) -> dict[str, Any]:
    description = _SOCKET_DOC.format(dead=names.dead)
    return {
        "/v1/queues/{name}/subscribe": {
            "description": "Work items of one queue, the way RabbitMQ consumers get them "
            "(on RabbitMQ: one AMQP consumer per socket, prefetch = capacity).",
            "servers": ["ws"],
            "parameters": {"name": _queue_parameter(settings)},
            "bindings": _ws_binding(with_capacity=True),
            "subscribe": {
                "operationId": "receiveQueueFrames",
                "summary": "Items, at most `capacity` unacknowledged at once",
                "description": description,
                "message": {"oneOf": [_message_ref("ItemFrame"), _message_ref("ErrorFrame")]},
            },
            "publish": {
                "operationId": "answerQueueFrames",
                "summary": "Acknowledge or give back an item",
                "message": {"oneOf": [_message_ref("AckFrame"), _message_ref("NackFrame")]},
            },
        },
        "/v1/agents/{agent_id}/subscribe": {
            "description": "An agent's own items: its personal queue and the queues of "
            "its presence, within its capacity per channel (the daemon's accounting). "
            "Presence is a lease: announce with a presence frame (or POST "
            "/v1/agents/{agent_id}/presence) and keep it with heartbeats; when it lapses "
            "the socket closes and its unacked items go back to their queues.",
            "servers": ["ws"],
            "parameters": {"agent_id": _agent_parameter()},
            "bindings": _ws_binding(with_capacity=False),
            "subscribe": {
                "operationId": "receiveAgentFrames",
                "summary": "Items within capacity, heartbeats with the lease, errors",
                "description": description,
                "message": {
                    "oneOf": [
                        _message_ref("ItemFrame"),
                        _message_ref("HeartbeatFrame"),
                        _message_ref("ErrorFrame"),
                    ]
                },
            },
            "publish": {
                "operationId": "answerAgentFrames",
                "summary": "Acknowledge, give back, keep the lease, announce presence",
                "message": {
                    "oneOf": [
                        _message_ref("AckFrame"),
                        _message_ref("NackFrame"),
                        _message_ref("ClientHeartbeatFrame"),
                        _message_ref("PresenceFrame"),
                    ]
                },
            },
        },
    }


def _ws_binding(*, with_capacity: bool) -> dict[str, Any]:
    query: dict[str, Any] = {
        "access_token": {
            "type": "string",
            "description": "The token, for clients that cannot set the Authorization header",
        }
    }
    if with_capacity:
        query["capacity"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_CAPACITY,
            "default": 1,
            "description": "Most items unacknowledged at once",
        }
    return {
        "ws": {
            "method": "GET",
            "query": {"type": "object", "properties": query},
            "bindingVersion": _WS_BINDING,
        }
    }


# --- components -----------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _message_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/messages/{name}"}


@cache
def _components() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
    return {
        "schemas": {**schemas, **_frame_schemas(schemas["PresenceIn"])},
        "messages": {**_amqp_messages(), **_frame_messages()},
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The API token, or an agent's own token",
            },
            "accessToken": {"type": "httpApiKey", "name": "access_token", "in": "query"},
            "amqpUser": {"type": "userPassword", "description": "RabbitMQ user"},
        },
    }


def _routing_keys(message: str) -> list[str]:
    return {
        "SlaWarning": ["sla.warning"],
        "SlaBreached": ["sla.breached"],
        "ConversationEvent": [f"conversation.{t}" for t in get_args(EventType)],
        "ConversationOverflowed": ["conversation.overflowed"],
        "CustomerMerged": ["customer.merged"],
        "MessageDelivery": ["message.delivery"],
        "ChatReply": ["chat.reply"],
    }[message]


def _message(name: str, title: str, payload: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "contentType": "application/json",
        "description": description,
        "payload": _ref(payload),
    }


def _event(name: str, title: str, payload: str, description: str) -> dict[str, Any]:
    keys = _routing_keys(name)
    return {
        **_message(name, title, payload, f"Routing key {', '.join(keys)}. {description}"),
        "x-routing-keys": keys,
    }


def _amqp_messages() -> dict[str, Any]:
    return {
        "WorkItem": _message(
            "WorkItem",
            "Work item",
            "WorkItem",
            "Everything an agent needs: the new message, the customer (name, identities, "
            "attributes), recent history across channels (newest first), the SLA clocks, "
            "priority (1 = highest), deadline and the reasons for queue, priority and "
            "deadline. AMQP properties: message_id = item_id, content_type "
            "application/json, persistent. `version` is the item format (1).",
        ),
        "InboundMessage": _message(
            "InboundMessage", "Canonical message", "InboundMessage", "A customer message."
        ),
        "SlaWarning": _event(
            "SlaWarning",
            "SLA warning",
            "EventPayload",
            "A clock passed its warning share of the target: `clock`, `due`, "
            "`scheduled_at`; the priority after the escalation.",
        ),
        "SlaBreached": _event(
            "SlaBreached",
            "SLA breach",
            "EventPayload",
            "A clock passed its target: `clock`, `due`, `scheduled_at`.",
        ),
        "ConversationEvent": _event(
            "ConversationEvent",
            "Agent event",
            "EventPayload",
            "An agent event was applied (POST /v1/conversations/{id}/events): "
            "`agent_id`; `from_queue` / `to_queue` for a transfer.",
        ),
        "ConversationOverflowed": _event(
            "ConversationOverflowed",
            "Overflow",
            "EventPayload",
            "A waiting item moved (`mode` move) or is also offered (`mode` also) to "
            "`to_queue` after an SLA warning, breach or wait.",
        ),
        "CustomerMerged": _event(
            "CustomerMerged",
            "Customers merged",
            "MergeRecord",
            "`loser` was merged into `winner` (automatically on a verified identity, "
            "or confirmed through the API).",
        ),
        "MessageDelivery": _event(
            "MessageDelivery",
            "Delivery report",
            "DeliveryReport",
            "A provider reported on a message it carried (WhatsApp statuses, Twilio "
            "status callbacks): `status` sent, delivered, read, failed ...; once per status.",
        ),
        "ChatReply": _event(
            "ChatReply",
            "Web chat reply",
            "ChatReply",
            "An agent answered a web chat visitor (POST /v1/conversations/{id}/replies): "
            "every router process forwards it to the visitor's open sockets.",
        ),
        "DeadLetter": {
            "name": "DeadLetter",
            "title": "Dead letter",
            "description": "The rejected message as it was: usually a WorkItem or an "
            "InboundMessage; rejected input may be any body.",
            "payload": {"description": "the original body, unchanged"},
        },
    }


def _frame_messages() -> dict[str, Any]:
    def frame(name: str, title: str, description: str) -> dict[str, Any]:
        return _message(name, title, name, description)

    return {
        "ItemFrame": frame(
            "ItemFrame",
            "Item",
            "One delivery. `redelivered` is true when the item was offered before "
            "(returned by a closed socket, a nack with requeue, a lapsed lease).",
        ),
        "HeartbeatFrame": frame(
            "HeartbeatFrame",
            "Heartbeat",
            "Sent periodically and after each renewal: the lease holds until `lease_until`.",
        ),
        "ErrorFrame": frame("ErrorFrame", "Error", "A frame the daemon could not use."),
        "AckFrame": frame("AckFrame", "Ack", "The item is yours; it leaves the queue."),
        "NackFrame": frame(
            "NackFrame",
            "Nack",
            "Give the item back (`requeue` true, the default) or reject it (false: dead-lettered).",
        ),
        "ClientHeartbeatFrame": frame(
            "ClientHeartbeatFrame", "Heartbeat", "Renews the lease with the last presence."
        ),
        "PresenceFrame": frame(
            "PresenceFrame",
            "Presence",
            "Announces or renews presence: status, queues, skills, capacity per channel "
            "(the body of POST /v1/agents/{agent_id}/presence, with type presence).",
        ),
    }


def _typed(frame_type: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A frame object: ``type`` names it, nothing else beyond ``properties``."""
    return {
        "type": "object",
        "properties": {"type": {"const": frame_type}, **properties},
        "required": ["type", *required],
    }


def _frame_schemas(presence_in: dict[str, Any]) -> dict[str, Any]:
    item_id = {"type": "string", "description": "the item's item_id"}
    error = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }
    presence = _typed("presence", presence_in["properties"], presence_in["required"])
    return {
        "ItemFrame": _typed(
            "item",
            {"redelivered": {"type": "boolean"}, "item": _ref("WorkItem")},
            ["redelivered", "item"],
        ),
        "HeartbeatFrame": _typed(
            "heartbeat", {"lease_until": {"type": "string", "format": "date-time"}}, ["lease_until"]
        ),
        "ErrorFrame": _typed("error", {"error": error}, ["error"]),
        "AckFrame": {
            "type": "object",
            "properties": {"ack": item_id},
            "required": ["ack"],
            "additionalProperties": False,
        },
        "NackFrame": {
            "type": "object",
            "properties": {"nack": item_id, "requeue": {"type": "boolean", "default": True}},
            "required": ["nack"],
            "additionalProperties": False,
        },
        "ClientHeartbeatFrame": _typed("heartbeat", {}, []),
        "PresenceFrame": {**presence, "additionalProperties": False},
    }
