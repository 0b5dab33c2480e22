"""omniroute throughput and latency benchmark: one command, one table.

    .venv/bin/python bench/run.py            # all three targets, about 3 minutes
    .venv/bin/python bench/run.py --help     # durations, connections, targets, profiling

(a) omniroute on Redis + RabbitMQ, (b) the naive reference pipeline (``naive.py``) on
the same servers, (c) omniroute on the embedded default (SQLite + in-process queues).
For each: messages/s at saturation (closed loop, POST → 2xx), then POST → received by a
consumer latency at half that rate (open loop, fixed arrival rate), with the CPU each
process used. Prints a table, checks the targets, writes ``bench/results/<time>.json``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from consumers import AmqpConsumer, Tally, WsConsumer
from loadgen import percentiles_ms
from servers import (
    CpuProbe,
    CpuSnapshot,
    Server,
    calls_between,
    cleanup_rabbitmq,
    cleanup_redis,
    find_pids,
    free_port,
    redis_calls,
)
from workload import write_templates

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
TOKEN = "bench-token"
QUEUE = "default"
POLL_S = 0.25

TARGET_RATIO = 1.5
TARGET_P99_MS = 25.0
TARGET_EMBEDDED = 2000.0

TITLES = {
    "a": "(a) omniroute Redis+RabbitMQ",
    "b": "(b) naive reference",
    "c": "(c) omniroute embedded",
}


class Consumer(Protocol):
    tally: Tally

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Options:
    targets: tuple[str, ...]
    warmup: float
    duration: float
    lat_warmup: float
    lat_duration: float
    connections: int
    open_connections: int
    capacity: int
    customers: int
    tool: str
    redis_url: str
    amqp_url: str
    log_level: str | None
    drain_timeout: float
    tail_timeout: float
    daemon_env: tuple[str, ...]
    py_spy: str | None

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> Options:
        p = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument("--targets", default="a,b,c", help="which of a,b,c (default: all)")
        p.add_argument("--warmup", type=float, default=3.0, help="saturation warm-up (s)")
        p.add_argument("--duration", type=float, default=15.0, help="saturation window (s)")
        p.add_argument("--lat-warmup", type=float, default=2.0, help="latency warm-up (s)")
        p.add_argument("--lat-duration", type=float, default=15.0, help="latency window (s)")
        p.add_argument("--connections", type=int, default=64, help="saturation connections")
        p.add_argument(
            "--open-connections", type=int, default=64, help="latency phase connection pool"
        )
        p.add_argument("--capacity", type=int, default=100, help="consumer prefetch / capacity")
        p.add_argument("--customers", type=int, default=5000)
        p.add_argument(
            "--tool",
            choices=("auto", "wrk", "python"),
            default="auto",
            help="saturation load generator (auto: wrk when installed)",
        )
        p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
        p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
        p.add_argument(
            "--log-level", help="OMNIROUTE_LOG_LEVEL for the daemon (default: its own, info)"
        )
        p.add_argument(
            "--drain-timeout",
            type=float,
            default=30.0,
            help="wait this long for the saturation backlog to drain, else measure latency "
            "on a fresh instance (s)",
        )
        p.add_argument(
            "--tail-timeout",
            type=float,
            default=15.0,
            help="wait this long for the last measured items to arrive (s)",
        )
        p.add_argument(
            "--daemon-env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="extra environment for the omniroute daemons, e.g. "
            "OMNIROUTE_DISPATCH_READY_DEPTH=100 (repeatable)",
        )
        p.add_argument(
            "--py-spy",
            metavar="PATH",
            help="profile each omniroute daemon with this py-spy during both windows",
        )
        a = p.parse_args(argv)
        targets = tuple(t.strip() for t in a.targets.split(",") if t.strip())
        if not targets or set(targets) - set(TITLES):
            p.error("--targets takes a comma-separated subset of a,b,c")
        if any("=" not in item for item in a.daemon_env):
            p.error("--daemon-env takes KEY=VALUE")
        tool = a.tool
        if tool == "auto":
            tool = "wrk" if shutil.which("wrk") else "python"
        elif tool == "wrk" and not shutil.which("wrk"):
            p.error("wrk is not installed (apt-get install -y wrk)")
        return cls(
            targets=targets,
            warmup=a.warmup,
            duration=a.duration,
            lat_warmup=a.lat_warmup,
            lat_duration=a.lat_duration,
            connections=a.connections,
            open_connections=a.open_connections,
            capacity=a.capacity,
            customers=a.customers,
            tool=tool,
            redis_url=a.redis_url,
            amqp_url=a.amqp_url,
            log_level=a.log_level,
            drain_timeout=a.drain_timeout,
            tail_timeout=a.tail_timeout,
            daemon_env=tuple(a.daemon_env),
            py_spy=a.py_spy,
        )


class Bench:
    def __init__(self, options: Options, run_id: str, workdir: Path) -> None:
        self.o = options
        self.run_id = run_id
        self.workdir = workdir
        self.instances: list[str] = []
        """``<target><n>`` of every server started; names in Redis and RabbitMQ derive from it."""

    def prefix(self, instance: str) -> str:
        """The Redis key prefix and RabbitMQ name prefix of one server instance."""
        return f"{self.run_id}.{instance}"

    def queue(self, instance: str) -> str:
        return f"{self.prefix(instance)}.queue.{QUEUE}"

    # --- servers and consumers -----------------------------------------------------

    def server(self, target: str) -> tuple[Server, str]:
        instance = f"{target}{sum(i.startswith(target) for i in self.instances)}"
        self.instances.append(instance)
        return self._server(target, instance), instance

    def _server(self, target: str, instance: str) -> Server:
        port = free_port()
        log = self.workdir / f"{instance}.log"
        if target == "b":
            argv = [
                sys.executable,
                str(BENCH / "naive.py"),
                f"--port={port}",
                f"--token={TOKEN}",
                f"--redis-url={self.o.redis_url}",
                f"--prefix={self.prefix(instance)}",
                f"--amqp-url={self.o.amqp_url}",
                f"--queue={self.queue(instance)}",
            ]
            return Server("naive", argv, port=port, ready_path="/healthz", log_path=log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")}
        env |= {
            "OMNIROUTE_HTTP_HOST": "127.0.0.1",
            "OMNIROUTE_HTTP_PORT": str(port),
            "OMNIROUTE_API_TOKEN": TOKEN,
            "OMNIROUTE_DATA_DIR": str(self.workdir / f"data-{instance}"),
        }
        if self.o.log_level:
            env["OMNIROUTE_LOG_LEVEL"] = self.o.log_level
        env |= dict(item.split("=", 1) for item in self.o.daemon_env)
        if target == "a":
            env |= {
                "OMNIROUTE_REDIS_URL": self.o.redis_url,
                "OMNIROUTE_REDIS_PREFIX": self.prefix(instance),
                "OMNIROUTE_AMQP_URL": self.o.amqp_url,
                "OMNIROUTE_AMQP_PREFIX": self.prefix(instance),
            }
        script = Path(sys.executable).with_name("omniroute")
        argv = (
            [str(script), "serve"] if script.exists() else [sys.executable, "-m", "router", "serve"]
        )
        return Server("omniroute", argv, port=port, ready_path="/readyz", log_path=log, env=env)

    def consumer(self, target: str, instance: str, server: Server) -> Consumer:
        if target == "c":
            url = server.url.replace("http://", "ws://") + f"/v1/queues/{QUEUE}/subscribe"
            return WsConsumer(url, TOKEN, capacity=self.o.capacity)
        return AmqpConsumer(self.o.amqp_url, self.queue(instance), capacity=self.o.capacity)

    # --- one target ------------------------------------------------------------------

    async def _up(self, target: str) -> tuple[Server, Consumer, CpuProbe]:
        server, instance = self.server(target)
        await server.start()
        consumer = self.consumer(target, instance, server)
        try:
            await consumer.start()
        except BaseException:
            await self._down(server, consumer)
            raise
        probe = CpuProbe(
            {
                "server": [server.pid],
                "redis": find_pids("redis-server") if target != "c" else [],
                "rabbitmq": find_pids("beam.smp") if target != "c" else [],
                "consumer": [os.getpid()],
            }
        )
        return server, consumer, probe

    @staticmethod
    async def _down(server: Server, consumer: Consumer) -> None:
        try:
            await consumer.close()
        finally:
            code = await server.stop()
            if code not in (0, None, -15):
                print(f"  {server.name} exited with {code}:\n{server.log_tail(1500)}")

    async def measure(self, target: str) -> dict[str, Any]:
        print(f"\n== {TITLES[target]}", flush=True)
        server, consumer, probe = await self._up(target)
        try:
            result: dict[str, Any] = {"title": TITLES[target]}
            sat = await self.saturation(target, server, consumer.tally, probe)
            result["saturation"] = sat
            print(
                f"  saturation: {sat['throughput']:.0f} msgs/s "
                f"(POST→2xx p50 {sat['post_latency_ms']['p50']} ms, "
                f"p99 {sat['post_latency_ms']['p99']} ms); "
                f"delivered {sat['delivered_per_s']:.0f}/s",
                flush=True,
            )
            started = time.monotonic()
            tally = consumer.tally
            drained = (
                await self.wait_delivered(
                    lambda: len(tally.seen) >= sat["ok_total"],
                    None if target == "b" else server,
                    self.o.drain_timeout,
                )
                != "timeout"
            )
            result["drain"] = {
                "drained": drained,
                "seconds": round(time.monotonic() - started, 2),
                "items_received": tally.counts["s"],
                "messages_received": len(tally.seen),
                "accepted": sat["ok_total"],
            }
            if target != "b":
                result["drain"]["queues"] = await queue_state(server)
            if drained:
                print(f"  backlog drained after {result['drain']['seconds']} s", flush=True)
            else:
                # The latency figure would be the old backlog's drain time: measure it on
                # a fresh instance instead, and say so.
                print(
                    f"  backlog NOT drained after {self.o.drain_timeout:g} s "
                    f"({len(tally.seen)} of {sat['ok_total']} messages delivered): "
                    "latency on a fresh instance",
                    flush=True,
                )
                await self._down(server, consumer)
                server, consumer, probe = await self._up(target)
            result["latency_on_fresh_instance"] = not drained
            rate = max(1.0, sat["throughput"] / 2)
            lat = await self.latency(target, server, consumer.tally, probe, rate)
            result["latency"] = lat
            e2e = lat["e2e_latency_ms"]
            print(
                f"  latency at {rate:.0f} msgs/s: POST→consumer p50 {e2e['p50']} ms, "
                f"p99 {e2e['p99']} ms, max {e2e['max']} ms "
                f"({lat['items_received']} items for {lat['ok_measure']} messages accepted, "
                f"{lat['folded']} folded into later items, {lat['never_received']} never "
                f"received); delivered {lat['delivered_per_s']:.0f}/s",
                flush=True,
            )
            if lat["never_received"] and target != "b":
                lat["queues_after"] = await queue_state(server)
                print(f"  not all received; queues: {lat['queues_after']}", flush=True)
            if sat["errors"] or lat["errors"]:
                print(f"  errors: {(sat['errors'] + lat['errors'])[:3]}")
            return result
        finally:
            await self._down(server, consumer)

    def window_marks(
        self,
        marks: dict[str, Any],
        target: str,
        server: Server,
        tally: Tally,
        probe: CpuProbe,
        *,
        phase: str,
        seconds: float,
    ) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """What a measuring window records into ``marks`` when it starts and ends: CPU,
        messages seen, Redis calls (not for the embedded target) and, when asked, a
        py-spy profile of the daemon."""

        async def window_start() -> None:
            marks["cpu0"], marks["seen0"] = probe.snapshot(), (tally.total, len(tally.seen))
            if target != "c":
                marks["redis0"] = await redis_calls(self.o.redis_url)
            if self.o.py_spy and target != "b":
                marks["spy"] = await self.start_py_spy(f"{target}-{phase}", server.pid, seconds)

        async def window_end() -> None:
            marks["cpu1"], marks["seen1"] = probe.snapshot(), (tally.total, len(tally.seen))
            if target != "c":
                marks["redis1"] = await redis_calls(self.o.redis_url)

        return window_start, window_end

    async def saturation(
        self, target: str, server: Server, tally: Tally, probe: CpuProbe
    ) -> dict[str, Any]:
        marks: dict[str, Any] = {}
        window_start, window_end = self.window_marks(
            marks, target, server, tally, probe, phase="saturation", seconds=self.o.duration
        )

        tag = f"{self.run_id}{target}"
        if self.o.tool == "wrk":
            gen = await self.wrk(server, tag, window_start, window_end)
        else:
            gen = await self.loadgen(
                server,
                ["--mode=closed", f"--connections={self.o.connections}"],
                tag=tag,
                warmup=self.o.warmup,
                duration=self.o.duration,
                window_start=window_start,
                window_end=window_end,
            )
        if "spy" in marks:
            gen["profile"] = await self.finish_py_spy(marks["spy"])
        gen.update(delivered(marks))
        gen["cpu"] = self.cpu(marks["cpu0"], marks["cpu1"], gen, gen["ok_measure"])
        gen["redis_calls"] = redis_per_message(marks, gen["ok_measure"])
        return gen

    async def latency(
        self, target: str, server: Server, tally: Tally, probe: CpuProbe, rate: float
    ) -> dict[str, Any]:
        marks: dict[str, Any] = {}
        window_start, window_end = self.window_marks(
            marks, target, server, tally, probe, phase="latency", seconds=self.o.lat_duration
        )

        before = len(tally.latencies)
        gen = await self.loadgen(
            server,
            ["--mode=open", f"--rate={rate:.3f}", f"--connections={self.o.open_connections}"],
            tag=f"{self.run_id}{target}",
            warmup=self.o.lat_warmup,
            duration=self.o.lat_duration,
            window_start=window_start,
            window_end=window_end,
        )
        if "spy" in marks:
            gen["profile"] = await self.finish_py_spy(marks["spy"])
        accepted: list[tuple[str, float]] = gen.pop("accepted")
        gen["tail_wait_ended"] = await self.wait_delivered(
            lambda: all(mid in tally.seen for mid, _ in accepted),
            None if target == "b" else server,
            self.o.tail_timeout,
        )
        gen.update(delivered(marks))
        latencies = tally.latencies[before:]
        gen["items_received"] = len(latencies)
        gen["e2e_latency_ms"] = percentiles_ms(latencies)
        every: list[float] = []
        gen["folded"] = gen["never_received"] = 0
        for mid, due in accepted:
            seen = tally.seen.get(mid)
            if seen is None:
                gen["never_received"] += 1
                continue
            every.append(seen - due)
            gen["folded"] += mid not in tally.own
        gen["e2e_every_message_ms"] = percentiles_ms(every)
        gen["cpu"] = self.cpu(marks["cpu0"], marks["cpu1"], gen, gen["ok_measure"])
        gen["redis_calls"] = redis_per_message(marks, gen["ok_measure"])
        return gen

    @staticmethod
    async def wait_delivered(
        done: Callable[[], bool], server: Server | None, timeout_s: float
    ) -> str:
        """Until ``done()`` ("all"); or, for omniroute (``server``), until its backlog and
        agent queue stay empty ("queues empty": what is missing was folded into items
        already delivered, or lost); "timeout" when ``timeout_s`` passed first."""
        empty = 0
        for _ in range(max(1, round(timeout_s / POLL_S))):
            if done():
                return "all"
            if server is not None:
                empty = empty + 1 if await queue_empty(server) else 0
                if empty >= 3:
                    return "queues empty"
            await asyncio.sleep(POLL_S)  # polling two sources: the tally and the daemon
        return "all" if done() else "timeout"

    # --- load generators -------------------------------------------------------------

    async def loadgen(
        self,
        server: Server,
        mode: list[str],
        *,
        tag: str,
        warmup: float,
        duration: float,
        window_start: Callable[[], Awaitable[None]],
        window_end: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        start_at = time.monotonic() + 2.0  # the generator imports and connects meanwhile
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BENCH / "loadgen.py"),
            *mode,
            f"--port={server.port}",
            f"--token={TOKEN}",
            f"--warmup={warmup}",
            f"--duration={duration}",
            f"--start-at={start_at}",
            f"--run={tag}",
            f"--customers={self.o.customers}",
            stdout=asyncio.subprocess.PIPE,
        )
        comm = asyncio.create_task(proc.communicate())
        await asyncio.sleep(start_at + warmup - time.monotonic())
        await window_start()
        await asyncio.sleep(start_at + warmup + duration - time.monotonic())
        await window_end()
        out, _ = await asyncio.wait_for(comm, duration + warmup + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed ({proc.returncode})")
        result: dict[str, Any] = json.loads(out)
        result["tool"] = "python"
        result["generator_cpu_s"] = result.pop("cpu_s")
        return result

    async def wrk(
        self,
        server: Server,
        tag: str,
        window_start: Callable[[], Awaitable[None]],
        window_end: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        templates = self.workdir / "templates.txt"
        if not templates.exists():
            write_templates(
                templates, run=self.run_id, customers=self.o.customers, seed=1, count=20000
            )
        warm = await self._wrk_once(server, templates, f"{tag}-sw", self.o.warmup)
        await window_start()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = await self._wrk_once(server, templates, f"{tag}-sm", self.o.duration)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        await window_end()
        duration_s = run["duration_us"] / 1e6
        ok = run["requests"] - run["errors"]["status"]
        failures = sum(run["errors"].values())
        return {
            "tool": "wrk",
            "mode": "closed",
            "connections": self.o.connections,
            "duration_s": round(duration_s, 3),
            "throughput": ok / duration_s,
            "ok_measure": ok,
            "ok_total": ok + warm["requests"] - warm["errors"]["status"],
            "statuses": {"2xx": ok, "non-2xx": run["errors"]["status"]},
            "errors": [f"wrk socket errors: {run['errors']}"] if failures else [],
            "post_latency_ms": {k: round(v / 1000, 2) for k, v in run["latency_us"].items()},
            "generator_cpu_s": round(
                after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 3
            ),
        }

    async def _wrk_once(
        self, server: Server, templates: Path, tag: str, seconds: float
    ) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            "wrk",
            "-t1",
            f"-c{self.o.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=10s",
            "-s",
            str(BENCH / "wrk_post.lua"),
            server.url,
            "--",
            str(templates),
            tag,
            "/v1/messages",
            TOKEN,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
        found = re.search(rb"^BENCH_JSON (.*)$", out, re.MULTILINE)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode()[-1000:]}")
        result: dict[str, Any] = json.loads(found.group(1))
        return result

    # --- CPU and profiling -------------------------------------------------------------

    @staticmethod
    def cpu(
        first: CpuSnapshot, last: CpuSnapshot, gen: dict[str, Any], messages: int
    ) -> dict[str, Any]:
        used = CpuProbe.usage(first, last)
        ours = sum(v for k, v in used.items() if k not in ("machine", "wall"))
        used["generator"] = gen["generator_cpu_s"]
        used["other"] = round(max(0.0, used["machine"] - ours - used["generator"]), 3)
        wall = max(1e-9, used["wall"])
        per_message_us = {
            k: round(v / max(1, messages) * 1e6, 1)
            for k, v in used.items()
            if k not in ("wall", "machine", "other")
        }
        return {
            "seconds": used,
            "cores": {k: round(v / wall, 2) for k, v in used.items() if k != "wall"},
            "us_per_message": per_message_us,
        }

    async def start_py_spy(self, name: str, pid: int, seconds: float) -> tuple[Any, Path, str]:
        out = self.workdir / f"profile-{name}.txt"
        assert self.o.py_spy is not None
        proc = await asyncio.create_subprocess_exec(
            self.o.py_spy,
            "record",
            f"--pid={pid}",
            f"--duration={max(1, round(seconds))}",
            "--rate=200",
            "--format=raw",
            "--nonblocking",
            f"--output={out}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return proc, out, name

    async def finish_py_spy(self, spy: tuple[Any, Path, str]) -> dict[str, Any]:
        proc, out, name = spy
        await asyncio.wait_for(proc.wait(), max(self.o.duration, self.o.lat_duration) + 30)
        if not out.exists():
            return {"error": "py-spy wrote no profile"}
        RESULTS.mkdir(exist_ok=True)
        kept = RESULTS / f"{self.run_id}-{name}-pyspy.txt"
        shutil.copy(out, kept)
        return {"raw": str(kept.relative_to(REPO)), **top_functions(out)}


def redis_per_message(marks: dict[str, Any], messages: int) -> dict[str, Any] | None:
    """Redis commands per accepted message in the window (all clients: on a shared
    server, other work shows up here too)."""
    if "redis0" not in marks:
        return None
    calls = calls_between(marks["redis0"], marks["redis1"])
    per = max(1, messages)
    return {
        "total_per_message": round(sum(calls.values()) / per, 2),
        "per_message": {name: round(n / per, 3) for name, n in list(calls.items())[:8]},
    }


def delivered(marks: dict[str, Any]) -> dict[str, float]:
    """Items and messages (an item's message and those folded into its history) the
    consumer received per second between the window marks."""
    seconds = max(1e-9, marks["cpu1"].at - marks["cpu0"].at)
    (items0, messages0), (items1, messages1) = marks["seen0"], marks["seen1"]
    return {
        "delivered_per_s": (messages1 - messages0) / seconds,
        "delivered_items_per_s": (items1 - items0) / seconds,
    }


async def queue_empty(server: Server) -> bool:
    state = await queue_state(server)
    queues = state.get("queues") if isinstance(state, dict) else None
    if not queues:  # an error answer, or no answer
        return False
    return all(q.get("backlog") == 0 and q.get("ready") == 0 for q in queues)


async def queue_state(server: Server) -> Any:
    """omniroute's own view of its queues (``GET /v1/queues``), for the record."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{server.url}/v1/queues", headers=headers) as resp,
        ):
            return {"status": resp.status, **await resp.json()}
    except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
        return repr(exc)


