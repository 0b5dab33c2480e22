"""The AsyncAPI document: valid against the official AsyncAPI 2.6.0 JSON Schema (vendored
in tests/fixtures/asyncapi), named after the configured prefix and queues, and true to
what the daemon really sends: real work items, socket frames and events validate
against its message schemas, on both backends."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from router.clock import ManualClock
from router.http.asyncapi import AGENT_ID_PATTERN, document
from router.http.keys import BROKER, ESCALATIONS
from router.models import EventType
from router.ports import Subscription
from router.queue_spec import valid_agent_id
from router.settings import Settings, load
from tests.http.conftest import AUTH, Client, message

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asyncapi"
RECEIVE_S = 10.0
"""How long to wait for a frame or an event before failing (not a wait for time)."""

POLICY = """
[routing]
queues = ["default", "tier2"]
default_sla = "standard"

[sla.standard]
warning_at = 0.75
[[sla.standard.targets]]
first_response = "15m"
next_response = "30m"
resolution = "8h"

[queues.default]
overflow = { to = "tier2", at = "warning" }
"""


@pytest.fixture
def policy() -> str:
    return POLICY


async def fetch(client: Client) -> dict[str, Any]:
    resp = await client.get("/v1/asyncapi.json", headers=AUTH)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return dict(await resp.json())


# --- the official schemas ----------------------------------------------------------------


def _fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@cache
def _official() -> tuple[Draft7Validator, Registry[Any]]:
    """The AsyncAPI 2.6.0 schema; its bundled definitions resolve by their ``$id``."""
    schema = _fixture("2.6.0.json")
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], DRAFT7.create_resource(schema)
    )
    registry = registry.crawl()
    return Draft7Validator(schema, registry=registry), registry


def _schema_object_validator() -> Draft7Validator:
    """AsyncAPI 2.6.0's Schema Object (a superset of Draft-07)."""
    _, registry = _official()
    ref = {"$ref": "http://asyncapi.com/definitions/2.6.0/schema.json"}
    return Draft7Validator(ref, registry=registry)


def assert_valid_asyncapi(doc: dict[str, Any]) -> None:
    validator, _ = _official()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    _check_bindings(doc)
    _check_schemas(doc)
    _check_references(doc)


def _check_bindings(doc: dict[str, Any]) -> None:
    """The 2.6.0 schema takes any binding; these are the AMQP and WebSocket ones."""
    channel = Draft7Validator(_fixture("bindings/amqp-0.2.0-channel.json"))
    operation = Draft7Validator(_fixture("bindings/amqp-0.2.0-operation.json"))
    for name, item in doc["channels"].items():
        if "amqp" in item.get("bindings", {}):
            channel.validate(item["bindings"]["amqp"])
        if "ws" in item.get("bindings", {}):
            ws = item["bindings"]["ws"]
            assert set(ws) <= {"method", "query", "headers", "bindingVersion"}, name
            _schema_object_validator().validate(ws["query"])
        for kind in ("subscribe", "publish"):
            if "amqp" in item.get(kind, {}).get("bindings", {}):
                operation.validate(item[kind]["bindings"]["amqp"])


def _check_schemas(doc: dict[str, Any]) -> None:
    """Every schema and every message payload is a Draft-07 / AsyncAPI schema."""
    schemas = doc["components"]["schemas"]
    payloads = [m["payload"] for m in doc["components"]["messages"].values()]
    for schema in [*schemas.values(), *payloads]:
        Draft7Validator.check_schema(schema)
        _schema_object_validator().validate(schema)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _check_references(doc: dict[str, Any]) -> None:
    """What the schema cannot check: references resolve, channel parameters are declared,
    channels name existing servers, operation ids are unique."""
    for ref in _refs(doc):
        _, section, name = ref.removeprefix("#/").split("/")
        assert name in doc["components"][section], ref
    operation_ids = []
    for name, item in doc["channels"].items():
        assert set(re.findall(r"{(\w+)}", name)) == set(item.get("parameters", {})), name
        assert set(item["servers"]) <= set(doc["servers"]), name
        operation_ids += [item[k]["operationId"] for k in ("subscribe", "publish") if k in item]
    assert len(operation_ids) == len(set(operation_ids))


