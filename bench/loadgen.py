"""The load generator: a lean HTTP/1.1 client on raw asyncio transports.

Run as its own process (``run.py`` starts it), so its CPU is not shared with the
consumer's event loop. Two modes, both over keep-alive connections opened before the
start time:

- ``closed`` (saturation): each of ``--connections`` connections sends the next request
  as soon as the previous answer arrived. Throughput counts the 2xx answers that arrive
  inside the measurement window (after the warm-up).
- ``open`` (latency): requests are scheduled at a fixed rate, ``t0 + i / rate``,
  whatever the server's answers do; each is sent on an idle connection, or waits for
  one (counted as ``queued``). The scheduled time, not the actual send time, goes into
  the message as ``bench_t``, so a generator or server that falls behind shows up in
  the latency instead of hiding it (no coordinated omission).

There is no HTTP library in the request path: a request is one pre-formatted byte
string written to the transport, and an answer is parsed as far as the status line and
``Content-Length``. The result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from workload import PHASE_MEASURE, PHASE_SATURATION, PHASE_WARMUP, RequestBuilder, Workload

HOST = "127.0.0.1"


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, on_answer: Callable[[Connection, int, bytes], None]) -> None:
        self._on_answer = on_answer
        self._buf = bytearray()
        self._need = -1
        self._status = 0
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        """``time.perf_counter()`` when the request was written."""
        self.scheduled = 0.0
        """``time.monotonic()`` when the request was due (open mode)."""
        self.measured = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes, *, scheduled: float = 0.0, measured: bool = False) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.scheduled = scheduled
        self.measured = measured
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            if self._need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                self._status = int(head[9:12])
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
                stop = head.find(b"\r\n", at + 2)
                self._need = int(head[at + 17 : stop if stop > 0 else end])
                del buf[: end + 4]
            if len(buf) < self._need:
                return
            body = bytes(buf[: self._need])
            del buf[: self._need]
            self._need = -1
            self._on_answer(self, self._status, body)


class Recorder:
    """Counts answers, and POST → answer latencies of the measured requests."""

    def __init__(self) -> None:
        self.latencies: array[float] = array("d")
        self.accepted: list[tuple[str, float]] = []
        """(message_id, due time) of the measured 2xx answers, when ``keep_ids``."""
        self.statuses: Counter[int] = Counter()
        self.ok_total = 0
        self.ok_measure = 0
        self.errors: list[str] = []

    def record(
        self, status: int, body: bytes, latency: float, *, measured: bool, due: float = 0.0
    ) -> None:
        ok = 200 <= status < 300
        self.ok_total += ok
        if not ok and len(self.errors) < 5:
            self.errors.append(f"{status}: {body[:300].decode(errors='replace')}")
        if measured:
            self.statuses[status] += 1
            self.ok_measure += ok
            self.latencies.append(latency)
            if ok and due:
                self.accepted.append((message_id(body), due))

    def summary(self) -> dict[str, Any]:
        return {
            "ok_total": self.ok_total,
            "ok_measure": self.ok_measure,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "post_latency_ms": percentiles_ms(self.latencies),
        }


def message_id(answer: bytes) -> str:
    """``message_id`` from a 2xx answer (omniroute's and naive.py's), without a JSON parse."""
    at = answer.find(b'"message_id"')
    if at < 0:
        return ""
    start = answer.find(b'"', answer.find(b":", at) + 1) + 1
    return answer[start : answer.find(b'"', start)].decode()


def percentiles_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of latencies in seconds, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": pick(1.0)}


async def _connect(
    count: int, port: int, on_answer: Callable[[Connection, int, bytes], None]
) -> list[Connection]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(count):
        _, conn = await loop.create_connection(lambda: Connection(on_answer), HOST, port)
        conns.append(conn)
    return conns


async def _sleep_until(at: float) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _finish(
    conns: list[Connection], drained: asyncio.Event, in_flight: Callable[[], int], grace_s: float
) -> int:
    """Wait up to ``grace_s`` for the answers still due, close; returns how many never came."""
    if in_flight():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), grace_s)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return in_flight()


async def closed_loop(args: argparse.Namespace, builder: RequestBuilder) -> dict[str, Any]:
    rec = Recorder()
    measure_from = args.start_at + args.warmup
    stop_at = measure_from + args.duration
    seq = 0
    in_flight = 0
    drained = asyncio.Event()

    def on_answer(conn: Connection, status: int, body: bytes) -> None:
        nonlocal seq, in_flight
        now = time.monotonic()
        latency = time.perf_counter() - conn.sent_at
        rec.record(status, body, latency, measured=measure_from <= now < stop_at)
        if now < stop_at:
            seq += 1
            conn.send(builder.request(seq, PHASE_SATURATION, now))
        else:
            in_flight -= 1
            if not in_flight:
                drained.set()

    conns = await _connect(args.connections, args.port, on_answer)
    await _sleep_until(args.start_at)
    for conn in conns:
        seq += 1
        in_flight += 1
        conn.send(builder.request(seq, PHASE_SATURATION, time.monotonic()))
    await _sleep_until(measure_from)
    cpu0 = time.process_time()
    await _sleep_until(stop_at)
    cpu_s = time.process_time() - cpu0
    lost = await _finish(conns, drained, lambda: in_flight, args.grace)
    return {
        "mode": "closed",
        "connections": args.connections,
        "duration_s": args.duration,
        "sent_total": seq,
        "throughput": rec.ok_measure / args.duration,
        "cpu_s": cpu_s,
        "unanswered": lost,
        **rec.summary(),
    }


async def open_loop(args: argparse.Namespace, builder: RequestBuilder) -> dict[str, Any]:
    rec = Recorder()
    rate: float = args.rate
    t0: float = args.start_at
    total = int((args.warmup + args.duration) * rate)
    first_measured = int(args.warmup * rate)
    idle: list[Connection] = []
    waiting: deque[tuple[bytes, float, bool]] = deque()
    queued = 0
    max_waiting = 0
    sending = True
    drained = asyncio.Event()

    def on_answer(conn: Connection, status: int, body: bytes) -> None:
        latency = time.monotonic() - conn.scheduled  # from when it was due, not when sent
        rec.record(status, body, latency, measured=conn.measured, due=conn.scheduled)
        if waiting:
            request, scheduled, measured = waiting.popleft()
            conn.send(request, scheduled=scheduled, measured=measured)
        else:
            idle.append(conn)
            if not sending and len(idle) == len(conns):
                drained.set()

    conns = await _connect(args.connections, args.port, on_answer)
    idle.extend(conns)
    await _sleep_until(t0)
    cpu0 = 0.0
    i = 0
    while i < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        while i < due:
            if i == first_measured:
                cpu0 = time.process_time()
            scheduled = t0 + i / rate
            measured = i >= first_measured
            request = builder.request(i, PHASE_MEASURE if measured else PHASE_WARMUP, scheduled)
            if idle:
                idle.pop().send(request, scheduled=scheduled, measured=measured)
            else:
                waiting.append((request, scheduled, measured))
                queued += 1
                max_waiting = max(max_waiting, len(waiting))
            i += 1
        await _sleep_until(t0 + i / rate)
    cpu_s = time.process_time() - cpu0
    sending = False
    lost = await _finish(conns, drained, lambda: len(conns) - len(idle) + len(waiting), args.grace)
    return {
        "mode": "open",
        "connections": args.connections,
        "rate": rate,
        "duration_s": args.duration,
        "sent_total": total,
        "sent_measure": total - first_measured,
        "throughput": rec.ok_measure / args.duration,
        "cpu_s": cpu_s,
        "queued": queued,
        "max_waiting": max_waiting,
        "unanswered": lost,
        "accepted": rec.accepted,
        **rec.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/messages")
    parser.add_argument("--token", default="bench")
    parser.add_argument("--mode", choices=("closed", "open"), required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0, help="open mode: requests/s")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--start-at", type=float, required=True, help="time.monotonic() value")
    parser.add_argument("--run", required=True, help="unique tag for external ids")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grace", type=float, default=10.0, help="wait for late answers (s)")
    args = parser.parse_args()
    workload = Workload(run=args.run, customers=args.customers, seed=args.seed)
    builder = RequestBuilder(workload, host=HOST, port=args.port, path=args.path, token=args.token)
    run = closed_loop if args.mode == "closed" else open_loop
    result = asyncio.run(run(args, builder))
    result["pid"] = os.getpid()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