def top_functions(path: Path, limit: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    own_by_file: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        own_by_file[frames[-1].rpartition(" (")[2].rstrip(")")] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"samples": 0}
    share = lambda c: round(100 * c / total, 1)  # noqa: E731
    return {
        "samples": total,
        "self_pct": [(f, share(c)) for f, c in own.most_common(limit)],
        "self_pct_by_file": [(f, share(c)) for f, c in own_by_file.most_common(limit)],
        "inclusive_pct": [(f, share(c)) for f, c in inclusive.most_common(limit * 2)],
    }


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``func (module.py)``: lines merged."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})"


# --- report ----------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".0f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        return format(value, spec)
    return str(value)


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    cols = [t for t in ("a", "b", "c") if t in results]

    def row(label: str, get: Callable[[dict[str, Any]], Any], spec: str = ".0f") -> str:
        cells = []
        for t in cols:
            try:
                cells.append(_fmt(get(results[t]), spec))
            except (KeyError, TypeError):
                cells.append("-")
        return f"{label:<44}" + "".join(f"{c:>16}" for c in cells)

    head = f"{'':<44}" + "".join(f"{'(' + t + ')':>16}" for t in cols)
    names = f"{'':<44}" + "".join(
        f"{n:>16}"
        for n in (["omni redis+amqp", "naive ref", "omni embedded"][ord(t) - 97] for t in cols)
    )
    s, lat = "saturation", "latency"
    return [
        head,
        names,
        "-" * len(head),
        row("saturation: msgs/s (POST→2xx)", lambda r: r[s]["throughput"]),
        row("  POST→2xx p50 ms", lambda r: r[s]["post_latency_ms"]["p50"], ".1f"),
        row("  POST→2xx p99 ms", lambda r: r[s]["post_latency_ms"]["p99"], ".1f"),
        row("  delivered to consumer, msgs/s", lambda r: r[s]["delivered_per_s"]),
        row("  delivered to consumer, items/s", lambda r: r[s]["delivered_items_per_s"]),
        row("  backlog drain after, s", lambda r: r["drain"]["seconds"], ".1f"),
        row("  server CPU µs/msg", lambda r: r[s]["cpu"]["us_per_message"]["server"]),
        row("  redis commands/msg", lambda r: r[s]["redis_calls"]["total_per_message"], ".2f"),
        row("  redis CPU µs/msg", lambda r: r[s]["cpu"]["us_per_message"]["redis"]),
        row("  rabbitmq CPU µs/msg", lambda r: r[s]["cpu"]["us_per_message"]["rabbitmq"]),
        row("  consumer CPU µs/msg", lambda r: r[s]["cpu"]["us_per_message"]["consumer"]),
        row("  generator CPU µs/msg", lambda r: r[s]["cpu"]["us_per_message"]["generator"]),
        row("  machine busy, cores of 2", lambda r: r[s]["cpu"]["cores"]["machine"], ".2f"),
        row("  other processes, cores (noise)", lambda r: r[s]["cpu"]["cores"]["other"], ".2f"),
        row("half rate: offered msgs/s", lambda r: r[lat]["rate"]),
        row("  accepted msgs/s", lambda r: r[lat]["throughput"]),
        row("  delivered to consumer, msgs/s", lambda r: r[lat]["delivered_per_s"]),
        row("  delivered to consumer, items/s", lambda r: r[lat]["delivered_items_per_s"]),
        row(
            "  on a fresh instance (backlog undrained)",
            lambda r: "yes" if r["latency_on_fresh_instance"] else "no",
        ),
        row("  POST→consumer p50 ms", lambda r: r[lat]["e2e_latency_ms"]["p50"], ".1f"),
        row("  POST→consumer p90 ms", lambda r: r[lat]["e2e_latency_ms"]["p90"], ".1f"),
        row("  POST→consumer p99 ms", lambda r: r[lat]["e2e_latency_ms"]["p99"], ".1f"),
        row("  POST→consumer max ms", lambda r: r[lat]["e2e_latency_ms"]["max"], ".1f"),
        row("  POST→2xx p99 ms", lambda r: r[lat]["post_latency_ms"]["p99"], ".1f"),
        row(
            "  every message, folded ones too: p50 ms",
            lambda r: r[lat]["e2e_every_message_ms"]["p50"],
            ".1f",
        ),
        row(
            "  every message, folded ones too: p99 ms",
            lambda r: r[lat]["e2e_every_message_ms"]["p99"],
            ".1f",
        ),
        row("  messages folded into a later item", lambda r: r[lat]["folded"]),
        row("  messages never received", lambda r: r[lat]["never_received"]),
        row("  server CPU µs/msg", lambda r: r[lat]["cpu"]["us_per_message"]["server"]),
        row("  redis commands/msg", lambda r: r[lat]["redis_calls"]["total_per_message"], ".2f"),
        row("  machine busy, cores of 2", lambda r: r[lat]["cpu"]["cores"]["machine"], ".2f"),
        row("  other processes, cores (noise)", lambda r: r[lat]["cpu"]["cores"]["other"], ".2f"),
    ]


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def sat(t: str) -> float | None:
        return results[t]["saturation"]["throughput"] if t in results else None

    def p99(t: str) -> float | None:
        return results[t]["latency"]["e2e_latency_ms"]["p99"] if t in results else None

    a, b, c = sat("a"), sat("b"), sat("c")
    if a is not None and b:
        ratio = a / b
        checks.append(
            {
                "target": f"(a)/(b) throughput ≥ {TARGET_RATIO}",
                "value": round(ratio, 2),
                "met": ratio >= TARGET_RATIO,
            }
        )
        delivered_a = results["a"]["saturation"]["delivered_per_s"]
        delivered_b = results["b"]["saturation"]["delivered_per_s"]
        if delivered_b:
            checks.append(
                {
                    "target": "(a)/(b) messages delivered to the consumer at saturation "
                    "(for information)",
                    "value": round(delivered_a / delivered_b, 2),
                    "met": None,
                }
            )
    for t in ("a", "c"):
        value = p99(t)
        if t in results:
            checks.append(
                {
                    "target": f"({t}) p99 POST→consumer ≤ {TARGET_P99_MS:.0f} ms at half rate",
                    "value": value,
                    "met": value is not None and value <= TARGET_P99_MS,
                }
            )
    if c is not None:
        checks.append(
            {
                "target": f"(c) saturation ≥ {TARGET_EMBEDDED:.0f} msgs/s",
                "value": round(c),
                "met": c >= TARGET_EMBEDDED,
            }
        )
    return checks


