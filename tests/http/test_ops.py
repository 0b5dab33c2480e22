"""Health, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

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
