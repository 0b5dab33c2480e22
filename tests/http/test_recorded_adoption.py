"""A conversation an auto-reply created (``recorded_only``) is adopted by the customer's
first routed message, through the HTTP API on both backends: its SLA clocks start and
its timers fire for it, even long after the reopen window. The clock is manual; timers
are fired by ``app[ESCALATIONS].fire_due()`` after moving it, never by sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from router.clock import ManualClock
from router.http.keys import ESCALATIONS
from tests.http.conftest import AUTH, Client, message

POLICY = """
[routing]
default_sla = "standard"
reopen_window_s = 3600

[sla.standard]
[[sla.standard.targets]]
first_response = "15m"
next_response = "30m"
resolution = "8h"
"""

DAY_S = 86400


@pytest.fixture
def policy() -> str:
    return POLICY


async def post(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


async def conversation(client: Client, conv: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/conversations/{conv}", headers=AUTH)
    assert resp.status == 200
    return dict(await resp.json())


def clocks(view: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """Each clock's ``(status, due, breached_at)`` by kind (``breached_at``: when its
    breach timer fired)."""
    return {c["kind"]: (c["status"], c["due"], c["breached_at"]) for c in view["clocks"]}


async def test_a_message_after_an_auto_reply_starts_the_clocks(
    app_client: Client, clock: ManualClock
) -> None:
    auto = await post(app_client, message(kind="auto_reply", text="Out of office"))
    recorded = await conversation(app_client, auto["conversation_id"])
    assert (recorded["state"], recorded["recorded_only"], recorded["clocks"]) == (
        "resolved",
        True,
        [],
    )
    clock.advance(2 * DAY_S)  # far past the reopen window

    routed = await post(app_client, message(text="My order arrived broken"))

    assert routed["conversation_id"] == auto["conversation_id"]
    assert routed["deadline"] == "2026-11-24T10:15:00Z"
    view = await conversation(app_client, auto["conversation_id"])
    assert (view["state"], view["recorded_only"], view["resolved_at"]) == ("open", False, None)
    assert clocks(view) == {
        "first_response": ("running", "2026-11-24T10:15:00Z", None),
        "resolution": ("running", "2026-11-24T18:00:00Z", None),
    }
    clock.advance(16 * 60)
    assert await app_client.server.app[ESCALATIONS].fire_due() == 2  # warning, breach
    view = await conversation(app_client, auto["conversation_id"])
    first = clocks(view)["first_response"]
    assert first == ("running", "2026-11-24T10:15:00Z", "2026-11-24T10:16:00Z")
    assert view["priority"] == 1  # the warning and the breach raised it
