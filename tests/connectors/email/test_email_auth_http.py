"""Sender authentication through the raw endpoint, with the receiving MX's authserv-id
configured (``trust_from`` then defaults to ``authenticated``): what a forged From and
an authenticated one become in the store."""

from __future__ import annotations

from typing import Any

import pytest

from router.clock import ManualClock
from tests.connectors.conftest import Client, customer_of, fixture_bytes, history
from tests.connectors.email.helpers import AT
from tests.connectors.email.test_email_http import post
from tests.connectors.email_hooks import sender_of

MARIA = "email:maria.lopez@example.com"
AUTHENTICATED_ID = "CAJ8mX3vQk2Lp9dR7sT1uW4yZ6bN0cF5hH@mail.gmail.com"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(AT)


@pytest.fixture
def policy() -> str:
    return (
        "[connectors.email]\n"
        'own_addresses = ["support@acme.test"]\n'
        'authserv_ids = ["mx1.acme.test"]\n'
    )


async def post_fixture(client: Client, name: str) -> dict[str, Any]:
    return await post(client, fixture_bytes("email", name))


async def test_an_authenticated_from_is_a_verified_customer(client: Client) -> None:
    answer = await post_fixture(client, "authenticated.eml")
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["message_id"] == answer["message_ids"][0]
    assert entry["attributes"]["inbox"] == "email:support@acme.test"
    auth = entry["attributes"]["email_auth"]
    assert (auth["trust_from"], auth["verified"], auth["reason"]) == (
        "authenticated",
        True,
        "dmarc=pass",
    )


async def test_a_spoofed_from_is_stored_for_someone_else_never_merged(client: Client) -> None:
    """The MX found DMARC failing for Maria's domain: the mail is stored and routed, for
    a new customer with Maria's address as an unverified suggestion."""
    await post_fixture(client, "authenticated.eml")
    spoof = await post_fixture(client, "spoofed.eml")
    assert spoof["accepted"] == 1
    maria = await customer_of(client, MARIA)
    assert maria is not None
    [only] = await history(client, maria["customer_id"])
    assert only["external_id"] == AUTHENTICATED_ID
    other = await sender_of(client, spoof["conversation_ids"][0])
    assert other["customer_id"] != maria["customer_id"]
    assert [link["other_customer_id"] for link in other["suggested"]] == [maria["customer_id"]]
    [entry] = await history(client, other["customer_id"])
    assert entry["attributes"]["email_auth"]["reason"] == "dmarc=fail"


async def test_an_unverified_reply_on_a_known_thread_joins_that_conversation(
    client: Client,
) -> None:
    """A reply naming a stored Message-ID belongs to that thread whoever wrote From (as
    in any help desk): it joins the thread's conversation, marked unverified, and adds no
    verified identity to anyone."""
    first = await post_fixture(client, "authenticated.eml")
    reply = fixture_bytes("email", "spoofed.eml").replace(
        b"Subject: Change of delivery address",
        b"In-Reply-To: <" + AUTHENTICATED_ID.encode() + b">\nSubject: Re: The replacement kettle",
    )
    answer = await post(client, reply)
    assert answer["conversation_ids"] == first["conversation_ids"]
    maria = await customer_of(client, MARIA)
    assert maria is not None
    newest, _ = await history(client, maria["customer_id"])
    assert newest["attributes"]["email_auth"]["verified"] is False
    assert maria["suggested"] == []
