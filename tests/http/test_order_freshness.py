"""A change of urgency reaches the consumer within one item and within one second, on
both backends: the issue's "the consumer sees the new order within one second,
including for items already released (keep the agent queues shallow and release just
in time)".

Set-up: a policy file with ``dispatch.ready_depth = 1`` and a release horizon of 1 ms,
so the release window stays at one item whatever the drain rate; a manual clock;
``run_timers=False`` (timers fire when the test calls ``fire_due``). Several items wait
in ``default``; one agent subscribes over the WebSocket with capacity 1.

What can be guaranteed, and is asserted exactly: while the agent holds item A, the
dispatcher releases one more item B into the agent queue and no further (window 1).
An urgency change after that cannot reorder B: it is in the agent queue already. So
the changed item X is the agent's second item after the change (A acked → B,
B acked → X), never later; and it arrives well within a second of the change. With
no consumer on a queue nothing is released into it at all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from router.clock import ManualClock
from router.http.keys import ESCALATIONS
from tests.http.conftest import AUTH, Client, message

POLICY = """
[routing]
queues = ["default", "tier2", "probe"]
default_sla = "standard"

[dispatch]
ready_depth = 1
release_horizon_ms = 1

[sla.standard]
warning_at = 0.75
[[sla.standard.targets]]
priority = [1]
first_response = "2m"
next_response = "5m"
resolution = "1h"
[[sla.standard.targets]]
first_response = "30m"
next_response = "1h"
resolution = "8h"

[queues.tier2]
overflow = { to = "default", at = "breach" }

[[rules]]
name = "urgent"
match.words = ["urgent"]
then.priority = 1

[[rules]]
name = "invoices"
match.words = ["invoice"]
then.queue = "tier2"

[[rules]]
name = "probe"
match.words = ["probe"]
then.queue = "probe"
"""

WAITING = 5
"""Items waiting in ``default``, one customer each, posted a minute apart (so their
deadlines are a minute apart too: c0 is the most urgent, c4 the least)."""
FRESH_S = 1.0
RECEIVE_S = 10.0
"""How long to wait for a frame before failing (a wait for a message, not for time)."""


@pytest.fixture
def policy() -> str:
    return POLICY


# --- helpers ---------------------------------------------------------------------------


async def post(client: Client, clock: ManualClock, customer: str, text: str) -> str:
    """A chat message from ``customer`` (own verified identity and thread), sent now."""
    body = message(
        external_id=f"m-{uuid.uuid4().hex[:10]}",
        sender={
            "name": customer,
            "identities": [{"kind": "chat_visitor", "value": customer, "verified": True}],
        },
        thread=f"session-{customer}",
        text=text,
        sent_at=clock.now().isoformat(),
        attachments=[],
    )
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["conversation_id"])


async def queues(client: Client) -> dict[str, dict[str, Any]]:
    resp = await client.get("/v1/queues", headers=AUTH)
    assert resp.status == 200
    return {q["name"]: q for q in (await resp.json())["queues"]}


async def until_queue(client: Client, name: str, **expected: int) -> None:
    """Wait until ``GET /v1/queues`` shows ``expected`` for the queue."""
    for _ in range(1000):
        state = (await queues(client))[name]
        if all(state[key] == value for key, value in expected.items()):
            return
        await asyncio.sleep(0.01)  # waiting for the dispatcher, not for time
    raise AssertionError(f"queue {name} never reached {expected}: {state}")


class Agent:
    """One agent tool on the WebSocket: takes an item, acks it when told."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self._ws = ws

    async def take(self) -> tuple[str, str]:
        """``(item_id, conversation_id)`` of the next item."""
        frame = await asyncio.wait_for(self._ws.receive_json(), RECEIVE_S)
        assert frame["type"] == "item", frame
        return frame["item"]["item_id"], frame["item"]["conversation_id"]

    async def ack(self, item_id: str) -> None:
        await self._ws.send_json({"ack": item_id})


