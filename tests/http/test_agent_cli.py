"""``omniroute agent`` against the running app, on both backends: ``--json`` through the
real command line, and a person's keys (from a pipe) through its loop."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest

from router import agent_cli
from router.agent_cli import NO_OUTBOUND, Keys, work
from router.cli import _parser
from router.client import Client
from router.clock import ManualClock
from router.settings import Settings
from tests.http.conftest import TOKEN, message
from tests.http.conftest import Client as AppClient

WAIT_S = 10


@pytest.fixture
def policy() -> str:
    return '[routing]\nqueues = ["default", "billing"]\n'


@pytest.fixture
def app(app_client: AppClient) -> AppClient:
    return app_client


def base_url(app: AppClient) -> str:
    return str(app.make_url("/")).rstrip("/")


@pytest.fixture
async def api(app: AppClient) -> AsyncIterator[Client]:
    async with Client(base_url(app), TOKEN) as api:
        yield api


def typed(text: str) -> Keys:
    reader = asyncio.StreamReader()
    reader.feed_data(text.encode())
    reader.feed_eof()
    return Keys(reader)


async def test_json_mode_through_the_command_line_prints_and_acks(
    app: AppClient, api: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await api.post_message(message())
    second = await api.post_message(message(thread="another"))
    argv = ["agent", "--queue", "default", "--url", base_url(app), "--token", TOKEN]
    args = _parser().parse_args([*argv, "--json", "--limit", "2", "--capacity", "2"])
    await asyncio.wait_for(agent_cli._main(args), WAIT_S)
    lines = capsys.readouterr().out.splitlines()  # the app's own log lines are there too
    items = [json.loads(line) for line in lines if line.startswith('{"version":')]
    assert {i["conversation_id"] for i in items} == {
        first["conversation_id"],
        second["conversation_id"],
    }
    assert items[0]["customer"]["name"] == "Maria Lopez"
    third = await api.post_message(message(thread="third"))
    async with api.subscribe("default") as offers:  # both were acked: the next is new
        offer = await asyncio.wait_for(anext(offers), WAIT_S)
        assert offer.item.conversation_id == third["conversation_id"]
        await offer.ack()


async def test_accept_reply_resolve(api: Client, clock: ManualClock) -> None:
    conv = (await api.post_message(message()))["conversation_id"]
    out = io.StringIO()
    async with api.subscribe("default") as offers:
        keys = typed("a\nr\nthanks, a new one is on its way\nd\n")
        done = await asyncio.wait_for(
            work(offers, api, out, agent_id="ana", keys=keys, limit=1, now=clock.now), WAIT_S
        )
    assert done == 1
    printed = out.getvalue()
    assert "── default  P3  due in 1h  Maria Lopez  chat" in printed
    assert "  > My order arrived broken" in printed
    assert "  accepted" in printed
    assert NO_OUTBOUND in printed
    assert "  resolved" in printed
    view = await api.conversation(conv)
    assert (view["state"], view["assignee"]) == ("resolved", "ana")


async def test_snooze_gives_it_back_then_transfer_moves_it(api: Client) -> None:
    conv = (await api.post_message(message()))["conversation_id"]
    out = io.StringIO()
    async with api.subscribe("default") as offers:
        keys = typed("s\nt\nbilling\n")
        done = await asyncio.wait_for(
            work(offers, api, out, agent_id="ana", keys=keys, limit=2), WAIT_S
        )
    assert done == 2
    printed = out.getvalue()
    assert "snoozed: back in the queue" in printed
    assert "(redelivered)" in printed
    assert "transferred to billing" in printed
    assert (await api.conversation(conv))["queue"] == "billing"


async def test_a_refused_event_is_shown_and_quitting_gives_the_item_back(api: Client) -> None:
    await api.post_message(message())
    out = io.StringIO()
    async with api.subscribe("default") as offers:
        keys = typed("t\nnowhere\nq\n")
        done = await asyncio.wait_for(work(offers, api, out, agent_id="ana", keys=keys), WAIT_S)
        assert done == 0
    assert "  ! " in out.getvalue()  # no queue "nowhere": the transfer was refused
    assert "bye: the item went back to the queue" in out.getvalue()
    async with api.subscribe("default") as offers:
        again = await asyncio.wait_for(anext(offers), WAIT_S)
        assert again.redelivered
        await again.ack()


@pytest.mark.parametrize("backend", ["production"])
async def test_json_mode_from_rabbitmq(
    app: AppClient, api: Client, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = await api.post_message(message())
    argv = ["agent", "--queue", "default", "--url", base_url(app), "--token", TOKEN, "--json"]
    rabbit = ["--amqp", settings.amqp.url.get(), "--amqp-prefix", settings.amqp.prefix]
    args = _parser().parse_args([*argv, *rabbit, "--limit", "1"])
    await asyncio.wait_for(agent_cli._main(args), WAIT_S)
    lines = capsys.readouterr().out.splitlines()
    [item] = [json.loads(line) for line in lines if line.startswith('{"version":')]
    assert item["conversation_id"] == accepted["conversation_id"]
