"""Servers under test as subprocesses, their clean-up in Redis and RabbitMQ, and CPU
accounting from ``/proc``.

Each server listens on a free loopback port, is ready when its health URL answers 200,
and stops on SIGTERM (SIGKILL after a grace period). Everything the bench creates in
Redis carries the run's key prefix and everything in RabbitMQ the run's name prefix;
``cleanup_redis`` and ``cleanup_rabbitmq`` delete exactly those (never FLUSHDB).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import redis.asyncio as aioredis

HOST = "127.0.0.1"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process; ``log_path`` gets its stdout and stderr."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        port: int,
        ready_path: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._argv = argv
        self._ready_path = ready_path
        self._env = dict(env) if env is not None else None
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self._argv, env=self._env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + self._ready_path) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)  # polling a process that is starting up
        await self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    async def stop(self, grace_s: float = 20.0) -> int | None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            process.kill()
            return await process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - chars))
                return log.read().decode(errors="replace")
        except OSError:
            return "(no log)"


async def cleanup_redis(url: str, prefix: str) -> int:
    """Delete every key containing ``prefix``; returns how many."""
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"*{prefix}*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def redis_calls(url: str) -> dict[str, int]:
    """Calls per command since the Redis server started (``INFO commandstats``)."""
    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def calls_between(first: dict[str, int], last: dict[str, int]) -> dict[str, int]:
    calls = {name: n - first.get(name, 0) for name, n in last.items()}
    return {name: n for name, n in sorted(calls.items(), key=lambda kv: -kv[1]) if n > 0}


async def _rabbitmqctl_names(what: str) -> list[str] | None:
    """Names from ``rabbitmqctl list_<what>``, or None without the CLI."""
    if shutil.which("rabbitmqctl") is None:
        return None
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        f"list_{what}",
        "name",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    return [line.strip() for line in out.decode().splitlines() if line.strip()]


async def cleanup_rabbitmq(
    url: str, prefix: str, *, queues: list[str], exchanges: list[str]
) -> list[str]:
    """Delete the queues and exchanges named ``prefix...``: those ``rabbitmqctl`` lists,
    or without it the ``queues`` and ``exchanges`` given; returns what was deleted."""
    listed_queues = await _rabbitmqctl_names("queues")
    listed_exchanges = await _rabbitmqctl_names("exchanges")
    if listed_queues is not None:
        queues = sorted(q for q in listed_queues if q.startswith(prefix))
    if listed_exchanges is not None:
        exchanges = sorted(e for e in listed_exchanges if e.startswith(prefix))
    deleted = []
    connection = await aio_pika.connect(url)
    try:
        for name in queues:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                await channel.queue_delete(name)
                deleted.append(f"queue {name}")
            with contextlib.suppress(Exception):
                await channel.close()
        for name in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                await channel.exchange_delete(name)
                deleted.append(f"exchange {name}")
            with contextlib.suppress(Exception):
                await channel.close()
    finally:
        await connection.close()
    return deleted


# --- CPU accounting ------------------------------------------------------------------


def _process_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # without guest time, which user already counts
    return (total - idle) / CLOCK_TICK, total / CLOCK_TICK


def find_pids(command: str) -> list[int]:
    """Pids whose ``comm`` is ``command`` (e.g. redis-server, beam.smp)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() == command:
                    pids.append(int(entry))
    return pids


@dataclass
class CpuSnapshot:
    at: float
    processes: dict[str, float]
    machine_busy: float


class CpuProbe:
    """CPU seconds used by named groups of processes and by the whole machine."""

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}

    def snapshot(self) -> CpuSnapshot:
        processes = {
            name: sum(_process_cpu_s(pid) or 0.0 for pid in pids)
            for name, pids in self._groups.items()
        }
        busy, _ = _machine_cpu_s()
        return CpuSnapshot(time.monotonic(), processes, busy)

    @staticmethod
    def usage(first: CpuSnapshot, last: CpuSnapshot) -> dict[str, float]:
        """CPU seconds per group between two snapshots, plus ``machine`` (all busy CPU)
        and ``wall`` (seconds)."""
        used = {
            name: round(last.processes[name] - first.processes[name], 3) for name in first.processes
        }
        used["machine"] = round(last.machine_busy - first.machine_busy, 3)
        used["wall"] = round(last.at - first.at, 3)
        return used
