"""router.client against the running app, on both backends: post, subscribe, ack and
nack, events, conversations, errors; RabbitMQ straight through AmqpSubscriber; the
agent socket with presence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import pytest

from router.client import AmqpSubscriber, Client, ClientError, Offer
from router.http.agents import routes as agent_routes
from router.models import WorkItem
from router.presence import PresenceIn
from router.settings import Settings
from tests.http.conftest import TOKEN, message
from tests.http.conftest import Client as AppClient

WAIT_S = 10


def base_url(app: AppClient) -> str:
    return str(app.make_url("/")).rstrip("/")


@pytest.fixture
async def api(client: AppClient) -> AsyncIterator[Client]:
    async with Client(base_url(client), TOKEN) as api:
        yield api


async def next_offer(offers: AsyncIterator[Offer]) -> Offer:
    return await asyncio.wait_for(anext(offers), WAIT_S)


async def test_post_receive_event_and_ack(api: Client) -> None:
    accepted = await api.post_message(message())
    conv = accepted["conversation_id"]
    async with api.subscribe("default", capacity=1) as offers:
        offer = await next_offer(offers)
        assert isinstance(offer.item, WorkItem)
        assert (offer.item.conversation_id, offer.redelivered) == (conv, False)
        assert offer.item.customer.name == "Maria Lopez"
        assert offer.item.message.text == "My order arrived broken"
        assert offer.item.deadline.isoformat() == "2026-11-22T11:00:00+00:00"
        view = await api.event(conv, "accepted", "ana")
        assert view["assignee"] == "ana"
        await offer.ack()
        second = await api.post_message(message(thread="another"))
        following = await next_offer(offers)  # the acked item is gone for good
        assert following.item.conversation_id == second["conversation_id"]
        await following.ack()
    assert (await api.conversation(conv))["assignee"] == "ana"
    assert "default" in [q["name"] for q in await api.queues()]


async def test_nack_requeue_comes_back_redelivered_with_the_same_item_id(api: Client) -> None:
    await api.post_message(message())
    async with api.subscribe("default") as offers:
        first = await next_offer(offers)
        await first.nack(requeue=True)
        again = await next_offer(offers)
        assert (again.item.item_id, again.redelivered) == (first.item.item_id, True)
        await again.ack()


async def test_unsettled_items_go_back_when_the_subscription_closes(api: Client) -> None:
    await api.post_message(message())
    async with api.subscribe("default") as offers:
        first = await next_offer(offers)
    async with api.subscribe("default") as offers:
        again = await next_offer(offers)
        await again.nack(requeue=False)
    assert (again.item.item_id, again.redelivered) == (first.item.item_id, True)
    with pytest.raises(ClientError) as caught:
        await first.ack()
    assert caught.value.code == "disconnected"


async def test_the_daemons_errors_become_client_errors(api: Client, client: AppClient) -> None:
    async def code(call: Awaitable[object]) -> tuple[int, str]:
        with pytest.raises(ClientError) as caught:
            await call
        return caught.value.status, caught.value.code

    assert await code(api.conversation("cnv_nope")) == (404, "not_found")
    assert await code(api.event("cnv_nope", "accepted", "ana")) == (404, "not_found")
    assert await code(api.post_message(message(channel="pigeon"))) == (422, "invalid_message")
    assert await code(api.subscribe("nope").open()) == (404, "not_found")
    assert (await code(api.subscribe("default", capacity=0).open()))[0] == 400
    conv = (await api.post_message(message()))["conversation_id"]
    await api.event(conv, "resolved", "ana")
    status, _ = await code(api.event(conv, "replied", "ana"))
    assert status == 409
    async with Client(base_url(client), "wrong") as stranger:
        assert await code(stranger.queues()) == (401, "unauthorized")
        assert await code(stranger.subscribe("default").open()) == (401, "unauthorized")
    async with Client("http://127.0.0.1:9", TOKEN, timeout_s=2) as nowhere:
        assert await code(nowhere.queues()) == (503, "unreachable")


@pytest.mark.parametrize("backend", ["production"])
async def test_rabbitmq_straight_through_the_amqp_subscriber(
    api: Client, settings: Settings
) -> None:
    accepted = await api.post_message(message())
    url, prefix = settings.amqp.url.get(), settings.amqp.prefix
    async with AmqpSubscriber(url, prefix) as rabbit:
        async with rabbit.subscribe("default", prefetch=2) as offers:
            offer = await next_offer(offers)
            assert offer.item.conversation_id == accepted["conversation_id"]
            assert not offer.redelivered
            await offer.nack(requeue=True)
            again = await next_offer(offers)
            assert (again.item.item_id, again.redelivered) == (offer.item.item_id, True)
            await again.ack()
        with pytest.raises(ClientError) as caught:
            await rabbit.subscribe("nope").open()
        assert caught.value.code == "not_found"
    assert rabbit.queue_name("agent.ana") == f"{prefix}.agent.ana"


@pytest.mark.skipif(not list(agent_routes), reason="the presence API is not built yet")
async def test_an_agent_announces_and_takes_its_items_over_its_own_socket(api: Client) -> None:
    me = PresenceIn(status="available", queues=["default"], capacity={"chat": 2})
    state = await api.announce("ana", me)
    assert (state.agent_id, state.status, state.capacity) == ("ana", "available", {"chat": 2})
    async with api.subscribe_agent("ana", me) as offers:
        accepted = await api.post_message(message())
        offer = await next_offer(offers)
        assert offer.item.conversation_id == accepted["conversation_id"]
        [ana] = [a for a in await api.agents() if a["agent_id"] == "ana"]
        assert [held["item_id"] for held in ana["holding"]] == [offer.item.item_id]
        await offer.ack()
        assert offers.lease_until is not None


async def test_an_error_frame_is_raised_and_the_subscription_goes_on(api: Client) -> None:
    async with api.subscribe("default") as offers:
        await offers._send({"ack": "itm_nope"})  # what a buggy tool might send
        with pytest.raises(ClientError) as caught:
            await next_offer(offers)
        assert (caught.value.status, caught.value.code) == (400, "unknown_item")
        accepted = await api.post_message(message())
        offer = await next_offer(offers)
        assert offer.item.conversation_id == accepted["conversation_id"]
        await offer.ack()
