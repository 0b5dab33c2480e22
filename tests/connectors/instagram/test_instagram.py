"""The Instagram messaging connector: Instagram's side of the Messenger Platform format
(its ``fixtures/``) and the webhook on the running app. The parser is Messenger's
(``tests/connectors/messenger``); Meta's signature and handshake are unit-tested in
``tests/connectors/whatsapp``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import Parsed
from connectors.messenger.parse import INSTAGRAM, parse_body
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
)
from tests.connectors.meta_hooks import VERIFY_TOKEN, policy_for, post_fixture, signed
from tests.connectors.nothing_stored import assert_nothing_stored

POLICY = policy_for("instagram")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ACCOUNT = "17841405793187218"
DANI, EVA = "1284759302185746", "1539012876549021"


def mid(n: int) -> str:
    return f"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1NzkzMTg3MjE4OjM0MDI4MjM2NjQ{n:04d}"


def who(igsid: str) -> str:
    return f"instagram:{ACCOUNT}:{igsid}"


def parse(name: str) -> Parsed:
    body = fixture_bytes("instagram", name)
    return parse_body(body, platform=INSTAGRAM, received_at=NOW)


# --- the parser --------------------------------------------------------------------------


def test_text_message() -> None:
    [message] = parse("text.json").messages
    assert (message.source, message.external_id, message.channel) == ("instagram", mid(1), "social")
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == (
        "instagram",
        f"{ACCOUNT}:{DANI}",
        True,
    )
    assert message.thread == f"{ACCOUNT}:{DANI}"
    assert message.inbox == f"instagram:{ACCOUNT}"
    assert message.text == "Do you ship to Portugal? \U0001f1f5\U0001f1f9"


def test_batch_skips_the_accounts_own_messages() -> None:
    parsed = parse("batch.json")
    assert [m.external_id for m in parsed.messages] == [mid(11), mid(12), mid(14)]
    assert parsed.ignored == ["echo"]
    assert parsed.messages[2].references == [mid(13)]  # a reply to the account's message


def test_media_and_shares_are_attachments() -> None:
    shared, mention = parse("media.json").messages
    assert [(a.name, a.url is not None) for a in shared.attachments] == [
        ("image", True),
        ("video", True),
        ("audio", True),
        ("Autumn collection", True),
        ("New arrivals", True),
    ]
    assert shared.attributes["attachment_types"] == ["audio", "ig_reel", "image", "share", "video"]
    assert [a.name for a in mention.attachments] == ["story_mention"]


def test_a_story_reply_keeps_the_story() -> None:
    [message] = parse("story_reply.json").messages
    assert message.text == "Is this still available?"
    assert message.attributes["story_reply"]["id"] == "17950239281473625"


def test_seen_names_the_message_read() -> None:
    [report] = parse("seen.json").deliveries
    assert (report.source, report.external_id, report.status, report.recipient) == (
        "instagram",
        mid(21),
        "read",
        DANI,
    )


def test_an_ice_breaker_is_a_message() -> None:
    [message] = parse("postback.json").messages
    assert (message.external_id, message.text) == (mid(51), "Where is my order?")
    assert message.attributes == {"postback_payload": "ICEBREAKER_ORDER_STATUS"}


def test_deleted_unsupported_reactions_and_referrals() -> None:
    parsed = parse("ignored.json")
    assert parsed.messages == []
    [deleted] = parsed.deliveries  # the customer unsent it: its history entry stays, flagged
    assert (deleted.external_id, deleted.status) == (mid(61), "deleted")
    assert parsed.ignored == ["unsupported", "reaction", "referral"]


def test_comments_are_not_messages() -> None:
    assert parse("comments.json").ignored == ["changes:comments"]


# --- the webhook on the running app --------------------------------------------------------


@pytest.fixture
def policy() -> str:
    return POLICY


async def post(client: Client, name: str) -> tuple[int, Any]:
    return await post_fixture(client, "instagram", name)


async def test_handshake(client: Client) -> None:
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=987654321"
    response = await client.get(f"/v1/connectors/instagram/webhook?{query}")
    assert (response.status, await response.text()) == (200, "987654321")
    response = await client.get(
        "/v1/connectors/instagram/webhook?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"
    )
    assert response.status == 401


async def test_a_message_is_stored_once(client: Client) -> None:
    assert (await post(client, "text.json"))[1]["accepted"] == 1
    status, answer = await post(client, "text.json")
    assert (status, answer["duplicates"]) == (200, 1)
    customer = await customer_of(client, who(DANI))
    assert customer is not None
    [message] = await history(client, customer["customer_id"])
    assert (message["source"], message["external_id"]) == ("instagram", mid(1))
    assert message["attributes"]["inbox"] == f"instagram:{ACCOUNT}"


@pytest.mark.parametrize("case", ["tampered", "wrong-secret"])
async def test_a_bad_signature_is_401_and_nothing_is_stored(client: Client, case: str) -> None:
    body = fixture_bytes("instagram", "text.json")
    if case == "tampered":
        body, headers = body.replace(b"Portugal", b"Spain"), signed(body)
    else:
        headers = signed(body, "not-the-secret")
    status, answer = await post_webhook(client, "instagram", body, headers)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    await assert_nothing_stored(client, who(DANI))


async def test_a_batch_and_its_customers(client: Client) -> None:
    status, answer = await post(client, "batch.json")
    assert (status, answer["accepted"], answer["ignored"]) == (200, 3, 1)
    dani, eva = await customer_of(client, who(DANI)), await customer_of(client, who(EVA))
    assert dani is not None
    assert eva is not None
    assert dani["customer_id"] != eva["customer_id"]
    assert len(await history(client, eva["customer_id"])) == 2


async def test_receipts_and_deletions_route_nothing(client: Client) -> None:
    assert (await post(client, "text.json"))[1]["accepted"] == 1
    assert (await post(client, "seen.json"))[1]["deliveries"] == 1
    status, answer = await post(client, "ignored.json")
    assert (status, answer["accepted"], answer["deliveries"], answer["ignored"]) == (200, 0, 1, 3)
    response = await client.get(f"/v1/deliveries/instagram/{mid(61)}", headers=AUTH)
    assert [r["status"] for r in (await response.json())["deliveries"]] == ["deleted"]
    assert (await post(client, "comments.json"))[1]["ignored"] == 1


@pytest.mark.parametrize("policy", [POLICY + "max_body_bytes = 500\n"])
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    status, answer = await post(client, "media.json")
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
