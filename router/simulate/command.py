"""``omniroute simulate``: generate a day of traffic, or replay traffic against agents
under the real policy and the FIFO and strict-priority baselines, and print the table."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, time
from pathlib import Path
from typing import Any, TextIO

from router.errors import ConfigError, InputError
from router.simulate.adapter import load_router
from router.simulate.agents import AgentsSpec, load_agents
from router.simulate.generate import generate
from router.simulate.progress import NoProgress, Progress
from router.simulate.report import format_report, to_json
from router.simulate.simulation import ORDERINGS, default_day, simulate
from router.simulate.traffic import TrafficRecord, read_traffic, write_traffic

DEFAULT_DAY = date(2026, 3, 10)


def add_parser(sub: Any) -> None:
    """The ``simulate`` subcommand on the CLI's subparsers."""
    p = sub.add_parser(
        "simulate",
        help="replay or generate a day of traffic against agents and a routing policy",
        description=__doc__,
    )
    p.add_argument("--traffic", type=Path, help="JSONL traffic to replay")
    p.add_argument("--agents", type=Path, required=True, help="agents spec (TOML or JSON)")
    p.add_argument("--policy", type=Path, help="omniroute config with the routing policy")
    p.add_argument("--generate", action="store_true", help="generate a realistic day")
    p.add_argument("--out", type=Path, help="with --generate: write the traffic here")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--date", type=date.fromisoformat, help="the simulated day (YYYY-MM-DD)")
    p.add_argument("--overload", type=float, default=1.0, help="arrivals / capacity at peak")
    p.add_argument("--overload-hours", type=float, default=2.0)
    p.add_argument("--overload-at", type=time.fromisoformat, help="local HH:MM (default peak)")
    p.add_argument("--load", type=float, default=0.85, help="busiest normal hour's load")
    p.add_argument("--orderings", default=",".join(ORDERINGS), help="comma-separated")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--progress", action="store_true", help="progress bar even if not a TTY")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except (ConfigError, InputError) as exc:
        print(f"omniroute simulate: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    orderings = tuple(o.strip() for o in args.orderings.split(",") if o.strip())
    unknown = [o for o in orderings if o not in ORDERINGS]
    if unknown or not orderings:
        raise InputError(f"--orderings: unknown {unknown} (known: {', '.join(ORDERINGS)})")
    if args.generate == (args.traffic is not None):
        raise InputError("give exactly one of --traffic FILE and --generate")
    spec = load_agents(args.agents)
    records = _traffic(args, spec)
    if args.policy is None:
        if not args.generate:
            raise InputError("--policy CONFIG is needed to simulate")
        return 0
    router = load_router(args.policy)
    day = args.date or default_day(records, spec)
    total = len(records) * (1 + len(orderings))
    show = args.progress or sys.stderr.isatty()
    ticker = Progress(total, sys.stderr) if show else NoProgress()
    outcome = simulate(
        records, spec, router, day=day, seed=args.seed, orderings=orderings, ticker=ticker
    )
    ticker.close()
    for line in outcome.rejected[:10]:
        print(f"skipped {line}", file=sys.stderr)
    if args.json:
        body = {"orderings": to_json(outcome.summaries), "rejected": len(outcome.rejected)}
        print(json.dumps(body, indent=2))
    else:
        print(format_report(outcome.summaries, max_wait_s=router.max_wait_s))
    return 0


def _traffic(args: argparse.Namespace, spec: AgentsSpec) -> list[TrafficRecord]:
    if not args.generate:
        records: list[TrafficRecord] = read_traffic(args.traffic)
        return records
    records = generate(
        spec,
        day=args.date or DEFAULT_DAY,
        seed=args.seed,
        overload=args.overload,
        overload_hours=args.overload_hours,
        overload_start=args.overload_at,
        load=args.load,
    )
    if args.out is not None:
        with args.out.open("w", encoding="utf-8") as out:
            _write(records, out)
    elif args.policy is None:
        _write(records, sys.stdout)
    return records


def _write(records: list[TrafficRecord], out: TextIO) -> None:
    count = write_traffic(records, out)
    print(f"generated {count} messages", file=sys.stderr)
