"""Backends going away and coming back: 503 (never a 202 for a message not stored), and
recovery without a restart. Redis runs as a private server on its own port so the test
can stop it; RabbitMQ's connections are closed from the server side."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from router.app import create_app
from router.settings import Settings, load
from tests.e2e.conftest import free_port
from tests.http.conftest import AUTH, Client, message

pytestmark = pytest.mark.parametrize("backend", ["production"], indirect=True)


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tmp
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            probe = await asyncio.create_subprocess_exec(
                "redis-cli",
                "-p",
                str(self.port),
                "ping",
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            out, _ = await probe.communicate()
            if out.strip() == b"PONG":
                return
            await asyncio.sleep(0.05)  # waiting for a server to listen, not for time
        raise RuntimeError("private redis did not start")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    await server.start()
    yield server
    await server.stop()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(300):
        if await check():
            return
        await asyncio.sleep(0.05)  # waiting for a reconnect, not for time
    raise AssertionError(f"never: {what}")


async def test_redis_down_is_503_and_recovers_without_restart(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    env: dict[str, str],
    private_redis: PrivateRedis,
) -> None:
    client = await aiohttp_client(
        create_app(load(env={**env, "OMNIROUTE_REDIS_URL": private_redis.url}))
    )
    assert (await client.post("/v1/messages", json=message(), headers=AUTH)).status == 202

    await private_redis.stop()
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "backend_unavailable"
    resp = await client.post("/v1/messages", json=message(), headers=AUTH)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "backend_unavailable"
    assert (await client.get("/healthz")).status == 200

    await private_redis.start()

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await until(ready, "ready again")
    resp = await client.post("/v1/messages", json=message(), headers=AUTH)
    assert resp.status == 202


async def test_rabbitmq_connection_loss_recovers_without_restart(
    client: Client, settings: Settings
) -> None:
    assert (await client.post("/v1/messages", json=message(), headers=AUTH)).status == 202
    vhost = settings.amqp.url.get().rsplit("/", 1)[1]
    closer = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        "close_all_connections",
        "-p",
        vhost,
        "outage test",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert await closer.wait() == 0

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await until(ready, "broker reconnected")
    resp = await client.post("/v1/messages", json=message(thread="after"), headers=AUTH)
    assert resp.status == 202
    async with client.ws_connect("/v1/queues/default/subscribe?capacity=5", headers=AUTH) as ws:
        got = set()
        for _ in range(2):
            frame = await asyncio.wait_for(ws.receive_json(), 15)
            got.add(frame["item"]["conversation_id"])
            await ws.send_json({"ack": frame["item"]["item_id"]})
    assert len(got) == 2
