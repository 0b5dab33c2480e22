"""One SQLite connection and the one thread that uses it: ``SqliteStore`` and
``SqliteLedger`` each keep their file behind a ``SqliteWorker``, so the event loop never
waits on the disk and sqlite3's (and the file system's) errors leave as
``BackendUnavailable``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar

from router.errors import BackendUnavailable

C = TypeVar("C")
T = TypeVar("T")


class SqliteWorker(Generic[C]):
    """``opener(path)`` makes the connection object (``C``) on the worker thread;
    ``closer`` closes it there. ``what`` names the file in errors ("SQLite store")."""

    def __init__(
        self,
        path: Path,
        *,
        what: str,
        thread_name: str,
        opener: Callable[[Path], C],
        closer: Callable[[C], None],
    ) -> None:
        self._path = path
        self._what = what
        self._thread_name = thread_name
        self._opener = opener
        self._closer = closer
        self._executor: ThreadPoolExecutor | None = None
        self._conn: C | None = None

    async def open(self) -> None:
        """Start the thread and open the file on it. Idempotent."""
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        self._executor = executor
        try:
            self._conn = await self._submit(executor, lambda: self._opener(self._path))
        except BaseException:
            executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        executor, conn = self._executor, self._conn
        self._executor = self._conn = None
        if executor is None:
            return
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._closer, conn)
        executor.shutdown(wait=True)  # the queue is empty: the idle thread exits at once

    async def call(self, operation: Callable[[C], T]) -> T:
        """Run ``operation(connection)`` on the worker thread."""
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise BackendUnavailable(f"the {self._what} is not open")
        return await self._submit(executor, lambda: operation(conn))

    async def _submit(self, executor: ThreadPoolExecutor, operation: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._translated, operation)

    def _translated(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"{self._what} {self._path.name}: {exc}") from exc
