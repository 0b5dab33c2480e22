"""What the Redis backends with Lua scripts share (``RedisLedger``, ``RedisPresence``):
the deployment prefix rule, the client's settings, and named scripts run with the
deployment's base key ``{P}:`` as ``KEYS[1]``. Outages become ``BackendUnavailable``
through ``redis_errors``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError

from router.backends.redis_errors import translated

PREFIX: Final = re.compile(r"[\w.:-]{1,100}\Z", re.ASCII)


def base_key(prefix: str) -> str:
    """``{<prefix>}:``, the start of every key of a deployment: the hash tag keeps a
    deployment in one Redis Cluster slot, so a script may touch any of its keys."""
    if not PREFIX.match(prefix):
        raise ValueError("the Redis prefix must be letters, digits and _ . : - only")
    return f"{{{prefix}}}:"


def connect(
    url: str,
    name: str,
    *,
    connect_timeout_s: float,
    command_timeout_s: float,
    health_check_interval_s: int = 0,
) -> aioredis.Redis:
    """A client named ``name`` (``CLIENT LIST`` shows which deployment and backend a
    connection serves) answering bytes."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        client_name=name,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=command_timeout_s,
        health_check_interval=health_check_interval_s,
        # One immediate retry on a broken connection (a restarted server), none on a
        # timeout, whose command may have run.
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_timeout=False,
    )


class RedisScripted:
    """A Redis backend's connection and its Lua ``scripts``; ``open`` connects and
    checks the server answers, ``_run`` runs a script by name."""

    role: ClassVar[str]
    """``ledger``: the client is named ``omniroute:<prefix>:<role>``."""
    scripts: ClassVar[Mapping[str, str]]
    """Name -> Lua source; ``KEYS[1]`` is the base key ``{P}:``."""

    def __init__(
        self,
        url: str,
        prefix: str = "omniroute",
        *,
        connect_timeout_s: float = 1.0,
        command_timeout_s: float = 5.0,
    ) -> None:
        self._base = base_key(prefix)
        self._url = url
        self._name = f"omniroute:{prefix}:{self.role}"
        self._timeouts = (connect_timeout_s, command_timeout_s)
        self._client: aioredis.Redis | None = None
        self._registered: dict[str, AsyncScript] = {}

    async def open(self) -> None:
        if self._client is not None:
            return
        connect_s, command_s = self._timeouts
        client = connect(
            self._url, self._name, connect_timeout_s=connect_s, command_timeout_s=command_s
        )
        # register_script runs by EVALSHA and loads the script again on NOSCRIPT.
        self._registered = {
            name: client.register_script(source) for name, source in self.scripts.items()
        }
        self._client = client
        with translated:
            await client.ping()

    async def close(self) -> None:
        client, self._client = self._client, None
        self._registered = {}
        if client is not None:
            await client.aclose()

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError(f"{type(self).__name__}.open() was not called")
        return self._client

    async def _run(self, name: str, *args: str | int | bytes) -> Any:
        client = self._redis
        with translated:
            return await self._registered[name](keys=[self._base], args=list(args), client=client)
