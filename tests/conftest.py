"""Shared fixtures. Redis and RabbitMQ are the real servers on loopback; every test run
gets its own RabbitMQ vhost and every test its own Redis key prefix, cleaned up after."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from hypothesis import settings

# The machine is shared and noisy: hypothesis judges examples, never their speed.
settings.register_profile("omniroute", deadline=None, print_blob=True)
settings.load_profile("omniroute")

REDIS_BASE = os.environ.get("OMNIROUTE_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("OMNIROUTE_TEST_AMQP_HOST", "127.0.0.1:5672")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A fresh vhost for this test run on the real RabbitMQ; deleted afterwards."""
    vhost = f"omniroute-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607 — fixed argv, the broker's own CLI


@pytest.fixture
def redis_url() -> str:
    return REDIS_BASE


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"omniroute-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
def queue_name() -> str:
    return f"q{uuid.uuid4().hex[:8]}"
