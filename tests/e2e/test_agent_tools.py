"""Issue 5 end to end: agent tools as real processes against the real daemon, on the
embedded backend and on Redis + RabbitMQ.

- an agent tool killed mid-item (``omniroute agent`` under SIGKILL, over its agent
  socket or straight from RabbitMQ) has its item offered to another consumer, the same
  item flagged ``redelivered``, before its lease would have run out;
- a zombie tool (socket open, no heartbeats, no ack) is closed with code 4000 once its
  lease lapses, and its item goes to another consumer;
- an agent at capacity for a channel is sent nothing more of that channel until it
  acknowledges what it holds.

Real time passes here on purpose (the daemon runs on its system clock): leases are a
few seconds, the daemon sweeps them every ``SWEEP_MS``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.client import Client, Offer
from router.client.amqp import AmqpSubscriber
from router.presence import PresenceIn
from tests.e2e.conftest import AUTH, TOKEN, Daemon, DaemonFactory, session
from tests.http.conftest import message

pytestmark = pytest.mark.e2e

LEASE_S = 5.0
"""The daemon's ``agents.lease_s`` (the reference agent announces no lease of its own)."""
ZOMBIE_LEASE_S = 2.0
SWEEP_MS = 100
WAIT_S = 15.0
"""Bound on waiting for a process to do something (start, print, dispatch)."""
QUIET_S = 1.0
"""How long an agent at capacity must be sent nothing."""


# --- the daemon on either backend -----------------------------------------------------


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The daemon's environment for one backend, with its own data dir or prefixes."""
    env = {
        "OMNIROUTE_DATA_DIR": str(tmp_path / "data"),
        "OMNIROUTE_AGENTS_LEASE_S": str(LEASE_S),
        "OMNIROUTE_AGENTS_SWEEP_MS": str(SWEEP_MS),
        "OMNIROUTE_DISPATCH_POLL_MS": "20",
    }
    if request.param == "production":
        env |= {
            "OMNIROUTE_REDIS_URL": request.getfixturevalue("redis_url"),
            "OMNIROUTE_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
            "OMNIROUTE_AMQP_URL": request.getfixturevalue("amqp_url"),
            "OMNIROUTE_AMQP_PREFIX": f"e2e{uuid.uuid4().hex[:6]}.omniroute",
        }
    return env


@pytest.fixture
async def daemon(daemon_factory: DaemonFactory, backend: dict[str, str]) -> Daemon:
    started = daemon_factory(backend)
    await started.start()
    return started


@pytest.fixture
async def api(daemon: Daemon) -> AsyncIterator[Client]:
    async with Client(daemon.url, TOKEN) as client:
        yield client


# --- helpers --------------------------------------------------------------------------


def chat(n: int) -> dict[str, Any]:
    """A chat message of its own conversation (its own visitor and thread)."""
    run = uuid.uuid4().hex[:8]
    return message(
        external_id=f"{run}-{n}",
        thread=f"{run}-t{n}",
        sender={"identities": [{"kind": "chat_visitor", "value": f"{run}-v{n}"}]},
    )


async def agent_state(daemon: Daemon, agent_id: str) -> dict[str, Any]:
    async with session() as s, s.get(f"{daemon.url}/v1/agents/{agent_id}") as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def default_queue(api: Client) -> dict[str, Any]:
    return next(q for q in await api.queues() if q["name"] == "default")


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll the daemon until ``check()`` holds: waiting for a process, not for time."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


class AgentTool:
    """``omniroute agent`` as a person runs it, its keys from a pipe nobody types into:
    it shows the first item and then holds it, unacknowledged, until it is killed."""

    def __init__(self, args: list[str], log: Path) -> None:
        self._args = args
        self._log = log
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []

    async def start(self) -> None:
        with self._log.open("ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "router",
                "agent",
                "--token",
                TOKEN,
                *self._args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )

    async def shown_item(self) -> str:
        """The header line of the item it shows (``── default  P.. chat``)."""
        assert self.process is not None
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), WAIT_S)
            if not raw:
                raise AssertionError(f"the agent exited: {self.lines} {self._log.read_text()}")
            line = raw.decode().strip()
            self.lines.append(line)
            if line.startswith("── "):
                return line

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@asynccontextmanager
async def agent_tool(args: list[str], log: Path) -> AsyncIterator[AgentTool]:
    tool = AgentTool(args, log)
    await tool.start()
    try:
        yield tool
    finally:
        await tool.kill()


async def next_offer(offers: AsyncIterator[Offer], timeout_s: float = WAIT_S) -> Offer:
    return await asyncio.wait_for(anext(offers), timeout_s)


# --- killed mid-item ------------------------------------------------------------------


async def test_an_agent_killed_mid_item_gives_it_back_within_its_lease(
    daemon: Daemon, api: Client, tmp_path: Path
) -> None:
    args = ["--url", daemon.url, "--queue", "default", "--presence", "--agent-id", "ana"]
    async with agent_tool(args, tmp_path / "agent.log") as tool:
        accepted = await api.post_message(chat(1))
        header = await tool.shown_item()
        assert "(redelivered)" not in header
        state = await agent_state(daemon, "ana")
        assert (state["status"], state["load"]) == ("available", {"chat": 1})
        held = state["holding"][0]["item_id"]
        lease_until = when(state["lease_until"])

        async with api.subscribe("default") as offers:
            killed_at = time.time()
            await tool.kill()
            offer = await next_offer(offers, LEASE_S)
            back_at = time.time()
            await offer.ack()
    assert (offer.item.item_id, offer.item.conversation_id) == (
        held,
        accepted["conversation_id"],
    )
    assert offer.redelivered is True
    assert back_at - killed_at < LEASE_S
    assert back_at < lease_until  # before the lease could have returned it

    async def released() -> bool:  # the daemon releases the holding after the requeue
        return bool((await agent_state(daemon, "ana"))["holding"] == [])

    await until(released, "the killed agent's holding to be released")


