"""Escalation timers across two real daemons: each fires once, on time.

Two ``omniroute serve`` processes share Redis and RabbitMQ; their SLA is a 3 s first
response with the warning at 50 %, so every conversation has a warning due 1.5 s and a
breach due 3 s after it arrived. An agent tool's subscriber on ``<prefix>.events``
(``sla.#``) must see exactly one of each per conversation, each at most
``LATE_LIMIT_S`` after its due time.

This test waits for real time on purpose: the timers run on the daemons' system clocks.
The promise is 1 s (``bench/timers.py`` measures it under load); 1.5 s leaves room
for a noisy shared CI machine (two daemons, Redis and RabbitMQ on two cores) without
letting a timer that waits for a whole extra tick cycle or a second router pass.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from tests.e2e.conftest import Daemon, DaemonFactory, session
from tests.http.conftest import message

pytestmark = pytest.mark.e2e

TARGET_S = 3
WARNING_AT = 0.5
CONVERSATIONS = 30
LATE_LIMIT_S = 1.5
DUPLICATE_WATCH_S = 1.0
"""How long the subscriber keeps listening after the last expected event."""

CONFIG = f"""\
[routing]
queues = ["default"]
default_sla = "e2e"

[sla.e2e]
warning_at = {WARNING_AT}
[[sla.e2e.targets]]
first_response = "{TARGET_S}s"
"""


class Received:
    """Every ``sla.*`` event with the time the subscriber got it."""

    def __init__(self, expected: int) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.all_in = asyncio.Event()
        self._expected = expected

    async def on_message(self, incoming: AbstractIncomingMessage) -> None:
        at = time.time()
        async with incoming.process():
            self.events.append((at, incoming.routing_key or "", json.loads(incoming.body)))
        if len(self.events) >= self._expected:
            self.all_in.set()


async def post(daemon: Daemon, index: int, run: str) -> dict[str, Any]:
    body = message(
        external_id=f"{run}-{index}",
        thread=f"{run}-t{index}",
        sender={"identities": [{"kind": "chat_visitor", "value": f"{run}-v{index}"}]},
    )
    async with session() as s, s.post(f"{daemon.url}/v1/messages", json=body) as resp:
        assert resp.status == 202, await resp.text()
        return dict(await resp.json())


def check_config(path: Path) -> None:
    done = subprocess.run(  # noqa: S603 — the daemon's own CLI on a file we wrote
        [sys.executable, "-m", "router", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def timers_fired(daemon: Daemon) -> float:
    """The daemon's ``omniroute_timers_fired_total``, all kinds: timers it claimed."""
    async with session() as s, s.get(f"{daemon.url}/metrics") as resp:
        text = await resp.text()
    lines = (line for line in text.splitlines() if line.startswith("omniroute_timers_fired_total"))
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def test_two_daemons_fire_every_sla_timer_exactly_once_and_on_time(
    daemon_factory: DaemonFactory,
    redis_url: str,
    redis_prefix: str,
    amqp_url: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "timers.toml"
    config.write_text(CONFIG, encoding="utf-8")
    check_config(config)
    amqp_prefix = f"e2e{uuid.uuid4().hex[:6]}.omniroute"
    env = {
        "OMNIROUTE_CONFIG": str(config),
        "OMNIROUTE_DATA_DIR": str(tmp_path / "data"),
        "OMNIROUTE_REDIS_URL": redis_url,
        "OMNIROUTE_REDIS_PREFIX": redis_prefix,
        "OMNIROUTE_AMQP_URL": amqp_url,
        "OMNIROUTE_AMQP_PREFIX": amqp_prefix,
    }
    daemons = [daemon_factory(env), daemon_factory(env)]
    await asyncio.gather(*(d.start() for d in daemons))

    received = Received(expected=2 * CONVERSATIONS)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        events = await channel.get_exchange(f"{amqp_prefix}.events")  # the daemons declared it
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(events, routing_key="sla.#")
        await queue.consume(received.on_message)

        run = uuid.uuid4().hex[:8]
        answers = await asyncio.gather(
            *(post(daemons[i % 2], i, run) for i in range(CONVERSATIONS))
        )
        last_due = max(when(a["deadline"]) for a in answers)
        await asyncio.wait_for(received.all_in.wait(), last_due - time.time() + 10)
        await asyncio.sleep(DUPLICATE_WATCH_S)  # a second firing would arrive now

    per_conversation: dict[str, list[str]] = defaultdict(list)
    for _, routing_key, payload in received.events:
        per_conversation[payload["conversation_id"]].append(routing_key)
    assert {
        a["conversation_id"]: sorted(per_conversation[a["conversation_id"]]) for a in answers
    } == {a["conversation_id"]: ["sla.breached", "sla.warning"] for a in answers}
    assert len(received.events) == 2 * CONVERSATIONS  # nothing for anyone else either

    deadlines = {a["conversation_id"]: when(a["deadline"]) for a in answers}
    warning_before_s = timedelta(seconds=TARGET_S * (1 - WARNING_AT)).total_seconds()
    late_s = []
    for received_at, routing_key, payload in received.events:
        due = when(payload["due"])  # the clock's due time: the breach timer's
        assert due == deadlines[payload["conversation_id"]]
        timer_due = due - warning_before_s if routing_key == "sla.warning" else due
        assert when(payload["at"]) >= timer_due  # never early
        late_s.append(received_at - timer_due)
    assert max(late_s) <= LATE_LIMIT_S, sorted(late_s)[-5:]
    # Each timer was claimed by one daemon, once (not merely deduplicated by the
    # conversation's compare-and-set afterwards).
    assert sum([await timers_fired(d) for d in daemons]) == 2 * CONVERSATIONS

    for daemon in daemons:
        assert await daemon.stop() == 0
