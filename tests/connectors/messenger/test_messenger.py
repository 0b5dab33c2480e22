"""The Facebook Messenger connector: the Messenger Platform parser (shared with Instagram)
against the recorded payloads in ``fixtures/``, and the webhook on the running app.
Meta's signature and handshake are unit-tested once, in ``tests/connectors/whatsapp``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import Parsed
from connectors.messenger.parse import MESSENGER, parse_body
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
    quarantine,
)
from tests.connectors.meta_hooks import VERIFY_TOKEN, policy_for, post_fixture, signed
from tests.connectors.nothing_stored import assert_nothing_stored

POLICY = policy_for("messenger")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PAGE, PAGE_2 = "682498302938465", "105954565440071"
ANA, BEN, CAROL = "6945015802207712", "7032185230190345", "25817466321840577"
T_MS = 1795341540000


def mid(n: int) -> str:
    return f"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cg{n:04d}"


def who(psid: str, page: str = PAGE) -> str:
    return f"messenger:{page}:{psid}"


def parse(name: str, **options: Any) -> Parsed:
    body = fixture_bytes("messenger", name)
    return parse_body(body, platform=MESSENGER, received_at=NOW, **options)


# --- the parser --------------------------------------------------------------------------


def test_text_message() -> None:
    [message] = parse("text.json").messages
    assert (message.channel, message.source, message.external_id) == ("social", "messenger", mid(1))
    [identity] = message.sender.identities
    assert (identity.kind, identity.value, identity.verified) == (
        "messenger",
        f"{PAGE}:{ANA}",
        True,
    )
    assert message.sender.name is None  # the webhook carries no profile
    assert message.thread == f"{PAGE}:{ANA}"
    assert message.inbox == f"messenger:{PAGE}"
    assert message.text == "Hello, is the blue jacket back in stock? Gr\u00fc\u00dfe!"
    assert message.sent_at == datetime(2026, 11, 22, 9, 59, tzinfo=UTC)


def test_batch_is_split_and_echoes_skipped() -> None:
    parsed = parse("batch.json")
    assert [m.external_id for m in parsed.messages] == [mid(11), mid(12), mid(14)]
    assert [m.thread for m in parsed.messages] == [
        f"{PAGE}:{ANA}",
        f"{PAGE}:{BEN}",
        f"{PAGE_2}:{CAROL}",
    ]
    reply, image, quick = parsed.messages
    assert reply.references == [mid(1)]
    assert image.attachments[0].name == "418003577_1456887311847915_n.jpg"
    assert image.attachments[0].content_type == "image/jpeg"
    assert quick.attributes == {"quick_reply_payload": "TRACK_ORDER"}
    assert parsed.ignored == ["echo"]
    [report] = parsed.deliveries
    assert (report.external_id, report.status, report.recipient) == (mid(13), "delivered", ANA)


def test_an_echo_alone_is_ignored() -> None:
    parsed = parse("echo.json")
    assert (parsed.messages, parsed.deliveries, parsed.ignored) == ([], [], ["echo"])


def test_deliveries_name_their_messages_and_watermark_reads_are_ignored() -> None:
    parsed = parse("receipts.json")
    assert [(r.external_id, r.status) for r in parsed.deliveries] == [
        (mid(22), "delivered"),
        (mid(23), "delivered"),
    ]
    assert parsed.deliveries[0].at == datetime(2026, 11, 22, 9, 58, 59, tzinfo=UTC)
    assert parsed.ignored == ["read"]
    assert parsed.messages == []


def test_postbacks_are_messages_with_the_button_title() -> None:
    started, human = parse("postback.json").messages
    assert (started.external_id, started.text) == (mid(31), "Get Started")
    assert started.attributes == {"postback_payload": "GET_STARTED"}
    # no mid (older API versions): an id from page, sender and time, stable on retry
    assert human.external_id == f"postback:{PAGE}:{BEN}:{T_MS + 1000}"
    assert human.text == "Talk to a person"


def test_a_message_edit() -> None:
    parsed = parse("edit.json")
    [edit] = parsed.edits
    assert edit.message.external_id == mid(1)
    assert edit.message.text == "Hello, is the green jacket back in stock?"
    assert edit.message.attributes == {"num_edit": 1}
    assert edit.edited_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert parsed.messages == []


def test_attachments_keep_their_url_name_and_type() -> None:
    parsed = parse("attachments.json")
    [message] = parsed.messages
    assert message.text == "Here is everything"
    assert [(a.name, a.content_type) for a in message.attachments] == [
        ("418003577_14568_n.png", "image/png"),
        ("4180035_unboxing.mp4", "video/mp4"),
        ("41800_audioclip-1795341540.mp4", "audio/mp4"),
        ("41800_Return form.pdf", "application/pdf"),
        ("Order A-1001", "application/octet-stream"),
    ]
    assert all(a.url and a.url.startswith("https://") for a in message.attachments)
    assert message.attributes["attachment_types"] == ["audio", "fallback", "file", "image", "video"]
    assert parsed.ignored == ["empty"]  # a fallback without a payload: nothing to store


def test_other_events_are_ignored_by_name() -> None:
    parsed = parse("ignored.json")
    assert (parsed.messages, parsed.deliveries) == ([], [])
    assert parsed.ignored == ["reaction", "referral", "optin", "standby", "changes:feed"]


def test_other_pages_are_ignored_when_pages_are_configured() -> None:
    parsed = parse("batch.json", accounts=(PAGE_2,))
    assert [m.external_id for m in parsed.messages] == [mid(14)]
    assert parsed.ignored == ["account:not_configured"]


def test_a_malformed_event_is_quarantined_and_the_others_kept() -> None:
    body = json.loads(fixture_bytes("messenger", "text.json"))
    events = body["entry"][0]["messaging"]
    events.append({**events[0], "message": {"text": "no mid"}})
    events.append({**events[0], "message": "not an object"})
    parsed = parse_body(json.dumps(body).encode(), platform=MESSENGER, received_at=NOW)
    assert [m.external_id for m in parsed.messages] == [mid(1)]
    assert parsed.quarantined[0].reason == "message without 'mid'"
    assert parsed.quarantined[1].reason.startswith("event does not fit")


def test_another_object_is_ignored() -> None:
    body = fixture_bytes("instagram", "text.json")
    parsed = parse_body(body, platform=MESSENGER, received_at=NOW)
    assert parsed.ignored == ["object:instagram"]


# --- the webhook on the running app --------------------------------------------------------


@pytest.fixture
def policy() -> str:
    return POLICY


async def post(client: Client, name: str) -> tuple[int, Any]:
    return await post_fixture(client, "messenger", name)


async def stored(client: Client, identity: str) -> list[dict[str, Any]]:
    customer = await customer_of(client, identity)
    assert customer is not None, identity
    return await history(client, customer["customer_id"])


async def test_handshake(client: Client) -> None:
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=CHALLENGE_ACCEPTED"
    response = await client.get(f"/v1/connectors/messenger/webhook?{query}")
    assert (response.status, await response.text()) == (200, "CHALLENGE_ACCEPTED")
    response = await client.get(
        "/v1/connectors/messenger/webhook?hub.mode=subscribe&hub.challenge=1"
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "missing hub.verify_token"


async def test_a_message_is_stored_under_the_page_scoped_id(client: Client) -> None:
    status, answer = await post(client, "text.json")
    assert (status, answer["accepted"]) == (200, 1)
    customer = await customer_of(client, who(ANA))
    assert customer is not None
    assert {"kind": "messenger", "value": f"{PAGE}:{ANA}", "verified": True} in customer[
        "identities"
    ]
    [message] = await history(client, customer["customer_id"])
    assert (message["source"], message["external_id"]) == ("messenger", mid(1))
    assert message["attributes"]["inbox"] == f"messenger:{PAGE}"
    status, answer = await post(client, "text.json")  # Meta retries
    assert (status, answer["accepted"], answer["duplicates"]) == (200, 0, 1)
    assert len(await stored(client, who(ANA))) == 1


@pytest.mark.parametrize("case", ["tampered", "wrong-secret"])
async def test_a_bad_signature_is_401_and_nothing_is_stored(client: Client, case: str) -> None:
    body = fixture_bytes("messenger", "text.json")
    if case == "tampered":
        status, _ = await post_webhook(
            client, "messenger", body.replace(b"blue", b"gold"), signed(body)
        )
    else:
        status, _ = await post_webhook(client, "messenger", body, signed(body, "not-the-secret"))
    assert status == 401
    await assert_nothing_stored(client, who(ANA))


async def test_a_batch(client: Client) -> None:
    status, answer = await post(client, "batch.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["deliveries"], answer["ignored"]) == (3, 1, 1)
    assert [m["external_id"] for m in await stored(client, who(ANA))] == [mid(11)]  # no echo
    assert [m["external_id"] for m in await stored(client, who(BEN))] == [mid(12)]
    assert [m["external_id"] for m in await stored(client, who(CAROL, PAGE_2))] == [mid(14)]
    response = await client.get(f"/v1/deliveries/messenger/{mid(13)}", headers=AUTH)
    assert [r["status"] for r in (await response.json())["deliveries"]] == ["delivered"]


async def test_an_edit_updates_the_stored_message(client: Client) -> None:
    await post(client, "text.json")
    status, answer = await post(client, "edit.json")
    assert (status, answer["edited"], answer["accepted"]) == (200, 1, 0)
    [message] = await stored(client, who(ANA))
    assert message["text"] == "Hello, is the green jacket back in stock?"
    assert [r["text"] for r in message["revisions"]] == [
        "Hello, is the blue jacket back in stock? Gr\u00fc\u00dfe!"
    ]


async def test_an_edit_of_an_unknown_message_is_stored_as_new(client: Client) -> None:
    status, answer = await post(client, "edit.json")
    assert (status, answer["edited"], answer["accepted"]) == (200, 0, 1)
    [message] = await stored(client, who(ANA))
    assert message["text"] == "Hello, is the green jacket back in stock?"


async def test_receipts_record_delivery_and_route_nothing(client: Client) -> None:
    status, answer = await post(client, "receipts.json")
    assert status == 200, answer
    assert (answer["accepted"], answer["deliveries"], answer["ignored"]) == (0, 2, 1)
    assert await customer_of(client, who(ANA)) is None


async def test_postbacks_are_stored_once(client: Client) -> None:
    assert (await post(client, "postback.json"))[1]["accepted"] == 2
    assert (await post(client, "postback.json"))[1]["duplicates"] == 2
    [started] = await stored(client, who(ANA))
    assert started["text"] == "Get Started"


async def test_ignored_events_are_acknowledged(client: Client) -> None:
    status, answer = await post(client, "ignored.json")
    assert (status, answer["accepted"], answer["ignored"]) == (200, 0, 5)
    assert await customer_of(client, who(ANA)) is None
    assert await quarantine(client) == []


@pytest.mark.parametrize("policy", [POLICY + "max_body_bytes = 500\n"])
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    status, answer = await post(client, "batch.json")
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
