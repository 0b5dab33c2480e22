"""A tool written only from the documents: the issue's "a tool written only from the
AsyncAPI/OpenAPI documents can subscribe, receive items in urgency order, ack and send
events".

``DocumentedTool`` below imports nothing from ``router`` (a test holds it to that): it
reads ``/v1/openapi.json`` and ``/v1/asyncapi.json`` from the running daemon and finds
there everything it uses (the path that takes a message, the path that takes an agent
event and its event types, the conversation path, the WebSocket channel, the AMQP
queue's name pattern, declaration arguments and payload schemas). Only the daemon's base
URL, its token and the broker URL come from the test environment, as an operator would
hand them to a tool author.
"""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft7Validator, Draft202012Validator

Client = TestClient[web.Request, web.Application]
RECEIVE_S = 10.0
"""How long to wait for an item before failing (a wait for a message, not for time)."""

POLICY = """
[routing]
queues = ["default"]
default_sla = "standard"

[sla.standard]
[[sla.standard.targets]]
priority = [1]
first_response = "5m"
next_response = "10m"
resolution = "1h"
[[sla.standard.targets]]
priority = [5]
first_response = "4h"
next_response = "8h"
resolution = "3d"
[[sla.standard.targets]]
first_response = "30m"
next_response = "1h"
resolution = "8h"

[[rules]]
name = "urgent"
match.words = ["urgent"]
then.priority = 1

[[rules]]
name = "newsletter"
match.words = ["unsubscribe"]
then.priority = 5
"""

TEXTS = ("Where is my parcel?", "Please unsubscribe me", "URGENT: charged twice")
"""Posted in this order; the urgent one is due first, the newsletter one last."""
BY_URGENCY = (TEXTS[2], TEXTS[0], TEXTS[1])


class DocumentedTool:
    """An agent tool that knows the daemon only through its two documents."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self.openapi: dict[str, Any] = {}
        self.asyncapi: dict[str, Any] = {}

    async def read_documents(self) -> None:
        self.openapi = await self._get("/v1/openapi.json")
        self.asyncapi = await self._get("/v1/asyncapi.json")

    # --- what the documents say ----------------------------------------------------------

    def path_taking(self, schema: str) -> str:
        """The OpenAPI path whose POST body is ``schema``."""
        found = [
            path
            for path, item in self.openapi["paths"].items()
            if _schema_name(item.get("post", {}).get("requestBody")) == schema
        ]
        assert len(found) == 1, found
        return str(found[0])

    def path_answering(self, schema: str) -> str:
        """The OpenAPI path whose GET answers ``schema`` with 200."""
        found = [
            path
            for path, item in self.openapi["paths"].items()
            if _schema_name(item.get("get", {}).get("responses", {}).get("200")) == schema
        ]
        assert len(found) == 1, found
        return str(found[0])

    def event_types(self) -> list[str]:
        schema = self.openapi["components"]["schemas"]["AgentEvent"]
        return list(schema["properties"]["type"]["enum"])

    def socket_channel(self) -> str:
        """The WebSocket channel that delivers one queue's items."""
        return self._channel(protocol="ws", parameter="name", frame="ItemFrame")

    def amqp_queue_channel(self) -> str:
        """The AMQP queue that holds one queue's work items (its name is a pattern)."""
        return self._channel(protocol="amqp", parameter="name", frame="WorkItem")

    def queues(self) -> list[str]:
        return list(self.asyncapi["x-omniroute-queues"])

    def validator(self, message: str) -> Draft7Validator:
        """The AsyncAPI payload schema of ``message`` (AsyncAPI 2 schemas are Draft-07)."""
        payload = self.asyncapi["components"]["messages"][message]["payload"]
        return Draft7Validator({**payload, "components": self.asyncapi["components"]})

    def response_validator(self, schema: str) -> Draft202012Validator:
        """An OpenAPI 3.1 component schema (JSON Schema 2020-12)."""
        ref = {"$ref": f"#/components/schemas/{schema}"}
        return Draft202012Validator({**ref, "components": self.openapi["components"]})

    def _channel(self, *, protocol: str, parameter: str, frame: str) -> str:
        servers = self.asyncapi["servers"]
        found = []
        for name, item in self.asyncapi["channels"].items():
            on_protocol = any(servers[s]["protocol"].startswith(protocol) for s in item["servers"])
            messages = self._messages(item.get("subscribe", {}).get("message", {}))
            if on_protocol and parameter in item.get("parameters", {}) and frame in messages:
                found.append(name)
        assert len(found) == 1, found
        return str(found[0])

    def _messages(self, message: dict[str, Any]) -> set[str]:
        """The names of the messages an operation sends (``oneOf`` or one)."""
        refs = message.get("oneOf", [message] if message else [])
        return {self._resolve(ref)["name"] for ref in refs}

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" not in node:
            return node
        target: Any = self.asyncapi
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return dict(target)

    # --- HTTP ----------------------------------------------------------------------------

    async def _get(self, path: str) -> dict[str, Any]:
        async with self._session.get(self._base + path, headers=self._auth) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    async def post_message(self, text: str) -> dict[str, Any]:
        customer = uuid.uuid4().hex[:8]
        body = {
            "channel": "chat",
            "source": "tool-test",
            "external_id": f"m-{customer}",
            "sender": {
                "name": f"Customer {customer}",
                "identities": [{"kind": "chat_visitor", "value": customer, "verified": True}],
            },
            "thread": f"session-{customer}",
            "text": text,
        }
        path = self.path_taking("InboundMessage")
        async with self._session.post(self._base + path, json=body, headers=self._auth) as resp:
            assert str(resp.status) in self.openapi["paths"][path]["post"]["responses"]
            assert resp.status == 202, await resp.text()
            return dict(await resp.json())

    async def send_event(self, conversation_id: str, kind: str, agent_id: str) -> None:
        assert kind in self.event_types()
        path = self.path_taking("AgentEvent").replace("{id}", conversation_id)
        body = {"type": kind, "agent_id": agent_id}
        async with self._session.post(self._base + path, json=body, headers=self._auth) as resp:
            assert resp.status == 200, await resp.text()

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        path = self.path_answering("ConversationView").replace("{id}", conversation_id)
        view = await self._get(path)
        self.response_validator("ConversationView").validate(view)
        return view

    # --- taking work ---------------------------------------------------------------------

    async def take_over_socket(self, queue: str, count: int) -> list[dict[str, Any]]:
        """``count`` items from the queue's WebSocket, one at a time (capacity 1), each
        validated and acked."""
        url = self.asyncapi["servers"]["ws"]["url"] + self.socket_channel().replace("{name}", queue)
        items = []
        async with self._session.ws_connect(
            url, params={"capacity": "1"}, headers=self._auth
        ) as ws:
            for _ in range(count):
                frame = await asyncio.wait_for(ws.receive_json(), RECEIVE_S)
                self.validator("ItemFrame").validate(frame)
                items.append(frame["item"])
                ack = {"ack": frame["item"]["item_id"]}
                self.validator("AckFrame").validate(ack)
                await ws.send_json(ack)
        return items

    async def take_over_amqp(self, amqp_url: str, queue: str, count: int) -> list[dict[str, Any]]:
        """``count`` items straight from the RabbitMQ queue, prefetch 1, each validated
        and acked. The queue is declared as documented (same durability and arguments:
        RabbitMQ would refuse anything else)."""
        channel_name = self.amqp_queue_channel()
        channel_doc = self.asyncapi["channels"][channel_name]
        name = channel_name.replace("{name}", queue)
        items = []
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1)
            declared = await channel.declare_queue(
                name,
                durable=channel_doc["bindings"]["amqp"]["queue"]["durable"],
                arguments=channel_doc["x-amqp-arguments"],
            )
            async with declared.iterator() as incoming:
                async for delivery in incoming:
                    item = json.loads(delivery.body)
                    self.validator("WorkItem").validate(item)
                    assert delivery.message_id == item["item_id"]
                    items.append(item)
                    await delivery.ack()
                    if len(items) == count:
                        break
        return items


