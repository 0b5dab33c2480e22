"""Micro-benchmark of the embedded store: µs of CPU per message, ingest and claim+settle.

    .venv/bin/python bench/sqlite_store.py [--messages 30000] [--batch 64] [--warmup 20000]

Builds realistic ``IngestRequest``s up front (``workload.py``: 5,000 customers, repeat
contacts, threads; decoded, normalized and decided as the pipeline does), then, on a
fresh file, alternates: ingest one batch, claim what is waiting (up to ``--claim``, with
``history_limit=10``) and settle it, as the daemon's dispatcher does. CPU time is the
whole process's (``time.process_time``: the store's worker thread and the event loop),
so it includes the hand-off to the thread; wall time includes the fsyncs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import PHASE_MEASURE, Workload

from router.backends.sqlite_store import SqliteStore
from router.ids import new_suffix
from router.models import IngestRequest, RoutingContext
from router.pipeline import decode_message, normalize, request
from router.routing import DefaultPolicy


def requests(count: int, seed: int) -> list[IngestRequest]:
    workload = Workload(run="micro", customers=5000, seed=seed)
    policy = DefaultPolicy(queue="default", priority=3, first_response_s=3600)
    built: list[IngestRequest] = []
    for n in range(count):
        message = decode_message(workload.body(b"micro-%d" % n, PHASE_MEASURE, 0.0))
        normalized = normalize(message, received_at=datetime.now(UTC), default_region="ES")
        suffix = new_suffix()
        decision = policy.decide(
            normalized, RoutingContext(), conversation_id=f"con_{suffix}", item_id=f"itm_{suffix}"
        )
        built.append(request(normalized, decision, suffix=suffix))
    return built


async def run(args: argparse.Namespace) -> None:
    todo = requests(args.warmup + args.messages, args.seed)
    gc.freeze()  # the prepared requests are not the store's garbage to collect
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = SqliteStore(Path(tmp) / "omniroute.sqlite3")
        await store.open()
        now = datetime.now(UTC)
        lease = now + timedelta(minutes=5)
        cpu = {"ingest": 0.0, "claim": 0.0, "settle": 0.0}
        wall = dict.fromkeys(cpu, 0.0)
        measured = claimed_total = 0
        for start in range(0, len(todo), args.batch):
            batch = todo[start : start + args.batch]
            measuring = start >= args.warmup
            c0, w0 = time.process_time(), time.perf_counter()
            await store.ingest(batch)
            c1, w1 = time.process_time(), time.perf_counter()
            claimed = await store.claim(
                "default", args.claim, now=now, lease_until=lease, history_limit=10
            )
            c2, w2 = time.process_time(), time.perf_counter()
            await store.settle([c.item.item_id for c in claimed])
            c3, w3 = time.process_time(), time.perf_counter()
            if measuring:
                measured += len(batch)
                claimed_total += len(claimed)
                for key, (a, b, x, y) in {
                    "ingest": (c0, c1, w0, w1),
                    "claim": (c1, c2, w1, w2),
                    "settle": (c2, c3, w2, w3),
                }.items():
                    cpu[key] += b - a
                    wall[key] += y - x
        await store.close()
    print(
        f"{measured} messages in batches of {args.batch}, {claimed_total} claimed "
        f"(claims of up to {args.claim}), after {args.warmup} warm-up messages"
    )
    for key, spent in cpu.items():
        per = claimed_total if key != "ingest" else measured
        print(
            f"  {key:<7} {spent / per * 1e6:7.1f} µs CPU/msg   "
            f"{wall[key] / per * 1e6:7.1f} µs wall/msg"
        )
    total = cpu["ingest"] / measured + (cpu["claim"] + cpu["settle"]) / claimed_total
    print(f"  total   {total * 1e6:7.1f} µs CPU/msg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--warmup", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--claim", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the temporary file goes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
