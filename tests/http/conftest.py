"""The app under test, through ``aiohttp_client(create_app(settings))`` so the real
lifecycle runs, on the embedded default and on the real Redis + RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from router.app import create_app
from router.clock import ManualClock
from router.settings import Settings, load

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))


@pytest.fixture(params=["embedded", "production"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {
        "OMNIROUTE_DATA_DIR": str(tmp_path / "data"),
        "OMNIROUTE_API_TOKEN": TOKEN,
        "OMNIROUTE_DISPATCH_POLL_MS": "20",
    }
    if backend == "production":
        env |= {
            "OMNIROUTE_REDIS_URL": request.getfixturevalue("redis_url"),
            "OMNIROUTE_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
            "OMNIROUTE_AMQP_URL": request.getfixturevalue("amqp_url"),
            "OMNIROUTE_AMQP_PREFIX": f"t{uuid.uuid4().hex[:8]}.omniroute",
        }
    return env


@pytest.fixture
def policy() -> str | None:
    """The configuration file's text for a module's tests (None: no file, the defaults).
    A module overrides this fixture to run the app with its own routing policy."""
    return None


@pytest.fixture
def settings(env: dict[str, str], tmp_path: Path, policy: str | None) -> Settings:
    if policy is None:
        return load(env=env)
    path = tmp_path / "omniroute.toml"
    path.write_text(policy)
    return load(path, env=env)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    clock: ManualClock,
) -> Client:
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def app_client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    clock: ManualClock,
) -> Client:
    """The app with its escalation timers left to the test: move the clock, then
    ``app[ESCALATIONS].fire_due()`` (no sleeping for time)."""
    return await aiohttp_client(create_app(settings, clock=clock, run_timers=False))


def message(**overrides: Any) -> dict[str, Any]:
    """The README's example message, with overrides."""
    body: dict[str, Any] = {
        "channel": "chat",
        "source": "acme-webchat",
        "external_id": f"msg-{uuid.uuid4().hex[:8]}",
        "sender": {
            "name": "Maria Lopez",
            "identities": [
                {"kind": "email", "value": "Maria.Lopez@Example.com", "verified": False},
                {"kind": "chat_visitor", "value": "v-991", "verified": True},
            ],
        },
        "thread": "chat-session-77",
        "subject": None,
        "text": "My order arrived broken",
        "sent_at": "2026-11-22T10:00:00Z",
        "attachments": [
            {
                "name": "photo.jpg",
                "content_type": "image/jpeg",
                "size": 12345,
                "url": "https://files.example.com/1",
            }
        ],
        "attributes": {"order_id": "A-1001"},
    }
    body.update(overrides)
    return body
