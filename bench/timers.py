"""Escalation timers under load: each fires once, at most 1 s late, with 1M armed.

    .venv/bin/python bench/timers.py                     # 1M armed, about 1-2 minutes
    .venv/bin/python bench/timers.py --armed 100000      # a quick run

Against the real Redis and RabbitMQ (a fresh key and name prefix ``bench-timers-<hex>``,
everything under it deleted at the end):

1. ``--armed`` background timers, due 1 to 25 hours ahead, are written straight into the
   store's timer key (``{P}:timers``, a zset of Timer.key -> due µs, as the
   ``RedisStore`` docstring documents it) by a pipelined bulk load: arming a million
   through the pipeline would take too long. ``ZCARD`` and ``RedisStore.next_timer()``
   confirm they are there.
2. ``--routers`` processes each run the daemon's own timer loop (``Escalations`` over
   ``Conversations``, their own ``RedisStore`` and ``AmqpBroker``, a ``SystemClock``).
3. ``--due`` conversations arrive at an even rate over the first ``window - target``
   seconds, through the real path (``normalize`` -> ``RoutingPolicy.decide`` ->
   ``RedisStore.ingest`` with the decision's timers): an SLA of ``--target-s`` with
   ``warning_at = 0.5`` gives each one a warning and a breach timer, due evenly over the
   window while the routers fire.
4. A subscriber bound to ``<prefix>.events`` with ``sla.#`` timestamps every event:
   lateness = received - the timer's due time (from the decision that armed it).

Exit status 1 when any timer was late by more than 1 s, fired twice or never, or a
background timer was touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiormq
import redis.asyncio as aioredis
from aiormq.abc import DeliveredMessage
from servers import cleanup_rabbitmq, cleanup_redis

from router import logging as router_logging
from router.backends.amqp_broker import AmqpBroker
from router.backends.redis_store import RedisStore
from router.clock import SystemClock
from router.conversations import Conversations, Escalations
from router.metrics import Metrics
from router.models import RoutingContext, Timer
from router.pipeline import decode_message, normalize, request
from router.policy import RoutingPolicy, load_policy
from router.settings import load as load_settings

LATE_LIMIT_S = 1.0
BULK_CHUNK = 10_000  # timers per ZADD / HSET command
BULK_PIPELINE = 10  # commands per round trip
AHEAD_S = (3600.0, 25 * 3600.0)  # background timers are due this far ahead
ARRIVAL_TICK_S = 0.05
KINDS = {"sla.warning": "warning", "sla.breached": "breach"}

CONFIG = """\
[routing]
queues = ["default"]
default_sla = "bench"

[sla.bench]
warning_at = 0.5
[[sla.bench.targets]]
first_response = "{target_s}s"
"""


@dataclass(frozen=True)
class Options:
    armed: int
    due: int
    window_s: float
    routers: int
    target_s: int
    redis_url: str
    amqp_url: str

    @staticmethod
    def parse() -> Options:
        p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        p.add_argument("--armed", type=int, default=1_000_000, help="background timers")
        p.add_argument("--due", type=int, default=2000, help="conversations (2 timers each)")
        p.add_argument("--window-s", type=float, default=20.0, help="when the due ones fall")
        p.add_argument("--routers", type=int, default=2, help="timer loops, one process each")
        p.add_argument("--target-s", type=int, default=4, help="first-response SLA target")
        p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
        p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
        a = p.parse_args()
        if a.window_s <= a.target_s or a.due < 1 or a.routers < 1 or a.armed < 0:
            p.error("need --window-s > --target-s, --due >= 1, --routers >= 1, --armed >= 0")
        return Options(a.armed, a.due, a.window_s, a.routers, a.target_s, a.redis_url, a.amqp_url)


# --- 1. the background timers ---------------------------------------------------------


def _us(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def background_batch(start: int, count: int, now: datetime, rng: random.Random) -> list[Timer]:
    return [
        Timer(
            conversation_id=f"con_bg{i:07d}",
            kind="breach",
            ref="first_response",
            at=now + timedelta(seconds=rng.uniform(*AHEAD_S)),
        )
        for i in range(start, start + count)
    ]


async def arm_background(options: Options, prefix: str, now: datetime) -> datetime | None:
    """Bulk-load ``--armed`` timers into ``{P}:timers``; returns the
    earliest due time written."""
    base = f"{{{prefix}}}:"
    client = aioredis.Redis.from_url(options.redis_url)
    rng = random.Random(7)
    earliest: datetime | None = None
    try:
        pipe = client.pipeline(transaction=False)
        for start in range(0, options.armed, BULK_CHUNK):
            timers = background_batch(start, min(BULK_CHUNK, options.armed - start), now, rng)
            first = min(t.at for t in timers)
            earliest = first if earliest is None or first < earliest else earliest
            scores: list[Any] = []
            for timer in timers:
                scores += [_us(timer.at), timer.key]
            pipe.execute_command("ZADD", f"{base}timers", *scores)
            if len(pipe) >= BULK_PIPELINE:
                await pipe.execute()
        await pipe.execute()
    finally:
        await client.aclose()
    return earliest


async def timer_counts(options: Options, prefix: str) -> int:
    client = aioredis.Redis.from_url(options.redis_url)
    try:
        return int(await client.zcard(f"{{{prefix}}}:timers"))
    finally:
        await client.aclose()


# --- 2. the routers -------------------------------------------------------------------


def router_process(options: Options, prefix: str, config: str, conn: Connection) -> None:
    """One router's timer loop, in a process of its own (its own GIL and clients)."""
    router_logging.configure("warning", "json")
    conn.send(asyncio.run(_router(options, prefix, config, conn)))


