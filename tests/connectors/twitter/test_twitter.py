"""X (Twitter): parsing of recorded Account Activity deliveries, the CRC check, the
signature, and the webhook posted to the running app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorContext, Parsed, WebhookRequest
from connectors.twitter import TwitterConnector
from connectors.twitter.parse import parse_activity
from connectors.twitter.settings import TwitterSettings
from router.clock import ManualClock
from router.errors import InputError, Unauthorized
from router.settings import Secret
from tests.connectors.conftest import (
    Client,
    customer_of,
    fixture_bytes,
    fixture_json,
    history,
    post_webhook,
)
from tests.connectors.nothing_stored import assert_nothing_stored

SECRET = "x7PfMbQ2kR9tWvLc4nZs8HjYd3GaE6uK1oBq5iNrT0mXwV"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PRIYA = "twitter:4337869213"
TOM = "twitter:1127781330"
ACCOUNT = "twitter:3001969357"


@pytest.fixture
def policy() -> str:
    return f'[connectors.twitter]\nconsumer_secret = "{SECRET}"\n'


def signature(data: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-twitter-webhooks-signature": signature(body, secret)}


def parsed(name: str, *, mentions: bool = True) -> Parsed:
    return parse_activity(fixture_bytes("twitter", name), mentions=mentions)


# --- parsing -------------------------------------------------------------------------


def test_a_direct_message_is_a_message_from_a_verified_user() -> None:
    [message] = parsed("dm_text.json").messages
    assert (message.channel, message.source) == ("social", "twitter")
    assert message.external_id == "1862431992049271203"
    assert message.thread == "dm:3001969357:4337869213"
    assert message.text == "Hi! My package was marked delivered but never arrived"
    assert message.sent_at == datetime(2026, 11, 22, 9, 59, 0, 123000, tzinfo=UTC)
    assert message.sender.name == "Priya Nair"
    assert [(i.kind, i.value, i.verified) for i in message.sender.identities] == [
        ("twitter", "4337869213", True)
    ]
    assert message.sender.attributes == {"twitter_username": "priyan"}
    assert message.attributes == {"visibility": "direct"}
    assert message.inbox == ACCOUNT


def test_a_photo_is_an_attachment_and_its_link_leaves_the_text() -> None:
    [message] = parsed("dm_media.json").messages
    assert message.text == "This is the tracking page"
    [photo] = message.attachments
    assert (photo.name, photo.content_type, photo.provider_id) == (
        "Jx7Qk1aB.jpg",
        "image/jpeg",
        "1862432141870809088",
    )
    assert photo.url == (
        "https://ton.twitter.com/1.1/ton/data/dm/1862432150011944964/1862432141870809088/Jx7Qk1aB.jpg"
    )


def test_a_batched_delivery_is_split_and_a_video_is_its_best_mp4() -> None:
    tom, priya = parsed("dm_batched.json").messages
    assert (tom.sender.name, priya.sender.name) == ("Tom Becker", "Priya Nair")
    assert tom.text == "The app crashes when I open settings"
    [video] = tom.attachments
    assert (video.name, video.content_type) == ("hi.mp4", "video/mp4")
    assert video.url == "https://video.twimg.com/dm_video/1862432279661686784/vid/720x1280/hi.mp4"
    assert priya.text == "Any news?"


def test_a_dm_the_account_sent_is_an_echo() -> None:
    result = parsed("dm_echo.json")
    assert (result.messages, result.ignored) == ([], ["echo"])


def test_a_post_mentioning_the_account_is_a_public_message_with_its_full_text() -> None:
    [message] = parsed("mention.json").messages
    assert message.external_id == "tweet:1862431866794893312"
    assert message.thread == "public:3001969357:1127781330"
    assert message.text.endswith("Customer number 55-1029.")
    assert message.text.startswith("@AcmeSupport three days without internet")
    assert message.sent_at == datetime(2026, 11, 22, 9, 58, 30, tzinfo=UTC)
    assert message.sender.name == "Tom Becker"
    assert message.attributes == {
        "visibility": "public",
        "url": "https://x.com/tbecker/status/1862431866794893312",
    }
    assert message.inbox == ACCOUNT
    [photo] = message.attachments
    assert (photo.name, photo.url) == (
        "GdW3x0aWAAAm1Qz.jpg",
        "https://pbs.twimg.com/media/GdW3x0aWAAAm1Qz.jpg",
    )


def test_mentions_can_be_turned_off() -> None:
    result = parsed("mention.json", mentions=False)
    assert (result.messages, result.ignored) == ([], ["event:tweet_create_events"])


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("own_and_retweet.json", ["own_post", "retweet"]),
        ("favorite.json", ["event:favorite_events"]),
        ("follow.json", ["event:follow_events"]),
        (
            "typing_and_read.json",
            [
                "event:direct_message_indicate_typing_events",
                "event:direct_message_mark_read_events",
            ],
        ),
    ],
)
def test_own_posts_retweets_and_other_activity_are_ignored(name: str, reasons: list[str]) -> None:
    result = parsed(name)
    assert (result.messages, result.ignored) == ([], reasons)


@pytest.mark.parametrize(
    "body",
    [b"<xml/>", b"{}", b'{"for_user_id": "1", "direct_message_events": [{"id": "2"}]}'],
)
def test_a_body_that_is_no_delivery_is_bad_input(body: bytes) -> None:
    with pytest.raises(InputError):
        parse_activity(body, mentions=True)


# --- CRC and signature ----------------------------------------------------------------


def connector() -> TwitterConnector:
    return TwitterConnector(TwitterSettings(Secret(SECRET)), ConnectorContext(ManualClock(NOW)))


def request(body: bytes, headers: dict[str, str], query: tuple[tuple[str, str], ...] = ()) -> Any:
    return WebhookRequest("POST", "https://x/", headers, body, NOW, query)


def test_the_crc_check_answers_the_token_signed_with_the_consumer_secret() -> None:
    reply = connector().handshake(request(b"", {}, (("crc_token", "9b4507b3-ee2f"),)))
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {"response_token": signature(b"9b4507b3-ee2f")}


def test_a_crc_check_without_a_token_is_bad_input() -> None:
    with pytest.raises(InputError, match="crc_token"):
        connector().handshake(request(b"", {}))


FORGED = json.dumps(
    {
        "for_user_id": "3001969357",
        "direct_message_events": [
            {
                "type": "message_create",
                "id": "999001",
                "message_create": {"sender_id": "666", "message_data": {"text": "forged"}},
            }
        ],
    }
)
"""A delivery nobody at X sent: the CRC check must never sign it."""


@pytest.mark.parametrize(
    "token",
    [FORGED, "{}", "a b", "tok\n", "tok.en", "x" * 256, "é"],
    ids=["delivery", "braces", "space", "newline", "dot", "too_long", "non_ascii"],
)
def test_a_crc_token_outside_the_token_alphabet_is_refused(token: str) -> None:
    with pytest.raises(InputError, match="crc_token must be 1 to 255 characters"):
        connector().handshake(request(b"", {}, (("crc_token", token),)))


@pytest.mark.parametrize("token", ["9b4507b3-ee2f", "Zm9v+YmFy/YQ==", "a_b", "x" * 255])
def test_base64_and_url_safe_crc_tokens_are_answered(token: str) -> None:
    reply = connector().handshake(request(b"", {}, (("crc_token", token),)))
    assert json.loads(reply.body) == {"response_token": signature(token.encode())}


DELIVERIES = st.from_regex(r'[ \t\r\n]*\{"for_user_id": ?"[0-9]{1,19}"\}[ \t\r\n]*', fullmatch=True)
"""Bodies that are deliveries (an empty one), with the whitespace JSON allows."""


@given(st.one_of(st.text(max_size=300), DELIVERIES))
def test_nothing_the_crc_check_signs_is_a_delivery(token: str) -> None:
    """The CRC answer is a POST signature: a token it answers must never parse."""
    try:
        connector().handshake(request(b"", {}, (("crc_token", token),)))
    except InputError:
        return
    with pytest.raises(InputError):
        parse_activity(token.encode(), mentions=True)


def test_absurd_timestamps_are_no_time() -> None:
    body = fixture_json("twitter", "dm_text.json")
    for stamp in ("9" * 400, "99999999999999999", "١٢٣"):
        body["direct_message_events"][0]["created_timestamp"] = stamp
        [message] = parse_activity(json.dumps(body).encode(), mentions=True).messages
        assert message.sent_at is None


def test_the_signature_must_be_over_this_body_with_this_secret() -> None:
    body = fixture_bytes("twitter", "dm_text.json")
    connector().verify(request(body, signed(body)))
    with pytest.raises(Unauthorized, match="invalid"):
        connector().verify(request(body + b" ", signed(body)))
    with pytest.raises(Unauthorized, match="invalid"):
        connector().verify(request(body, signed(body, "another-secret")))
    with pytest.raises(Unauthorized, match="missing"):
        connector().verify(request(body, {}))


# --- the webhook on the running app ----------------------------------------------------


async def post(client: Client, name: str) -> tuple[int, Any]:
    body = fixture_bytes("twitter", name)
    return await post_webhook(client, "twitter", body, signed(body))


async def test_the_crc_check_is_answered_over_get(client: Client) -> None:
    response = await client.get("/v1/connectors/twitter/webhook", params={"crc_token": "abc"})
    assert response.status == 200
    assert await response.json() == {"response_token": signature(b"abc")}
    response = await client.get("/v1/connectors/twitter/webhook")
    assert response.status == 400


async def test_the_crc_check_is_no_signing_oracle(client: Client) -> None:
    """The attack: ask the public GET to sign a forged delivery, then POST it with that
    signature. The GET refuses, and no way to sign the body is left."""
    response = await client.get("/v1/connectors/twitter/webhook", params={"crc_token": FORGED})
    assert response.status == 400
    text = await response.text()
    assert signature(FORGED.encode()) not in text
    assert "response_token" not in text
    for header in ({}, {"x-twitter-webhooks-signature": signature(b"abc")}):
        status, _ = await post_webhook(client, "twitter", FORGED.encode(), header)
        assert status == 401
    await assert_nothing_stored(client, "twitter:666")


async def test_a_direct_message_is_stored_once(client: Client) -> None:
    status, answer = await post(client, "dm_text.json")
    assert (status, answer["accepted"]) == (200, 1)
    status, again = await post(client, "dm_text.json")
    assert (status, again["accepted"], again["duplicates"]) == (200, 0, 1)
    customer = await customer_of(client, PRIYA)
    assert customer is not None
    assert customer["name"] == "Priya Nair"
    assert customer["attributes"]["twitter_username"] == "priyan"
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hi! My package was marked delivered but never arrived"
    assert entry["attributes"]["inbox"] == ACCOUNT


async def test_a_batch_is_stored_per_sender_and_joins_their_dm_conversation(
    client: Client,
) -> None:
    _, first = await post(client, "dm_text.json")
    status, answer = await post(client, "dm_batched.json")
    assert (status, answer["accepted"]) == (200, 2)
    tom = await customer_of(client, TOM)
    priya = await customer_of(client, PRIYA)
    assert tom is not None
    assert priya is not None
    assert tom["customer_id"] != priya["customer_id"]
    assert first["conversation_ids"][0] in answer["conversation_ids"]
    [video_dm] = await history(client, tom["customer_id"])
    assert video_dm["attachments"][0]["name"] == "hi.mp4"


async def test_a_public_mention_is_a_conversation_apart_from_the_dms(client: Client) -> None:
    _, dms = await post(client, "dm_batched.json")
    status, answer = await post(client, "mention.json")
    assert (status, answer["accepted"]) == (200, 1)
    assert answer["conversation_ids"][0] not in dms["conversation_ids"]
    tom = await customer_of(client, TOM)
    assert tom is not None
    assert len(await history(client, tom["customer_id"])) == 2


@pytest.mark.parametrize(
    "name", ["dm_echo.json", "own_and_retweet.json", "favorite.json", "typing_and_read.json"]
)
async def test_echoes_and_other_activity_store_nothing(client: Client, name: str) -> None:
    status, answer = await post(client, name)
    assert (status, answer["accepted"]) == (200, 0)
    assert answer["ignored"] >= 1
    for identity in (PRIYA, TOM, ACCOUNT):
        assert await customer_of(client, identity) is None


@pytest.mark.parametrize(
    "headers",
    [
        lambda b: signed(b + b" "),
        lambda b: signed(b, "wrong-secret"),
        lambda b: {},
    ],
    ids=["tampered", "wrong_secret", "unsigned"],
)
async def test_a_bad_signature_is_401_and_stores_nothing(client: Client, headers: Any) -> None:
    body = fixture_bytes("twitter", "dm_text.json")
    status, answer = await post_webhook(client, "twitter", body, headers(body))
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, PRIYA)


@pytest.mark.parametrize(
    "policy",
    [f'[http]\nmax_body_bytes = 500\n\n[connectors.twitter]\nconsumer_secret = "{SECRET}"\n'],
    ids=["limit_500"],
)
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    status, _ = await post(client, "dm_text.json")
    assert status == 413
    assert await customer_of(client, PRIYA) is None