async def test_an_amqp_agent_killed_mid_item_gives_it_back_within_its_lease(
    daemon_factory: DaemonFactory,
    redis_url: str,
    redis_prefix: str,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    amqp_prefix = f"e2e{uuid.uuid4().hex[:6]}.omniroute"
    daemon = daemon_factory(
        {
            "OMNIROUTE_DATA_DIR": str(tmp_path / "data"),
            "OMNIROUTE_AGENTS_LEASE_S": str(LEASE_S),
            "OMNIROUTE_REDIS_URL": redis_url,
            "OMNIROUTE_REDIS_PREFIX": redis_prefix,
            "OMNIROUTE_AMQP_URL": amqp_url,
            "OMNIROUTE_AMQP_PREFIX": amqp_prefix,
            "OMNIROUTE_DISPATCH_POLL_MS": "20",
        }
    )
    await daemon.start()
    args = ["--url", daemon.url, "--queue", "default", "--agent-id", "ana"]
    args += ["--amqp", amqp_url, "--amqp-prefix", amqp_prefix]
    async with (
        Client(daemon.url, TOKEN) as api,
        agent_tool(args, tmp_path / "agent.log") as tool,
    ):
        accepted = await api.post_message(chat(1))
        header = await tool.shown_item()
        assert "(redelivered)" not in header
        async with (
            AmqpSubscriber(amqp_url, amqp_prefix) as rabbit,
            rabbit.subscribe("default") as offers,
        ):
            killed_at = time.time()
            await tool.kill()
            offer = await next_offer(offers, LEASE_S)
            back_at = time.time()
            await offer.ack()
    assert offer.item.conversation_id == accepted["conversation_id"]
    assert offer.redelivered is True  # nobody else consumed it: the killed tool had it
    assert back_at - killed_at < LEASE_S


# --- a zombie: connected, silent ------------------------------------------------------


async def test_a_silent_agent_is_closed_when_its_lease_lapses_and_its_item_moves_on(
    daemon: Daemon, api: Client
) -> None:
    presence = {
        "type": "presence",
        "status": "available",
        "queues": ["default"],
        "capacity": {"default": 1},
        "lease_s": ZOMBIE_LEASE_S,
    }
    url = f"{daemon.url}/v1/agents/zed/subscribe"
    async with aiohttp.ClientSession(headers=AUTH) as s, s.ws_connect(url) as ws:
        await ws.send_json(presence)
        beat = await asyncio.wait_for(ws.receive_json(), WAIT_S)
        assert beat["type"] == "heartbeat"
        accepted = await api.post_message(chat(1))
        frame = await asyncio.wait_for(ws.receive_json(), WAIT_S)
        while frame["type"] != "item":
            frame = await asyncio.wait_for(ws.receive_json(), WAIT_S)
        held = frame["item"]["item_id"]
        lease_until = when((await agent_state(daemon, "zed"))["lease_until"])

        async with api.subscribe("default") as offers:
            # From here on the tool says nothing: no heartbeat, no ack.
            closing = await asyncio.wait_for(ws.receive(), ZOMBIE_LEASE_S + WAIT_S)
            while closing.type == aiohttp.WSMsgType.TEXT:  # a heartbeat the daemon sent
                closing = await asyncio.wait_for(ws.receive(), ZOMBIE_LEASE_S + WAIT_S)
            closed_at = time.time()
            offer = await next_offer(offers)
            back_at = time.time()
            await offer.ack()
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert (closing.data, closing.extra) == (4000, "lease expired")
    assert lease_until <= closed_at < lease_until + 2.0
    assert (offer.item.item_id, offer.item.conversation_id) == (
        held,
        accepted["conversation_id"],
    )
    assert offer.redelivered is True
    assert back_at - closed_at < 2.0
    state = await agent_state(daemon, "zed")
    assert (state["status"], state["holding"]) == ("offline", [])


# --- capacity -------------------------------------------------------------------------


async def test_an_agent_at_capacity_gets_nothing_more_until_it_frees_a_slot(
    daemon: Daemon, api: Client
) -> None:
    me = PresenceIn(status="available", queues=["default"], capacity={"chat": 1}, lease_s=60)
    async with api.subscribe_agent("cap", me, heartbeat_s=5) as offers:
        posted = [await api.post_message(chat(n)) for n in range(2)]
        first = await next_offer(offers)

        async def dispatched() -> bool:  # the second waits in the agent's subscription
            queue = await default_queue(api)
            return bool(queue["backlog"] == 0 and queue["ready"] == 0)

        await until(dispatched, "both items to leave the backlog and the broker queue")
        with pytest.raises(TimeoutError):
            await next_offer(offers, QUIET_S)
        state = await agent_state(daemon, "cap")
        assert state["load"] == {"chat": 1}
        assert [h["item_id"] for h in state["holding"]] == [first.item.item_id]

        await first.ack()
        second = await next_offer(offers)
        state = await agent_state(daemon, "cap")
        assert [h["item_id"] for h in state["holding"]] == [second.item.item_id]
        await second.ack()
    assert {first.item.conversation_id, second.item.conversation_id} == {
        p["conversation_id"] for p in posted
    }
    assert second.item.item_id != first.item.item_id