async def _router(options: Options, prefix: str, config: str, conn: Connection) -> dict[str, Any]:
    policy = load_policy(load_settings(Path(config), env={}))
    store = RedisStore(options.redis_url, prefix=prefix)
    broker = AmqpBroker(options.amqp_url, prefix=prefix)
    await store.open()
    await broker.open()
    metrics = Metrics()
    clock = SystemClock()
    conversations = Conversations(
        store=store,
        broker=broker,
        clock=clock,
        config=policy.lifecycle,
        metrics=metrics,
        on_queued=lambda _queue: None,  # no dispatcher here: items stay in the backlog
    )
    escalations = Escalations(store=store, conversations=conversations, clock=clock)
    cpu_before = time.process_time()
    escalations.start()
    conn.send("ready")
    await asyncio.to_thread(conn.recv)  # the bench says stop
    await escalations.stop()
    await broker.close()
    await store.close()
    fired = {
        kind: metrics.registry.get_sample_value("omniroute_timers_fired_total", {"kind": kind})
        for kind in ("warning", "breach")
    }
    return {"fired": fired, "cpu_s": time.process_time() - cpu_before}


class Routers:
    def __init__(self, options: Options, prefix: str, config: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for _ in range(options.routers):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=router_process, args=(options, prefix, str(config), theirs), daemon=True
            )
            self._pipes.append(ours)
            self._processes.append(process)

    async def start(self) -> None:
        for process in self._processes:
            process.start()
        for pipe in self._pipes:
            if not await asyncio.to_thread(pipe.poll, 60) or pipe.recv() != "ready":
                raise RuntimeError("a router did not start")

    async def stop(self) -> list[dict[str, Any]]:
        reports = []
        for pipe in self._pipes:
            pipe.send("stop")
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            ok = await asyncio.to_thread(pipe.poll, 30)
            reports.append(pipe.recv() if ok else {"fired": {}, "cpu_s": None})
            await asyncio.to_thread(process.join, 10)
        return reports

    def kill(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()


# --- 3. the due conversations, 4. their events ----------------------------------------


@dataclass
class Events:
    """Every ``sla.*`` event received: (receipt time, conversation id, kind, fired at)."""

    received: list[tuple[float, str, str, float]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def on_message(self, message: DeliveredMessage) -> None:
        at = time.time()
        payload = json.loads(message.body)
        kind = KINDS.get(message.delivery.routing_key or "", "?")
        fired = datetime.fromisoformat(payload["at"]).timestamp()
        self.received.append((at, payload["conversation_id"], kind, fired))
        if len(self.received) >= self.expected:
            self.done.set()


async def subscribe(options: Options, prefix: str, events: Events) -> aiormq.abc.AbstractConnection:
    connection = await aiormq.connect(options.amqp_url)
    channel = await connection.channel()
    exchange = f"{prefix}.events"
    await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    declared = await channel.queue_declare(exclusive=True, auto_delete=True)
    assert declared.queue is not None
    await channel.queue_bind(declared.queue, exchange, routing_key="sla.#")
    await channel.basic_consume(declared.queue, events.on_message, no_ack=True)
    return connection


def body(run: str, i: int) -> bytes:
    return json.dumps(
        {
            "channel": "chat",
            "source": "bench-timers",
            "external_id": f"{run}-{i}",
            "sender": {"identities": [{"kind": "chat_visitor", "value": f"{run}-v{i}"}]},
            "thread": f"t{i}",
            "text": "where is my order?",
        }
    ).encode()


async def ingest_batch(
    store: RedisStore, policy: RoutingPolicy, run: str, indexes: range
) -> list[Timer]:
    """Store these conversations as the daemon would; returns the timers they armed."""
    now = SystemClock().now()
    messages = [
        normalize(decode_message(body(run, i)), received_at=now, default_region=None)
        for i in indexes
    ]
    contexts = await store.contexts(messages, since=now, limit=0)
    requests = []
    for message, context in zip(messages, contexts, strict=True):
        suffix = secrets.token_hex(8)
        decision = policy.decide(
            message,
            context or RoutingContext(),
            conversation_id=f"con_{suffix}",
            item_id=f"itm_{suffix}",
        )
        requests.append(request(message, decision, suffix=suffix))
    results = await store.ingest(requests)
    assert all(r.conversation_created for r in results)
    return [t for r in requests for t in r.decision.timers]


async def arrive(options: Options, run: str, config: Path) -> list[Timer]:
    """``--due`` conversations at an even rate over ``window - target`` seconds."""
    policy = load_policy(load_settings(config, env={}))
    store = RedisStore(options.redis_url, prefix=run)
    await store.open()
    armed: list[Timer] = []
    span_s = options.window_s - options.target_s
    start = time.monotonic()
    sent = 0
    try:
        while sent < options.due:
            elapsed = time.monotonic() - start
            upto = min(options.due, int(elapsed / span_s * options.due) + 1)
            if upto > sent:
                armed += await ingest_batch(store, policy, run, range(sent, upto))
                sent = upto
            await asyncio.sleep(ARRIVAL_TICK_S)  # the arrival schedule, not a wait for state
    finally:
        await store.close()
    return armed


# --- the report -----------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Verdict:
    late_s: list[float]
    fired_late_s: list[float]
    duplicates: int
    missing: int
    unexpected: int


def judge(armed: list[Timer], events: Events) -> Verdict:
    due = {(t.conversation_id, t.kind): t.at.timestamp() for t in armed}
    seen: Counter[tuple[str, str]] = Counter()
    late_s, fired_late_s = [], []
    unexpected = 0
    for received_at, conversation_id, kind, fired_at in events.received:
        key = (conversation_id, kind)
        if key not in due:
            unexpected += 1
            continue
        seen[key] += 1
        if seen[key] == 1:
            late_s.append(received_at - due[key])
            fired_late_s.append(fired_at - due[key])
    return Verdict(
        late_s=sorted(late_s),
        fired_late_s=sorted(fired_late_s),
        duplicates=sum(n - 1 for n in seen.values()),
        missing=len(due) - len(seen),
        unexpected=unexpected,
    )


def ms(values: list[float]) -> str:
    cuts = [percentile(values, q) * 1000 for q in (0.5, 0.95, 0.99)]
    top = values[-1] * 1000 if values else float("nan")
    return " / ".join(f"{v:.1f}" for v in [*cuts, top])


def claimed(reports: list[dict[str, Any]]) -> int | None:
    """Timers the routers took off the store, all together (None: a router did not say)."""
    if any(not r["fired"] for r in reports):
        return None
    return sum(int(v or 0) for r in reports for v in r["fired"].values())


def failures(verdict: Verdict, background_ok: bool, claims: int | None, due: int) -> list[str]:
    fails = []
    if claims != due:
        fails.append(f"the routers claimed {claims} timers for {due} due ones")
    if not verdict.late_s or verdict.late_s[-1] > LATE_LIMIT_S:
        fails.append(f"a timer was more than {LATE_LIMIT_S:.0f} s late")
    if verdict.duplicates or verdict.unexpected:
        fails.append("a timer fired more than once (or an unknown one fired)")
    if verdict.missing:
        fails.append("a timer never fired")
    if not background_ok:
        fails.append("background timers were fired or lost")
    return fails


# --- the run --------------------------------------------------------------------------


async def bench(options: Options) -> int:
    run = f"bench-timers-{secrets.token_hex(4)}"
    events = Events(expected=2 * options.due)
    routers: Routers | None = None
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "timers.toml"
        config.write_text(CONFIG.format(target_s=options.target_s), encoding="utf-8")
        try:
            routers = Routers(options, run, config)
            return await _measure(options, run, config, routers, events)
        finally:
            if routers is not None:
                routers.kill()
            await _cleanup(options, run)


async def _measure(
    options: Options, run: str, config: Path, routers: Routers, events: Events
) -> int:
    print(f"run {run}: {options.routers} routers, load average {os.getloadavg()[0]:.2f}")
    started = time.monotonic()
    earliest = await arm_background(options, run, SystemClock().now())
    load_s = time.monotonic() - started
    zcard = await timer_counts(options, run)
    probe = RedisStore(options.redis_url, prefix=run)
    await probe.open()
    next_due = await probe.next_timer()
    await probe.close()
    print(
        f"armed {options.armed:,} background timers by a pipelined bulk load into "
        f"{{{run}}}:timers (the RedisStore key schema, not the ingest path) "
        f"in {load_s:.1f} s; ZCARD {zcard:,}, next_timer() {next_due}"
    )
    if zcard != options.armed or next_due != earliest:
        print("FAIL: the bulk load is not what the store sees")
        return 1
    amqp = await subscribe(options, run, events)
    try:
        await routers.start()
        print(
            f"{options.due:,} conversations arriving over "
            f"{options.window_s - options.target_s:.0f} s, SLA {options.target_s} s "
            f"(warning at 50 %): {2 * options.due:,} timers due over the next "
            f"{options.window_s:.0f} s"
        )
        window_started = time.monotonic()
        armed = await arrive(options, run, config)
        left_s = options.window_s + 5 - (time.monotonic() - window_started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events.done.wait(), max(left_s, 1))
        await asyncio.sleep(1.0)  # a duplicate would arrive now
        reports = await routers.stop()
    finally:
        await amqp.close()
    zcard_after = await timer_counts(options, run)
    verdict = judge(armed, events)
    background_ok = zcard_after == options.armed
    _print(options, verdict, reports, zcard_after, armed)
    fails = failures(verdict, background_ok, claimed(reports), len(armed))
    for fail in fails:
        print(f"FAIL: {fail}")
    print("OK" if not fails else "NOT MET")
    return 1 if fails else 0


def _print(
    options: Options,
    verdict: Verdict,
    reports: list[dict[str, Any]],
    zcard_after: int,
    armed: list[Timer],
) -> None:
    per_second = Counter(int(t.at.timestamp()) for t in armed)
    peak = max(per_second.values(), default=0)
    print(f"armed at the end: {zcard_after:,} (background untouched: {options.armed:,})")
    print(f"due timers per second: {len(armed) / options.window_s:.0f} on average, {peak} at most")
    print(
        f"due timers: {len(armed):,}; fired once: {len(verdict.late_s):,}; "
        f"duplicates: {verdict.duplicates}; missing: {verdict.missing}; "
        f"unknown: {verdict.unexpected}"
    )
    print(f"lateness p50 / p95 / p99 / max ms, due -> event received: {ms(verdict.late_s)}")
    print(f"lateness p50 / p95 / p99 / max ms, due -> fired (event at): {ms(verdict.fired_late_s)}")
    for i, r in enumerate(reports):
        fired = {k: int(v or 0) for k, v in r["fired"].items()}
        cpu = "?" if r["cpu_s"] is None else f"{r['cpu_s']:.1f} s"
        print(f"router {i}: claimed and applied {fired}, CPU {cpu}")


async def _cleanup(options: Options, run: str) -> None:
    keys = await cleanup_redis(options.redis_url, run)
    deleted = await cleanup_rabbitmq(
        options.amqp_url,
        run,
        queues=[f"{run}.inbound", f"{run}.dead"],
        exchanges=[f"{run}.events", f"{run}.inbound", f"{run}.dead"],
    )
    print(f"cleaned up: {keys} Redis keys, {len(deleted)} RabbitMQ queues/exchanges")


def main() -> None:
    sys.exit(asyncio.run(bench(Options.parse())))


if __name__ == "__main__":
    main()
