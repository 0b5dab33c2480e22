"""The IMAP poller's tests run the app against a real dovecot (``dovecot.py``): one
server per module, one fresh mailbox per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.connectors.imap.dovecot import Dovecot, Mailbox

T = TypeVar("T")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    yield server
    server.remove()


@pytest.fixture
async def mailbox(dovecot: Dovecot) -> Mailbox:
    box = Mailbox(dovecot, f"T{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(box.create)
    return box


@pytest.fixture
def imap_extra() -> dict[str, Any]:
    """More ``[connectors.imap]`` keys (a test parametrizes this to change them)."""
    return {}


@pytest.fixture
def policy(mailbox: Mailbox, imap_extra: dict[str, Any]) -> str:
    return mailbox.server.toml(mailbox.name, **imap_extra)


async def eventually(check: Callable[[], Awaitable[T]], *, timeout_s: float = 10.0) -> T:
    """``check``'s first truthy answer, asked every 20 ms for up to ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (answer := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {check.__name__}")
        await asyncio.sleep(0.02)
    return answer
