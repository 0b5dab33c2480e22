"""The inbound policy both brokers share: what happens to a message published to
``omniroute.inbound`` once the pipeline has tried to store it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

from router.errors import InputError, OmnirouteError
from router.ports import Delivery, InboundHandler

log = structlog.get_logger("router.backends.inbound")


async def handle_inbound(
    delivery: Delivery, handler: InboundHandler, *, retry_delay_s: float
) -> None:
    """Run ``handler`` on one inbound delivery and settle it; never raises but
    ``CancelledError`` (then the delivery stays unsettled and the broker redelivers it).

    Returns normally: ack. ``InputError``: reject without requeue (dead-lettered), the
    message can never succeed. Anything else (a store that is down): requeue after
    ``retry_delay_s``, so a failing backend is not hammered in a tight loop.
    """
    try:
        await handler(delivery.body)
    except InputError as exc:
        log.warning("inbound.rejected", code=exc.code, error=exc.message)
        await _settle_quietly(delivery.nack(requeue=False))
    except Exception as exc:  # any other failure of the handler means "retry later"
        log.warning(
            "inbound.retrying",
            error=type(exc).__name__,
            detail=exc.message if isinstance(exc, OmnirouteError) else None,
            redelivered=delivery.redelivered,
            retry_delay_s=retry_delay_s,
        )
        await asyncio.sleep(retry_delay_s)
        await _settle_quietly(delivery.nack(requeue=True))
    else:
        await _settle_quietly(delivery.ack())


async def _settle_quietly(settle: Awaitable[None]) -> None:
    """A settle that fails leaves the message with the broker, which redelivers it."""
    try:
        await settle
    except OmnirouteError as exc:
        log.warning("inbound.settle_failed", error=exc.message)