@asynccontextmanager
async def agent(client: Client, queue: str) -> AsyncIterator[Agent]:
    path = f"/v1/queues/{queue}/subscribe?capacity=1"
    async with client.ws_connect(path, headers=AUTH) as ws:
        yield Agent(ws)


async def waiting_customers(client: Client, clock: ManualClock) -> list[str]:
    """c0..c4 in ``default``, a minute apart; their conversation ids, most urgent first."""
    conversations = []
    for n in range(WAITING):
        conversations.append(await post(client, clock, f"c{n}", "My order arrived broken"))
        clock.advance(60)
    return conversations


async def nothing_released_without_consumers(client: Client, clock: ManualClock) -> None:
    """Everything waits in the backlog, none in the agent queue. An item through the
    ``probe`` queue's consumer first shows the dispatcher is running meanwhile."""
    async with agent(client, "probe") as probe:
        await post(client, clock, "prober", "probe")
        item_id, _ = await probe.take()
        await probe.ack(item_id)
    state = (await queues(client))["default"]
    assert (state["backlog"], state["ready"], state["consumers"]) == (WAITING, 0, 0)


async def reorder(client: Client, total: int, change: Callable[[], Awaitable[object]]) -> list[str]:
    """Hold the first item while the second is released, make the change, then take
    ``total`` items; their conversation ids in the order the agent got them. Asserts
    the item after the second one arrives within ``FRESH_S`` of the change."""
    async with agent(client, "default") as tool:
        held, first = await tool.take()
        # window 1: exactly one more item is released (B), the rest stay in the backlog
        await until_queue(client, "default", ready=1, backlog=WAITING - 2)
        started = time.monotonic()
        await change()
        await tool.ack(held)
        released, second = await tool.take()  # B: in the agent queue before the change
        await tool.ack(released)
        changed, third = await tool.take()
        elapsed_s = time.monotonic() - started
        got = [first, second, third]
        await tool.ack(changed)
        while len(got) < total:
            item_id, conversation_id = await tool.take()
            got.append(conversation_id)
            await tool.ack(item_id)
    assert elapsed_s < FRESH_S, f"the change took {elapsed_s:.3f} s to reach the agent"
    return got


# --- the tests -------------------------------------------------------------------------


async def test_an_urgent_message_moves_the_least_urgent_item_to_the_front(
    app_client: Client, clock: ManualClock
) -> None:
    c = await waiting_customers(app_client, clock)  # deadlines 10:30 .. 10:34
    await nothing_released_without_consumers(app_client, clock)

    async def urgent_message_from_c4() -> None:
        # joins c4's waiting item: priority 1, first response due 10:07
        assert await post(app_client, clock, "c4", "urgent: still broken") == c[4]

    got = await reorder(app_client, WAITING, urgent_message_from_c4)
    assert got == [c[0], c[1], c[4], c[2], c[3]]


async def test_an_sla_breach_overflow_reaches_the_consumer_next(
    app_client: Client, clock: ManualClock
) -> None:
    stuck = await post(app_client, clock, "x", "Where is my invoice?")  # tier2: due 10:30
    clock.advance(60)
    c = await waiting_customers(app_client, clock)  # default: due 10:31 .. 10:35
    await nothing_released_without_consumers(app_client, clock)
    tier2 = (await queues(app_client))["tier2"]
    assert (tier2["backlog"], tier2["ready"]) == (1, 0)  # no consumer there either

    async def breach() -> None:
        clock.advance(30 * 60 - 6 * 60)  # 10:30: x breaches, tier2 overflows to default
        assert await app_client.server.app[ESCALATIONS].fire_due() >= 1

    got = await reorder(app_client, WAITING + 1, breach)
    assert got == [c[0], c[1], stuck, c[2], c[3], c[4]]
    view = await (await app_client.get(f"/v1/conversations/{stuck}", headers=AUTH)).json()
    assert (view["queue"], view["priority"]) == ("default", 1)  # warned, then breached