def _schema_name(described: dict[str, Any] | None) -> str | None:
    """The component a request body or response refers to, if any."""
    if not described:
        return None
    ref = described.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return str(ref).rsplit("/", 1)[1] if ref else None


# --- the tests ---------------------------------------------------------------------------


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The test environment's, with a policy where urgency differs by message."""
    path = tmp_path / "omniroute.toml"
    path.write_text(POLICY)
    return {**env, "OMNIROUTE_CONFIG": str(path)}


@pytest.fixture
async def tool(client: Client, env: dict[str, str]) -> DocumentedTool:
    tool = DocumentedTool(client.session, str(client.make_url("/")), env["OMNIROUTE_API_TOKEN"])
    await tool.read_documents()
    return tool


async def _post_all(tool: DocumentedTool) -> dict[str, str]:
    """Conversation id by text."""
    return {text: (await tool.post_message(text))["conversation_id"] for text in TEXTS}


async def _reply_and_check(tool: DocumentedTool, conversation_id: str) -> None:
    await tool.send_event(conversation_id, "replied", agent_id="tool-1")
    view = await tool.conversation(conversation_id)
    [first_response] = [c for c in view["clocks"] if c["kind"] == "first_response"]
    assert first_response["status"] == "met"
    assert first_response["met_at"] is not None


def _assert_urgency_order(items: list[dict[str, Any]], conversations: dict[str, str]) -> None:
    assert [item["message"]["text"] for item in items] == list(BY_URGENCY)
    assert [item["conversation_id"] for item in items] == [conversations[t] for t in BY_URGENCY]
    assert [item["priority"] for item in items] == [1, 3, 5]
    deadlines = [item["deadline"] for item in items]
    assert deadlines == sorted(deadlines)


async def test_a_tool_from_the_documents_works_over_the_websocket(tool: DocumentedTool) -> None:
    queue = tool.queues()[0]
    conversations = await _post_all(tool)
    items = await tool.take_over_socket(queue, len(TEXTS))
    _assert_urgency_order(items, conversations)
    await _reply_and_check(tool, items[0]["conversation_id"])


@pytest.mark.parametrize("backend", ["production"], indirect=True)
async def test_a_tool_from_the_documents_consumes_the_amqp_queue(
    tool: DocumentedTool, env: dict[str, str]
) -> None:
    assert tool.asyncapi["x-omniroute-broker"] == "rabbitmq"
    queue = tool.queues()[0]
    conversations = await _post_all(tool)
    items = await tool.take_over_amqp(env["OMNIROUTE_AMQP_URL"], queue, len(TEXTS))
    _assert_urgency_order(items, conversations)
    await _reply_and_check(tool, items[0]["conversation_id"])


def test_the_tool_imports_nothing_from_router() -> None:
    tree = ast.parse(Path(__file__).read_text())
    imported = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
        )
    ]
    assert imported
    assert not [name for name in imported if name.split(".")[0] in ("router", "tests")]
