"""Health, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from router import sla
from router.lifecycle import EventPayload
from router.models import Conversation, EventType, SlaClock
from tests.http.conftest import AUTH, Client, message


async def test_health_and_readiness(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ready"


async def test_metrics_count_messages_by_channel_and_outcome(client: Client) -> None:
    body = message()
    await client.post("/v1/messages", json=body, headers=AUTH)
    await client.post("/v1/messages", json=body, headers=AUTH)
    await client.post("/v1/messages", json=message(channel="nope"), headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'omniroute_messages_total{channel="chat",outcome="accepted"} 1.0' in text
    assert 'omniroute_messages_total{channel="chat",outcome="duplicate"} 1.0' in text
    assert "omniroute_ingest_latency_seconds_bucket" in text
    assert 'omniroute_queue_depth{queue="default",state="backlog"}' in text


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_openapi_document_is_valid_and_public(client: Client) -> None:
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    validate(document)
    assert "/v1/messages" in document["paths"]
    assert "WorkItem" in document["components"]["schemas"]
    for path in ("/v1/agents", "/v1/agents/{id}/presence", "/v1/agents/{id}/token"):
        assert path in document["paths"], path
    assert "/v1/agents/{id}/subscribe" in document["paths"]
    schemas = document["components"]["schemas"]
    assert {"PresenceIn", "AgentState", "AgentView", "AgentToken"} <= set(schemas)


def _schema(document: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator for one component schema, its ``$ref`` resolved within the document."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    )


def _ref(content: dict[str, Any]) -> str:
    return str(content["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[1]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_openapi_documents_conversations_events_and_clocks(client: Client) -> None:
    document = await (await client.get("/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    events = document["paths"]["/v1/conversations/{id}/events"]["post"]
    assert _ref(events["requestBody"]) == "AgentEvent"
    assert {"200", "400", "404", "409", "422"} <= set(events["responses"])
    assert _ref(events["responses"]["200"]) == "ConversationView"
    got = document["paths"]["/v1/conversations/{id}"]["get"]["responses"]["200"]
    assert _ref(got) == "ConversationView"
    assert set(schemas["AgentEvent"]["properties"]["type"]["enum"]) == set(get_args(EventType))
    # the hand-written and generated schemas name every field the code produces
    clock = SlaClock(
        kind="first_response", target_s=60, started_at=datetime(2026, 1, 5, tzinfo=UTC)
    )
    assert set(schemas["ClockView"]["properties"]) == set(sla.clock_view(clock, clock.started_at))
    assert set(schemas["Conversation"]["properties"]) == set(Conversation.__struct_fields__)
    assert set(schemas["EventPayload"]["properties"]) == set(EventPayload.__struct_fields__)
    assert schemas["Event"]["properties"]["payload"] == {
        "$ref": "#/components/schemas/EventPayload"
    }

    # and real answers validate against them
    accepted = await (await client.post("/v1/messages", json=message(), headers=AUTH)).json()
    path = f"/v1/conversations/{accepted['conversation_id']}"
    view = await (await client.get(path, headers=AUTH)).json()
    assert view["clocks"]
    _schema(document, "ConversationView").validate(view)
    reply = {"type": "replied", "agent_id": "ana"}
    _schema(document, "AgentEvent").validate(reply)
    resp = await client.post(f"{path}/events", json=reply, headers=AUTH)
    assert resp.status == 200
    _schema(document, "ConversationView").validate(await resp.json())
    await client.post(f"{path}/events", json={"type": "resolved", "agent_id": "ana"}, headers=AUTH)
    resp = await client.post(f"{path}/events", json=reply, headers=AUTH)
    assert resp.status == 409
    _schema(document, "Error").validate(await resp.json())