def test_the_official_schema_refuses_a_broken_document() -> None:
    """The vendored schema really checks (its references resolve offline)."""
    validator, _ = _official()
    broken = {"asyncapi": "2.6.0", "info": {"title": "x"}, "channels": {"a": {"nope": 1}}}
    messages = [e.message for e in validator.iter_errors(broken)]
    assert messages
    assert not Draft7Validator(_fixture("bindings/amqp-0.2.0-channel.json")).is_valid(
        {"is": "queue", "exchange": {"name": "x"}}
    )


# --- the document ------------------------------------------------------------------------


async def test_document_is_valid_asyncapi_2_6(app_client: Client, settings: Settings) -> None:
    doc = await fetch(app_client)
    assert doc["asyncapi"] == "2.6.0"
    assert_valid_asyncapi(doc)
    assert doc["x-omniroute-queues"] == ["default", "tier2"]
    assert doc["x-omniroute-broker"] == ("embedded" if settings.embedded else "rabbitmq")
    assert doc["servers"]["ws"]["url"] == f"ws://{app_client.host}:{app_client.port}"


async def test_names_follow_the_configured_prefix(app_client: Client, settings: Settings) -> None:
    doc = await fetch(app_client)
    p = settings.amqp.prefix
    channels = doc["channels"]
    assert set(channels) == {
        f"{p}.queue.{{name}}",
        f"{p}.agent.{{agent_id}}",
        f"{p}.events",
        f"{p}.inbound",
        f"{p}.dead",
        "/v1/queues/{name}/subscribe",
        "/v1/agents/{agent_id}/subscribe",
    }
    queue = channels[f"{p}.queue.{{name}}"]
    assert queue["parameters"]["name"]["schema"]["enum"] == ["default", "tier2"]
    assert queue["bindings"]["amqp"]["queue"]["durable"] is True
    assert queue["x-amqp-arguments"] == {"x-dead-letter-exchange": f"{p}.dead"}
    assert queue["subscribe"]["bindings"]["amqp"]["ack"] is True
    assert queue["subscribe"]["message"] == {"$ref": "#/components/messages/WorkItem"}
    for text in ("item_id", "redelivered", "prefetch", "dead-lettered"):
        assert text in queue["subscribe"]["description"]
    events = channels[f"{p}.events"]
    assert events["bindings"]["amqp"]["exchange"] == {
        "name": f"{p}.events",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": events["bindings"]["amqp"]["exchange"]["vhost"],
    }
    conversation_keys = {f"conversation.{t}" for t in get_args(EventType)}
    assert set(events["x-routing-keys"]) == {
        "sla.warning",
        "sla.breached",
        "conversation.overflowed",
        "customer.merged",
        "message.delivery",
        "chat.reply",
        *conversation_keys,
    }
    assert channels[f"{p}.inbound"]["publish"]["message"] == {
        "$ref": "#/components/messages/InboundMessage"
    }
    assert "guest" not in json.dumps(doc["servers"])  # never the broker credentials


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_sockets_document_their_frames(app_client: Client) -> None:
    doc = await fetch(app_client)
    messages = doc["components"]["messages"]

    def names(channel: str, operation: str) -> set[str]:
        refs = doc["channels"][channel][operation]["message"]["oneOf"]
        return {messages[r["$ref"].rsplit("/", 1)[1]]["name"] for r in refs}

    queue, agent = "/v1/queues/{name}/subscribe", "/v1/agents/{agent_id}/subscribe"
    assert names(queue, "subscribe") == {"ItemFrame", "ErrorFrame"}
    assert names(queue, "publish") == {"AckFrame", "NackFrame"}
    assert names(agent, "subscribe") == {"ItemFrame", "HeartbeatFrame", "ErrorFrame"}
    assert names(agent, "publish") == {
        "AckFrame",
        "NackFrame",
        "ClientHeartbeatFrame",
        "PresenceFrame",
    }
    assert (
        doc["channels"][queue]["bindings"]["ws"]["query"]["properties"]["capacity"]["maximum"]
        == 1000
    )
    presence = payload_validator(doc, "PresenceFrame")
    presence.validate({"type": "presence", "status": "available", "capacity": {"chat": 3}})
    assert not presence.is_valid({"type": "presence", "status": "busy"})
    assert payload_validator(doc, "NackFrame").is_valid({"nack": "itm_1", "requeue": False})
    assert not payload_validator(doc, "AckFrame").is_valid({"ack": "itm_1", "extra": 1})


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_quorum_queues_show_in_the_arguments(env: dict[str, str]) -> None:
    settings = load(
        env={
            **env,
            "OMNIROUTE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "OMNIROUTE_AMQP_URL": "amqp://user:secret@rabbit.example:5672/prod",
            "OMNIROUTE_AMQP_PREFIX": "acme",
            "OMNIROUTE_AMQP_QUEUE_TYPE": "quorum",
        }
    )
    doc = document(settings, ws_url="wss://router.example")
    assert_valid_asyncapi(doc)
    quorum = {"x-dead-letter-exchange": "acme.dead", "x-queue-type": "quorum"}
    assert doc["channels"]["acme.queue.{name}"]["x-amqp-arguments"] == quorum
    assert doc["channels"]["acme.agent.{agent_id}"]["x-amqp-arguments"] == quorum
    assert doc["channels"]["acme.dead"]["x-amqp-arguments"] == {"x-queue-type": "quorum"}
    assert doc["channels"]["acme.dead"]["bindings"]["amqp"]["queue"]["vhost"] == "prod"
    assert doc["servers"]["amqp"]["url"] == "amqp://rabbit.example:5672/prod"
    assert doc["servers"]["ws"]["protocol"] == "wss"
    assert "secret" not in json.dumps(doc)


