"""The daemon's HTTP API and its sockets, typed: ``Client(base_url, token)``.

::

    async with Client("http://127.0.0.1:8080", token) as omniroute:
        async with omniroute.subscribe("default", capacity=3) as offers:
            async for offer in offers:
                print(offer.item.priority, offer.item.message.text)
                await omniroute.event(offer.item.conversation_id, "resolved", "ana")
                await offer.ack()

Every refusal is a ``ClientError`` with the daemon's status, code and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from router.client.models import ClientError, Resource, error_from
from router.client.ws import WsSubscription
from router.lifecycle import AgentEvent
from router.models import EventType, InboundMessage
from router.presence import AgentState, PresenceIn

_encoder = msgspec.json.Encoder()


def _seg(value: str) -> str:
    return quote(value, safe="@")


class Client(Resource):
    """One connection pool to one daemon. ``token`` is the API token or an agent's token;
    the session is made on ``__aenter__`` (or ``open()``) and closed on exit."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        # No overall timeout on the session: a socket lives as long as the tool runs.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total)
        self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- HTTP --------------------------------------------------------------------------

    async def post_message(self, message: InboundMessage | Mapping[str, Any]) -> dict[str, Any]:
        """Ingest one canonical message; the answer names its conversation, queue,
        priority, deadline and whether it was a duplicate."""
        answer: dict[str, Any] = await self._call("POST", "/v1/messages", message)
        return answer

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        """State, queue, priority, assignee and SLA clocks of one conversation."""
        answer: dict[str, Any] = await self._call(
            "GET", f"/v1/conversations/{_seg(conversation_id)}"
        )
        return answer

    async def event(
        self, conversation_id: str, type: EventType, agent_id: str, queue: str | None = None
    ) -> dict[str, Any]:
        """Report what an agent did (accepted, replied, resolved, transferred to
        ``queue``, ...); the answer is the conversation after it. 409: not possible now."""
        body = AgentEvent(type=type, agent_id=agent_id, queue=queue)
        answer: dict[str, Any] = await self._call(
            "POST", f"/v1/conversations/{_seg(conversation_id)}/events", body
        )
        return answer

    async def announce(self, agent_id: str, presence: PresenceIn) -> AgentState:
        """Announce an agent (status, queues, skills, capacity per channel). A lease:
        announce again before it ends, or the agent goes offline."""
        answer = await self._call("POST", f"/v1/agents/{_seg(agent_id)}/presence", presence)
        return msgspec.convert(answer, AgentState)

    async def agents(self) -> list[dict[str, Any]]:
        """Every known agent: status, queues, capacity, load and the items it holds."""
        answer = await self._call("GET", "/v1/agents")
        return list(answer["agents"])

    async def queues(self) -> list[dict[str, Any]]:
        """Per queue: backlog, ready, depth, consumers, oldest deadline."""
        answer = await self._call("GET", "/v1/queues")
        return list(answer["queues"])

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else _encoder.encode(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._http.request(
                method, self.base_url + path, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientError(503, "unreachable", f"{method} {path}: {exc!r}") from None
        try:
            parsed = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            parsed = None
        if status >= 400:
            raise error_from(status, parsed)
        return parsed

    # --- sockets -----------------------------------------------------------------------

    def subscribe(self, queue: str, capacity: int = 1) -> WsSubscription:
        """Items of one queue in urgency order, at most ``capacity`` unsettled at once."""
        path = f"/v1/queues/{_seg(queue)}/subscribe?capacity={capacity}"
        return WsSubscription(self._http, self.base_url + path)

    def subscribe_agent(
        self, agent_id: str, presence: PresenceIn | None = None, *, heartbeat_s: float = 10.0
    ) -> WsSubscription:
        """The agent's own items: its personal queue and the queues it announced, within
        its capacity per channel. ``presence`` is announced on connect; a heartbeat every
        ``heartbeat_s`` keeps the lease while the tool runs."""
        url = f"{self.base_url}/v1/agents/{_seg(agent_id)}/subscribe"
        return WsSubscription(self._http, url, presence=presence, heartbeat_s=heartbeat_s)

    @property
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ClientError(0, "not_open", "use `async with Client(...)` or call open()")
        return self._session
