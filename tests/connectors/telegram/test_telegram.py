"""Telegram: parsing of recorded updates, the secret token check, and the webhook
posted to the running app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext, Parsed, WebhookRequest
from connectors.telegram import TelegramConnector
from connectors.telegram.parse import parse_update
from connectors.telegram.settings import TelegramSettings
from router.clock import ManualClock
from router.errors import ConfigError, InputError, Unauthorized
from router.settings import Secret, load
from tests.connectors.conftest import (
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
)
from tests.connectors.nothing_stored import assert_nothing_stored

SECRET = "test-secret_1"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
ANA = "telegram:111222333"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def policy() -> str:
    return f'[connectors.telegram]\nsecret_token = "{SECRET}"\n'


def parsed(name: str) -> Parsed:
    return parse_update(fixture_bytes("telegram", name))


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("POST", "https://omniroute.example/", headers, body, NOW)


# --- parsing -------------------------------------------------------------------------


def test_a_text_message_is_one_message_from_a_verified_telegram_user() -> None:
    [message] = parsed("text.json").messages
    assert message.channel == "social"
    assert message.source == "telegram"
    assert message.external_id == "111222333:1201"
    assert message.thread == "111222333"
    assert message.text == "Hi, my order A-1001 arrived broken"
    assert message.sent_at == datetime(2026, 11, 22, 9, 59, tzinfo=UTC)
    assert message.sender.name == "Ana Souza"
    assert [(i.kind, i.value, i.verified) for i in message.sender.identities] == [
        ("telegram", "111222333", True)
    ]
    assert message.sender.attributes == {"telegram_username": "anasouza", "language": "pt-br"}
    assert message.attributes == {"chat_type": "private"}
    assert message.inbox is None  # an update does not name the bot


def test_an_edited_message_is_an_edit_of_the_same_external_id() -> None:
    result = parsed("edited.json")
    assert result.messages == []
    [edit] = result.edits
    assert edit.message.external_id == "111222333:1201"
    assert edit.message.text == "Hi, my order A-1002 arrived broken"
    assert edit.edited_at == datetime(2026, 11, 22, 9, 59, 30, tzinfo=UTC)


def test_a_photo_is_its_largest_size_with_the_caption_as_text() -> None:
    [message] = parsed("photo.json").messages
    assert message.text == "This is how it arrived"
    [photo] = message.attachments
    assert photo.provider_id == "AgACAgIAAxkBAAIBHmdWx0s-large"
    assert (photo.name, photo.content_type, photo.size) == ("photo.jpg", "image/jpeg", 96218)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "document.json",
            ("invoice-A-1001.pdf", "application/pdf", 48213, "BQACAgIAAxkBAAIBH2dWx1invoice"),
        ),
        ("voice.json", ("voice.ogg", "audio/ogg", 25467, "AwACAgIAAxkBAAIBIGdWx2voice")),
        ("animation.json", ("facepalm.mp4", "video/mp4", 131072, "CgACAgQAAxkBAAIBIWdWx3gif")),
        ("sticker.json", ("sticker.webp", "image/webp", 28774, "CAACAgIAAxkBAAIBImdWx4sticker")),
    ],
)
def test_media_become_attachments_with_the_file_id(
    name: str, expected: tuple[str, str, int, str]
) -> None:
    [message] = parsed(name).messages
    assert [(a.name, a.content_type, a.size, a.provider_id) for a in message.attachments] == [
        expected
    ]


def test_a_sticker_says_its_emoji() -> None:
    [message] = parsed("sticker.json").messages
    assert message.text == "\N{CRYING FACE}"


def test_a_location_is_text_and_an_attribute() -> None:
    [message] = parsed("location.json").messages
    assert message.text == "Location: -23.561414, -46.655881"
    assert message.attributes["location"] == {"latitude": -23.561414, "longitude": -46.655881}
    assert message.attachments == []


def test_the_senders_own_contact_is_their_verified_phone() -> None:
    [message] = parsed("contact_own.json").messages
    assert [(i.kind, i.value, i.verified) for i in message.sender.identities] == [
        ("telegram", "111222333", True),
        ("phone", "+5511987654321", True),
    ]


def test_somebody_elses_contact_is_content_not_the_senders_phone() -> None:
    [message] = parsed("contact_other.json").messages
    assert [i.kind for i in message.sender.identities] == ["telegram"]
    assert message.text == "Contact: Bruno Lima +5511912345678"
    assert message.attributes["contact"] == {
        "name": "Bruno Lima",
        "phone": "+5511912345678",
        "telegram_user_id": 444555666,
    }


def test_in_a_group_each_member_has_a_thread_of_their_own_per_forum_topic() -> None:
    [message] = parsed("group_topic.json").messages
    [other] = parsed("group_topic_other.json").messages
    assert message.thread == "-1001987654321:42:555000111"
    assert other.thread == "-1001987654321:42:555000222"
    assert message.external_id == "-1001987654321:89"
    assert message.sender.name == "Lena"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bot.json", "bot_message"),
        ("service.json", "unsupported_content"),
        ("callback_query.json", "update:callback_query"),
        ("my_chat_member.json", "update:my_chat_member"),
        ("channel_post.json", "update:channel_post"),
    ],
)
def test_bots_service_messages_and_other_updates_are_ignored(name: str, reason: str) -> None:
    result = parsed(name)
    assert (result.messages, result.edits, result.ignored) == ([], [], [reason])


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {"text": "no ids"}}'])
def test_a_body_that_is_no_update_is_bad_input(body: bytes) -> None:
    with pytest.raises(InputError):
        parse_update(body)


def with_date(name: str, key: str, field: str, value: int) -> bytes:
    update = json.loads(fixture_bytes("telegram", name))
    update[key][field] = value
    return json.dumps(update).encode()


@pytest.mark.parametrize("value", [10**18, 2**63 - 1, -(2**63), 10**30, 253402300800])
@pytest.mark.parametrize(
    ("name", "key", "field"),
    [
        ("text.json", "message", "date"),
        ("edited.json", "edited_message", "date"),
        ("edited.json", "edited_message", "edit_date"),
    ],
)
def test_a_date_that_is_no_time_is_bad_input(name: str, key: str, field: str, value: int) -> None:
    with pytest.raises(InputError, match="is not a time"):
        parse_update(with_date(name, key, field, value))


# --- verification and settings ----------------------------------------------------------


def connector() -> TelegramConnector:
    return TelegramConnector(TelegramSettings(Secret(SECRET)), ConnectorContext(ManualClock()))


def test_the_secret_token_header_must_match() -> None:
    body = fixture_bytes("telegram", "text.json")
    connector().verify(request(body, {"x-telegram-bot-api-secret-token": SECRET}))
    with pytest.raises(Unauthorized, match="invalid"):
        connector().verify(request(body, {"x-telegram-bot-api-secret-token": SECRET + "x"}))
    with pytest.raises(Unauthorized, match="missing"):
        connector().verify(request(body, {}))


def test_a_secret_token_telegram_would_refuse_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text('[connectors.telegram]\nsecret_token = "has spaces"\n')
    with pytest.raises(ConfigError, match=r"connectors\.telegram\.secret_token"):
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})


# --- the webhook on the running app ----------------------------------------------------


async def post(client: Client, name: str, secret: str = SECRET) -> tuple[int, Any]:
    headers = HEADERS | {"X-Telegram-Bot-Api-Secret-Token": secret}
    return await post_webhook(client, "telegram", fixture_bytes("telegram", name), headers)


async def test_a_message_is_stored_once_however_often_telegram_delivers_it(
    client: Client,
) -> None:
    status, answer = await post(client, "text.json")
    assert status == 200, answer
    assert answer["accepted"] == 1
    status, again = await post(client, "text.json")
    assert (status, again["accepted"], again["duplicates"]) == (200, 0, 1)
    customer = await customer_of(client, ANA)
    assert customer is not None
    assert customer["name"] == "Ana Souza"
    assert customer["attributes"]["telegram_username"] == "anasouza"
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hi, my order A-1001 arrived broken"
    assert entry["external_id"] == "111222333:1201"


async def test_an_edit_updates_the_stored_message_and_is_no_new_item(client: Client) -> None:
    await post(client, "text.json")
    status, answer = await post(client, "edited.json")
    assert (status, answer["edited"], answer["accepted"]) == (200, 1, 0)
    status, again = await post(client, "edited.json")
    assert status == 200
    assert again["accepted"] == 0
    customer = await customer_of(client, ANA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hi, my order A-1002 arrived broken"
    assert [r["text"] for r in entry["revisions"]] == ["Hi, my order A-1001 arrived broken"]


async def test_an_edit_of_a_message_never_stored_is_stored_as_the_message(client: Client) -> None:
    status, answer = await post(client, "edited.json")
    assert (status, answer["accepted"]) == (200, 1)
    customer = await customer_of(client, ANA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hi, my order A-1002 arrived broken"


async def test_sharing_ones_own_contact_adds_a_verified_phone(client: Client) -> None:
    await post(client, "text.json")
    status, _ = await post(client, "contact_own.json")
    assert status == 200
    by_telegram = await customer_of(client, ANA)
    by_phone = await customer_of(client, "phone:+5511987654321")
    assert by_telegram is not None
    assert by_phone is not None
    assert by_phone["customer_id"] == by_telegram["customer_id"]
    assert {"kind": "phone", "value": "+5511987654321", "verified": True} in by_phone["identities"]


async def test_somebody_elses_contact_gives_no_one_that_phone(client: Client) -> None:
    status, answer = await post(client, "contact_other.json")
    assert (status, answer["accepted"]) == (200, 1)
    assert await customer_of(client, "phone:+5511912345678") is None
    customer = await customer_of(client, ANA)
    assert customer is not None
    assert [i["kind"] for i in customer["identities"]] == ["telegram"]


async def test_media_are_stored_as_attachments_with_the_file_id(client: Client) -> None:
    await post(client, "photo.json")
    customer = await customer_of(client, ANA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "This is how it arrived"
    assert entry["attachments"][0]["provider_id"] == "AgACAgIAAxkBAAIBHmdWx0s-large"


async def test_two_members_of_a_group_stay_two_customers(client: Client) -> None:
    _, lena = await post(client, "group_topic.json")
    _, jonas = await post(client, "group_topic_other.json")
    assert (lena["accepted"], jonas["accepted"]) == (1, 1)
    assert lena["conversation_ids"] != jonas["conversation_ids"]
    first = await customer_of(client, "telegram:555000111")
    second = await customer_of(client, "telegram:555000222")
    assert first is not None
    assert second is not None
    assert first["customer_id"] != second["customer_id"]


@pytest.mark.parametrize("name", ["bot.json", "callback_query.json", "channel_post.json"])
async def test_ignored_updates_are_acknowledged_and_store_nothing(
    client: Client, name: str
) -> None:
    status, answer = await post(client, name)
    assert (status, answer["accepted"], answer["ignored"]) == (200, 0, 1)
    assert await customer_of(client, "telegram:7000000001") is None
    assert await customer_of(client, ANA) is None


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
async def test_a_wrong_or_missing_secret_token_is_401_and_stores_nothing(
    client: Client, secret: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    status, answer = await post_webhook(
        client, "telegram", fixture_bytes("telegram", "text.json"), headers
    )
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, ANA)


async def test_a_body_that_is_no_update_is_400(client: Client) -> None:
    status, answer = await post_webhook(client, "telegram", b'{"update_id": "x"}', HEADERS)
    assert status == 400, answer


async def test_an_update_with_a_date_that_is_no_time_is_400(client: Client) -> None:
    body = with_date("text.json", "message", "date", 10**30)
    status, answer = await post_webhook(client, "telegram", body, HEADERS)
    assert (status, answer["error"]["code"]) == (400, "bad_request"), answer
    await assert_nothing_stored(client, ANA)


async def test_telegram_has_no_get_handshake(client: Client) -> None:
    response = await client.get("/v1/connectors/telegram/webhook")
    assert response.status == 404


@pytest.mark.parametrize(
    "policy",
    [f'[http]\nmax_body_bytes = 200\n\n[connectors.telegram]\nsecret_token = "{SECRET}"\n'],
    ids=["limit_200"],
)
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    status, _ = await post(client, "photo.json")
    assert status == 413
    assert await customer_of(client, ANA) is None