@pytest.mark.parametrize(
    "agent_id", ["ana", "ana.lopez@example.com", "a_b-c", "x" * 128, "", "-ana", "a b", "x" * 129]
)
def test_agent_id_pattern_is_valid_agent_id(agent_id: str) -> None:
    assert bool(re.match(AGENT_ID_PATTERN, agent_id)) == valid_agent_id(agent_id)


# --- the real thing validates against it -------------------------------------------------


def payload_validator(doc: dict[str, Any], message: str) -> Draft7Validator:
    """A validator for one message's payload, ``$ref`` resolved within the document."""
    payload = doc["components"]["messages"][message]["payload"]
    return Draft7Validator({**payload, "components": doc["components"]})


async def test_real_items_and_frames_validate(app_client: Client) -> None:
    doc = await fetch(app_client)
    await app_client.post("/v1/messages", json=message(), headers=AUTH)
    async with app_client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
        payload_validator(doc, "ItemFrame").validate(frame)
        payload_validator(doc, "WorkItem").validate(frame["item"])
        assert frame["item"]["history"]  # the recent history is there, and documented

        unknown = {"ack": "itm_unknown"}
        payload_validator(doc, "AckFrame").validate(unknown)
        await ws.send_json(unknown)
        error = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
        payload_validator(doc, "ErrorFrame").validate(error)

        nack = {"nack": frame["item"]["item_id"], "requeue": True}
        payload_validator(doc, "NackFrame").validate(nack)
        await ws.send_json(nack)
        again = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
        payload_validator(doc, "ItemFrame").validate(again)
        assert (again["item"]["item_id"], again["redelivered"]) == (frame["item"]["item_id"], True)
        await ws.send_json({"ack": again["item"]["item_id"]})


