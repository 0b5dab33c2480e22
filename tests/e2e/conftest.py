"""Start the real daemon as a separate process, as an operator would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            **env,
            "OMNIROUTE_HTTP_PORT": str(self.port),
            "OMNIROUTE_API_TOKEN": TOKEN,
            "OMNIROUTE_LOG_FORMAT": "json",
        }
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router", "serve", env=self._env, stdout=log, stderr=log
            )
        await self._until_ready()

    async def _until_ready(self) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"daemon exited: {self._log_path.read_text()[-2000:]}")
                try:
                    async with session.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)  # waiting for a process to listen, not for time
        raise RuntimeError("daemon did not become ready")

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        self.process = None
        return code

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


DaemonFactory = Callable[[dict[str, str]], Daemon]


@pytest.fixture
async def daemon_factory(tmp_path: Path) -> AsyncIterator[DaemonFactory]:
    started: list[Daemon] = []

    def make(env: dict[str, str]) -> Daemon:
        daemon = Daemon(env, tmp_path / f"daemon-{len(started)}.log")
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        await daemon.kill()


@asynccontextmanager
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as s:
        yield s
