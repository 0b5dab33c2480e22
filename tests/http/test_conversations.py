"""Rules, SLA clocks, agent events and escalation through the HTTP API, on both backends.

The daemon runs with a policy file (rules, SLA targets, an overflow) on a manual clock;
timers are fired by ``app[ESCALATIONS].fire_due()`` after moving the clock, never by
sleeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from router.app import create_app
from router.clock import ManualClock
from router.http.keys import BROKER, ESCALATIONS
from router.settings import load
from tests.http.conftest import AUTH, Client, message

POLICY = """
[routing]
queues = ["default", "billing", "tier2"]
default_sla = "standard"

[sla.standard]
warning_at = 0.75
[[sla.standard.targets]]
priority = [1, 2]
first_response = "5m"
next_response = "10m"
resolution = "2h"
[[sla.standard.targets]]
first_response = "15m"
next_response = "30m"
resolution = "8h"

[queues.billing]
overflow = { to = "tier2", at = "breach" }

[[rules]]
name = "vip"
match.attributes = { vip = true }
then.priority_delta = -1

[[rules]]
name = "billing-words"
match.words = ["refund", "invoice"]
then.queue = "billing"
then.tags = ["billing"]
"""


@pytest.fixture
def policy() -> str:
    return POLICY


async def post(client: Client, body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def event(client: Client, conv: str, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/v1/conversations/{conv}/events", json=body, headers=AUTH)
    return resp.status, await resp.json()


async def conversation(client: Client, conv: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/conversations/{conv}", headers=AUTH)
    assert resp.status == 200
    return dict(await resp.json())


def clock_of(view: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [c for c in view["clocks"] if c["kind"] == kind]
    return dict(found)


async def test_rules_decide_queue_priority_and_reasons(app_client: Client) -> None:
    body = message(text="I want a refund for this invoice")
    body["sender"]["attributes"] = {"vip": True}
    accepted = await post(app_client, body)
    assert accepted["queue"] == "billing"
    assert accepted["priority"] == 2  # default 3, VIP -1
    assert accepted["deadline"] == "2026-11-22T10:05:00Z"  # p2 first response: 5 minutes
    view = await conversation(app_client, accepted["conversation_id"])
    assert view["tags"] == ["billing"]
    assert clock_of(view, "first_response")["due"] == "2026-11-22T10:05:00Z"
    assert clock_of(view, "resolution")["due"] == "2026-11-22T12:00:00Z"
    async with app_client.ws_connect("/v1/queues/billing/subscribe", headers=AUTH) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        await ws.send_json({"ack": frame["item"]["item_id"]})
    assert [c["kind"] for c in frame["item"]["clocks"]] == ["first_response", "resolution"]
    assert frame["item"]["tags"] == ["billing"]
    reasons = {(r["kind"], r["name"]) for r in frame["item"]["reasons"]}
    assert {("rule", "vip"), ("rule", "billing-words"), ("sla", "standard")} <= reasons


async def test_replied_meets_first_response_and_resolved_stops_the_clocks(
    app_client: Client, clock: ManualClock
) -> None:
    conv = (await post(app_client, message()))["conversation_id"]
    clock.advance(3 * 60)
    status, view = await event(app_client, conv, type="replied", agent_id="ana")
    assert status == 200
    first = clock_of(view, "first_response")
    assert (first["status"], first["met_at"], first["breached"]) == (
        "met",
        "2026-11-22T10:03:00Z",
        False,
    )
    assert view["assignee"] == "ana"
    status, view = await event(app_client, conv, type="resolved", agent_id="ana")
    assert (status, view["state"]) == (200, "resolved")
    assert clock_of(view, "resolution")["status"] == "met"
    status, error = await event(app_client, conv, type="replied", agent_id="ana")
    assert status == 409
    assert error["error"]["code"] == "conflict"
    assert "resolved" in error["error"]["message"]


async def test_bad_events_are_refused_with_clear_errors(app_client: Client) -> None:
    status, error = await event(app_client, "con_nope", type="replied", agent_id="ana")
    assert (status, error["error"]["code"]) == (404, "not_found")
    conv = (await post(app_client, message()))["conversation_id"]
    status, error = await event(app_client, conv, type="danced", agent_id="ana")
    assert status == 400
    status, error = await event(app_client, conv, type="transferred", agent_id="ana")
    assert status == 422  # a transfer names its queue
    status, error = await event(
        app_client, conv, type="transferred", agent_id="ana", queue="nowhere"
    )
    assert status == 404
    status, _ = await event(app_client, conv, type="pending", agent_id="ana")
    assert status == 200
    status, error = await event(app_client, conv, type="pending", agent_id="ana")
    assert status == 409


async def test_pending_pauses_the_clocks_until_the_customer_writes(
    app_client: Client, clock: ManualClock
) -> None:
    first = message()
    conv = (await post(app_client, first))["conversation_id"]
    clock.advance(5 * 60)
    await event(app_client, conv, type="pending", agent_id="ana")
    clock.advance(3600)
    view = await conversation(app_client, conv)
    paused = clock_of(view, "first_response")
    assert (paused["status"], paused["paused_s"]) == ("paused", 3600.0)
    await post(app_client, message(external_id="again", text="still broken"))
    view = await conversation(app_client, conv)
    resumed = clock_of(view, "first_response")
    assert view["state"] == "open"
    assert resumed["status"] == "running"
    assert resumed["due"] == "2026-11-22T11:15:00Z"  # 15 min target, 1 h paused


async def test_transfer_moves_the_waiting_item_to_the_other_queue(app_client: Client) -> None:
    conv = (await post(app_client, message()))["conversation_id"]
    status, view = await event(app_client, conv, type="transferred", agent_id="ana", queue="tier2")
    assert (status, view["queue"]) == (200, "tier2")
    async with app_client.ws_connect("/v1/queues/tier2/subscribe", headers=AUTH) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        await ws.send_json({"ack": frame["item"]["item_id"]})
    assert frame["item"]["conversation_id"] == conv


async def test_warning_and_breach_publish_events_escalate_and_overflow(
    app_client: Client, clock: ManualClock
) -> None:
    app = app_client.server.app
    events = await app[BROKER].subscribe_events("sla.*")
    conv = (await post(app_client, message(text="refund please")))["conversation_id"]
    clock.advance(12 * 60)  # 75 % of 15 minutes has passed
    assert await app[ESCALATIONS].fire_due() >= 1
    view = await conversation(app_client, conv)
    assert view["priority"] == 2  # raised by the warning
    clock.advance(4 * 60)  # past the deadline
    await app[ESCALATIONS].fire_due()
    view = await conversation(app_client, conv)
    assert view["priority"] == 1
    assert view["queue"] == "tier2"  # billing overflows at breach
    received = []
    async for delivery in events:
        received.append((json.loads(delivery.body), delivery))
        await delivery.ack()
        if len(received) == 2:
            break
    await events.close()
    keys = [payload["clock"] for payload, _ in received]
    assert keys == ["first_response", "first_response"]
    scheduled = [payload["scheduled_at"] for payload, _ in received]
    assert scheduled == ["2026-11-22T10:11:15Z", "2026-11-22T10:15:00Z"]  # 75 %, then 100 %
    assert clock_of(view, "first_response")["breached"] is True
    assert await app[ESCALATIONS].fire_due() == 0  # each timer fires once


async def test_a_message_after_resolution_reopens_within_the_window(
    app_client: Client, clock: ManualClock
) -> None:
    conv = (await post(app_client, message()))["conversation_id"]
    await event(app_client, conv, type="replied", agent_id="ana")
    await event(app_client, conv, type="resolved", agent_id="ana")
    clock.advance(86400)
    again = await post(app_client, message(external_id="later", text="it broke again"))
    assert again["conversation_id"] == conv
    view = await conversation(app_client, conv)
    assert view["state"] == "open"
    assert clock_of(view, "next_response")["status"] == "running"


async def test_sticky_routing_offers_a_returning_customer_to_their_agent_first(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    env: dict[str, str],
    tmp_path: Path,
    clock: ManualClock,
) -> None:
    path = tmp_path / "sticky.toml"
    options = "[routing]\nsticky_days = 7\nreopen_window_s = 3600\n"
    path.write_text(POLICY.replace("[routing]\n", options))
    client = await aiohttp_client(create_app(load(path, env=env), clock=clock, run_timers=False))
    conv = (await post(client, message()))["conversation_id"]
    await event(client, conv, type="replied", agent_id="ana")
    await event(client, conv, type="resolved", agent_id="ana")
    clock.advance(2 * 86400)  # past the reopen window: a new conversation
    again = await post(client, message(external_id="back", thread="chat-session-78"))
    assert again["queue"] == "agent.ana"
    view = await conversation(client, again["conversation_id"])
    assert view["queue"] == "agent.ana"
    clock.advance(121)  # nobody took it: back to the team queue
    await client.server.app[ESCALATIONS].fire_due()
    view = await conversation(client, again["conversation_id"])
    assert view["queue"] == "default"
    async with client.ws_connect("/v1/queues/default/subscribe", headers=AUTH) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 10)
        await ws.send_json({"ack": frame["item"]["item_id"]})
    assert frame["item"]["conversation_id"] == again["conversation_id"]
