"""``omniroute``: serve, check-config, connectors, simulate, agent."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

from aiohttp import web

from router import __version__, agent_cli, connectors_cli
from router import logging as logs
from router.errors import ConfigError
from router.settings import Settings, describe, load
from router.simulate import command as simulate


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omniroute", description=__doc__)
    parser.add_argument("--version", action="version", version=f"omniroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", type=Path, help="TOML file (default: $OMNIROUTE_CONFIG)")
    serve.set_defaults(handler=_serve)
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check)
    connectors_cli.add_parser(sub)
    simulate.add_parser(sub)
    agent_cli.add_parser(sub)
    return parser


def _settings(path: Path | None) -> Settings | None:
    try:
        return load(path)
    except ConfigError as exc:
        print(f"omniroute: {exc}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    settings = _settings(args.file)
    if settings is None:
        return 2
    print(json.dumps(describe(settings), indent=2))
    print(f"{args.file}: ok", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    if settings is None:
        return 2
    logs.configure(settings.log.level, settings.log.format)
    from router.app import create_app

    _tune_gc()
    web.run_app(
        create_app(settings),
        host=settings.http.host,
        port=settings.http.port,
        shutdown_timeout=settings.http.shutdown_timeout_s,
        access_log=None,
        print=None,
        handle_signals=True,
    )
    return 0


def _tune_gc() -> None:
    """The daemon allocates many short-lived objects per message and few cycles: collect
    the youngest generation less often, and leave start-up's objects out of collections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run() -> None:
    # Until ``serve`` configures logging from the settings, warnings go to stderr: the
    # commands that print JSON (check-config, connectors --json) keep stdout clean.
    logs.configure("warning", "console", cache=False)
    sys.exit(main())
