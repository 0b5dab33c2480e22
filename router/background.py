"""A background loop that survives its own failures: the timer loop and the lease
sweeper each run one step, wait, and run again until stopped.

A stop flag, not cancellation: on Python 3.11 ``wait_for`` can swallow a cancel that
lands as its inner wait completes, and the loop would run on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from router.errors import BackendUnavailable

log = structlog.get_logger("router.background")

Step = Callable[[], Awaitable[float]]
"""Runs once; returns how many seconds to wait before the next run."""


class Loop:
    def __init__(self, name: str, step: Step, *, retry_s: float) -> None:
        self._name = name
        self._step = step
        self._retry_s = retry_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            wait_s = self._retry_s
            try:
                wait_s = await self._step()
            except BackendUnavailable as exc:  # the backend returns by itself: try again
                log.warning("background.unavailable", loop=self._name, error=exc.message)
            except Exception:  # a bug must not stop the loop
                log.exception("background.failed", loop=self._name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait_s)