def notes(results: dict[str, dict[str, Any]]) -> list[str]:
    """What a reader must know to trust (or not) the figures."""
    out = []
    for t, r in results.items():
        sat, lat = r["saturation"], r["latency"]
        if sat["delivered_per_s"] < 0.9 * sat["throughput"]:
            out.append(
                f"({t}) at saturation the consumer received {sat['delivered_per_s']:.0f}/s while "
                f"{sat['throughput']:.0f}/s were accepted: the backlog grows (dispatch is slower "
                "than ingest), so the saturation figure is ingest only"
            )
        if r["latency_on_fresh_instance"]:
            out.append(
                f"({t}) the saturation backlog did not drain in time; latency was measured on a "
                "fresh instance (empty store)"
            )
        every, items = lat["e2e_every_message_ms"]["p99"], lat["e2e_latency_ms"]["p99"]
        if every is not None and items is not None and every > 1.1 * items:
            out.append(
                f"({t}) counting the {lat['folded']} messages folded into later items, p99 is "
                f"{every:.1f} ms instead of {items:.1f} ms"
            )
        if lat["never_received"]:
            why = (
                f"still queued when the wait ended after {lat['tail_wait_ended']}"
                if lat["tail_wait_ended"] == "timeout"
                else "lost, or folded beyond the history an item carries"
            )
            out.append(
                f"({t}) {lat['never_received']} accepted messages never reached the consumer "
                f"(neither as an item's message nor in its history): {why}"
            )
        if lat["delivered_per_s"] < 0.95 * lat["rate"]:
            out.append(
                f"({t}) at half rate the consumer received {lat['delivered_per_s']:.0f}/s of "
                f"{lat['rate']:.0f}/s offered: latency grows for as long as the run lasts"
            )
        for phase in ("saturation", "latency"):
            other = r[phase]["cpu"]["cores"]["other"]
            if other > 0.25:
                out.append(
                    f"({t}) other processes on the machine used {other:.2f} cores during the "
                    f"{phase} window: the figures are noisy, run again when the machine is quiet"
                )
    return out


