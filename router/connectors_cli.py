"""``omniroute connectors``: what is installed (built in, or through the
``omniroute.connectors`` entry point group) and what the configuration turns on."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connectors.base import webhook_url
from connectors.registry import Installed, installed
from router.errors import ConfigError
from router.settings import Settings, load


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "connectors", help="list installed connectors and which ones are configured"
    )
    parser.add_argument("--config", type=Path, help="TOML file (default: $OMNIROUTE_CONFIG)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        settings: Settings | None = load(args.config)
    except ConfigError as exc:
        settings, problems = None, exc.problems
    rows = [row(found, settings) for found in installed().values()]
    if args.json:
        print(json.dumps({"connectors": rows, "problems": problems}, indent=2))
    else:
        print(table(rows))
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
    return 2 if problems or any(r["error"] for r in rows) else 0


def row(found: Installed, settings: Settings | None) -> dict[str, Any]:
    manifest = found.manifest
    configured = settings is not None and found.name in settings.connectors
    public = settings.http.public_url if settings else ""
    webhook = webhook_url(manifest, public) if manifest is not None else None
    return {
        "name": found.name,
        "channel": manifest.channel if manifest else None,
        "title": manifest.title if manifest else None,
        "configured": configured if settings is not None else None,
        "webhook": webhook,
        "target": found.target,
        "error": found.error,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("NAME", "CHANNEL", "CONFIGURED", "WEBHOOK / NOTE")
    lines = [head]
    for r in rows:
        configured = {True: "yes", False: "no", None: "?"}[r["configured"]]
        note = r["error"] or r["webhook"] or "listener / poller / endpoint"
        lines.append((r["name"], r["channel"] or "-", configured, note))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:3])) + "  " + line[3]
        for line in lines
    )
