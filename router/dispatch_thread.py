"""Run the dispatcher on its own event loop, in its own thread, with its own clients.

Under a flood of HTTP requests the main event loop serves every ready callback in
turn, so each await of the dispatcher waits behind dozens of request handlers and its
rounds crawl while the backlog grows. On its own loop the dispatcher's awaits resolve
as soon as the interpreter lets the thread run (the GIL's switch interval, 5 ms),
whatever the HTTP load. Used with the production backends, whose clients are cheap to
open twice; the embedded broker lives in the main loop, so there the dispatcher does too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

import structlog

from router.dispatcher import Dispatcher

log = structlog.get_logger("router.dispatcher")

Build = Callable[[], Awaitable[tuple[Dispatcher, Callable[[], Awaitable[None]]]]]
"""Opens the thread's own clients and returns the dispatcher and how to close them."""


class DispatchThread:
    def __init__(self, build: Build) -> None:
        self._build = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: Dispatcher | None = None
        self._started: Future[None] = Future()
        self._stop: asyncio.Event | None = None
        self._waking: set[str] = set()
        """Queues with a wake already on its way to the thread: one covers them all."""
        self._thread = threading.Thread(target=self._main, name="omniroute-dispatch", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.wrap_future(self._started)

    def wake(self, queue: str) -> None:
        """Thread-safe: called by the ingest pipeline on the main loop for every message;
        a wake still on its way covers the messages stored before it arrives."""
        if self._loop is None or queue in self._waking:
            return
        self._waking.add(queue)
        self._loop.call_soon_threadsafe(self._deliver_wake, queue)

    def _deliver_wake(self, queue: str) -> None:
        self._waking.discard(queue)
        if self._dispatcher is not None:
            self._dispatcher.wake(queue)

    async def stop(self, timeout_s: float) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, timeout_s + 5)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            dispatcher, close = await self._build()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        try:
            await dispatcher.start()
        except BaseException as exc:
            await close()
            self._started.set_exception(exc)
            return
        self._loop = asyncio.get_running_loop()
        self._dispatcher = dispatcher
        self._stop = asyncio.Event()
        self._started.set_result(None)
        try:
            await self._stop.wait()
            await dispatcher.stop()
        finally:
            await close()
            log.info("dispatch.thread_stopped")