def environment() -> dict[str, Any]:
    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(  # noqa: S603 — fixed argv
                ["git", *args],  # noqa: S607
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            return done.stdout.strip()
        return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "router_changes_uncommitted": bool(git("status", "--porcelain", "--", "router")),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }


async def bench(options: Options) -> int:
    run_id = f"bench-{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
    started = datetime.now(UTC)
    env = environment()
    print(
        f"omniroute bench {run_id}: targets {','.join(options.targets)}, saturation by "
        f"{options.tool} ({options.connections} connections, {options.warmup:g}+"
        f"{options.duration:g} s), latency open loop ({options.lat_warmup:g}+"
        f"{options.lat_duration:g} s), load average {env['loadavg_at_start'][0]:.2f}",
        flush=True,
    )
    b = Bench(options, run_id, workdir)
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    try:
        for target in options.targets:
            try:
                results[target] = await b.measure(target)
            except (RuntimeError, OSError, TimeoutError) as exc:
                failures[target] = str(exc)
                print(f"  FAILED: {exc}", flush=True)
    finally:
        cleaned = await _cleanup(b, options)
        shutil.rmtree(workdir, ignore_errors=True)
    checks = targets(results)
    print()
    print("\n".join(table(results)))
    print()
    for check in checks:
        verdict = {True: "MET    ", False: "NOT MET", None: "INFO   "}[check["met"]]
        print(f"{verdict}  {check['target']}: {check['value']}")
    for target, error in failures.items():
        print(f"FAILED   {TITLES[target]}: {error.splitlines()[0] if error else ''}")
    caveats = notes(results)
    if caveats:
        print("\nnotes:")
        for caveat in caveats:
            print(f"- {caveat}")
    profiles = {
        (t, phase): r[phase]["profile"]
        for t, r in results.items()
        for phase in ("saturation", "latency")
        if "profile" in r[phase]
    }
    for (target, phase), profile in profiles.items():
        samples = profile.get("samples", 0)
        print(f"\nprofile of {TITLES[target]}, {phase} window ({samples} samples)")
        for name, pct in profile.get("self_pct", [])[:15]:
            print(f"  self {pct:5.1f}%  {name}")
        for name, pct in profile.get("self_pct_by_file", [])[:10]:
            print(f"  self {pct:5.1f}%  {name} (whole file)")
        router = [(n, p) for n, p in profile.get("inclusive_pct", []) if "(router/" in n]
        for name, pct in router[3:15]:  # past run/main/_serve of router/cli.py
            print(f"  incl {pct:5.1f}%  {name}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "run_id": run_id,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "environment": env,
        "options": options.__dict__,
        "targets": checks,
        "notes": caveats,
        "results": results,
        "failures": failures,
        "cleanup": cleaned,
    }
    out.write_text(json.dumps(document, indent=2, default=str))
    print(f"\nwrote {out.relative_to(REPO)}")
    return 1 if failures else 0


async def _cleanup(b: Bench, options: Options) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if {"a", "b"} & set(options.targets):
        try:
            cleaned["redis_keys"] = await cleanup_redis(options.redis_url, b.run_id)
            cleaned["rabbitmq"] = await cleanup_rabbitmq(
                options.amqp_url,
                b.run_id,
                queues=[
                    f"{b.prefix(i)}.{name}"
                    for i in b.instances
                    for name in (f"queue.{QUEUE}", "inbound", "dead")
                ],
                exchanges=[
                    f"{b.prefix(i)}.{name}"
                    for i in b.instances
                    for name in ("events", "inbound", "dead")
                ],
            )
        except Exception as exc:  # report it: the figures are still worth writing
            cleaned["error"] = repr(exc)
            print(f"clean-up failed: {exc!r} (keys and queues start with {b.run_id})")
    return cleaned


def main() -> None:
    options = Options.parse()
    sys.exit(asyncio.run(bench(options)))


if __name__ == "__main__":
    main()
