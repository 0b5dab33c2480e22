"""Every port implementation the contract suites run against. Redis and RabbitMQ cases
use the real servers and fail (never skip) when they are not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.ports import Broker, Store
from router.presence import PresenceStore


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[Store]:
    impl: Store
    if request.param == "sqlite":
        from router.backends.sqlite_store import SqliteStore

        impl = SqliteStore(tmp_path / "omniroute.sqlite3")
    else:
        from router.backends.redis_store import RedisStore

        impl = RedisStore(redis_url, prefix=redis_prefix)
    await impl.open()
    yield impl
    await impl.close()


@pytest.fixture(params=["memory", "amqp"])
async def broker(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[Broker]:
    impl: Broker
    if request.param == "memory":
        from router.backends.memory_broker import MemoryBroker

        impl = MemoryBroker()
    else:
        from router.backends.amqp_broker import AmqpBroker

        impl = AmqpBroker(amqp_url)
    await impl.open()
    yield impl
    await impl.close()


@pytest.fixture(params=["memory", "redis"])
async def presence(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[PresenceStore]:
    impl: PresenceStore
    if request.param == "memory":
        from router.backends.memory_presence import MemoryPresence

        impl = MemoryPresence()
    else:
        from router.backends.redis_presence import RedisPresence

        impl = RedisPresence(redis_url, prefix=redis_prefix)
    await impl.open()
    yield impl
    await impl.close()
