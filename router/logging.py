"""structlog, configured once at start: JSON when stderr is not a terminal, readable
console output when it is. Context (message id, queue) is bound per message with
contextvars. Info lines never carry message bodies or full identifiers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import msgspec
import structlog


def configure(level: str = "info", fmt: str = "auto", *, cache: bool = True) -> None:
    """Logs to stderr. ``cache=False`` for a configuration that a later call replaces
    (the CLI's, before ``serve`` reads the settings): loggers used before it follow."""
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if json_out
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    factory: Callable[..., structlog.typing.WrappedLogger] = (
        structlog.BytesLoggerFactory(sys.stderr.buffer)
        if json_out
        else structlog.PrintLoggerFactory(sys.stderr)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")


def _json(event: object, **_: object) -> bytes:
    """msgspec's encoder: the log line is on every message's path, so it must be cheap."""
    return msgspec.json.encode(event, enc_hook=repr)