async def test_real_agent_socket_frames_validate(app_client: Client) -> None:
    doc = await fetch(app_client)
    path = "/v1/agents/ana/subscribe"
    async with app_client.ws_connect(path, headers=AUTH) as ws:

        async def answer(frame: dict[str, Any], message: str) -> dict[str, Any]:
            payload_validator(doc, message).validate(frame)
            await ws.send_json(frame)
            reply: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
            return reply

        presence = {"type": "presence", "status": "available", "queues": ["default"]}
        heartbeat = await answer(presence, "PresenceFrame")
        payload_validator(doc, "HeartbeatFrame").validate(heartbeat)
        await app_client.post("/v1/messages", json=message(), headers=AUTH)
        item = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
        payload_validator(doc, "ItemFrame").validate(item)
        await ws.send_json({"ack": item["item"]["item_id"]})
        heartbeat = await answer({"type": "heartbeat"}, "ClientHeartbeatFrame")
        payload_validator(doc, "HeartbeatFrame").validate(heartbeat)
        error = await answer({"ack": "itm_unknown"}, "AckFrame")
        payload_validator(doc, "ErrorFrame").validate(error)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_the_document_is_public(app_client: Client) -> None:
    """Like the OpenAPI document: a tool author reads it before holding a token."""
    resp = await app_client.get("/v1/asyncapi.json")
    assert resp.status == 200


async def _take(subscription: Subscription, count: int) -> list[dict[str, Any]]:
    bodies = []
    async with asyncio.timeout(RECEIVE_S):
        async for delivery in subscription:
            bodies.append(json.loads(delivery.body))
            await delivery.ack()
            if len(bodies) == count:
                break
    await subscription.close()
    return bodies


async def test_real_events_validate(
    app_client: Client, clock: ManualClock, settings: Settings
) -> None:
    """One of each: SLA warning and breach, an overflow, agent events, a merge."""
    doc = await fetch(app_client)
    app = app_client.server.app
    broker = app[BROKER]
    documented = doc["channels"][f"{settings.amqp.prefix}.events"]
    expected = {"sla.warning": 1, "sla.breached": 1, "conversation.*": 3, "customer.merged": 1}
    subscriptions = {key: await broker.subscribe_events(key) for key in expected}

    first = await (await app_client.post("/v1/messages", json=message(), headers=AUTH)).json()
    conv = first["conversation_id"]
    clock.advance(12 * 60)  # the warning (75 % of 15 minutes) overflows it to tier2
    await app[ESCALATIONS].fire_due()
    clock.advance(4 * 60)
    await app[ESCALATIONS].fire_due()
    for kind in ("accepted", "replied"):
        body = {"type": kind, "agent_id": "ana"}
        resp = await app_client.post(f"/v1/conversations/{conv}/events", json=body, headers=AUTH)
        assert resp.status == 200
    other = message(
        thread="other",
        sender={"identities": [{"kind": "chat_visitor", "value": "v-2", "verified": True}]},
    )
    second = await (await app_client.post("/v1/messages", json=other, headers=AUTH)).json()
    resp = await app_client.post(
        f"/v1/customers/{first['customer_id']}/merge",
        json={"other": second["customer_id"]},
        headers=AUTH,
    )
    assert resp.status == 200

    by_key = {key: message_for(doc, key) for key in documented["x-routing-keys"]}
    for pattern, count in expected.items():
        bodies = await _take(subscriptions[pattern], count)
        key = pattern.replace("*", "replied")  # every conversation.* has one payload
        for body in bodies:
            payload_validator(doc, by_key[key]).validate(body)
        if pattern == "conversation.*":
            assert {b.get("mode") for b in bodies} == {"move", None}  # the overflow too


def message_for(doc: dict[str, Any], routing_key: str) -> str:
    """The message documented for a routing key."""
    [name] = [
        name
        for name, message in doc["components"]["messages"].items()
        if routing_key in message.get("x-routing-keys", [])
    ]
    return str(name)
