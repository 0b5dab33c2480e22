"""Slack: parsing of recorded Events API requests, the v0 signature and its timestamp,
and the webhook posted to the running app."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext, Parsed, WebhookRequest
from connectors.slack import SlackConnector
from connectors.slack.parse import parse_request, thread_of
from connectors.slack.payload import Message
from connectors.slack.settings import SlackSettings
from router.clock import ManualClock
from router.errors import ConfigError, InputError, Unauthorized
from router.settings import Secret, load
from tests.connectors.conftest import (
    AUTH,
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
)
from tests.connectors.nothing_stored import assert_nothing_stored

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MARIA = "slack:T061EG9R6:U2147483697"
OMAR = "slack:T061EG9R6:U0G9QF9C6"


@pytest.fixture
def policy() -> str:
    return f'[connectors.slack]\nsigning_secret = "{SECRET}"\n'


def signed(body: bytes, *, at: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack sends with ``body``, signed at ``at``."""
    stamp = str(int(at.timestamp()))
    base = b"v0:" + stamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


def parsed(name: str) -> Parsed:
    return parse_request(fixture_bytes("slack", name))


def identities(result: Parsed) -> list[tuple[str, str, bool]]:
    return [(i.kind, i.value, i.verified) for i in result.messages[0].sender.identities]


# --- parsing -------------------------------------------------------------------------


def test_a_direct_message_is_a_message_from_a_workspace_scoped_user() -> None:
    result = parsed("im.json")
    [message] = result.messages
    assert (message.channel, message.source) == ("chat", "slack")
    assert message.external_id == "T061EG9R6:D024BE91L:1795341540.000100"
    assert message.thread == "D024BE91L"
    assert message.text == "Hello, my invoice for November is wrong"
    assert message.sent_at == datetime(2026, 11, 22, 9, 59, 0, 100, tzinfo=UTC)
    assert message.sender.name == "Maria Lopez"
    assert identities(result) == [("slack", "T061EG9R6:U2147483697", True)]
    assert message.attributes == {"channel_type": "im"}
    assert message.inbox == "slack:T061EG9R6"


def test_a_threaded_reply_in_a_direct_conversation_stays_in_the_direct_conversation() -> None:
    [message] = parsed("im_thread_reply.json").messages
    assert message.thread == "D024BE91L"


def test_in_a_shared_channel_a_top_level_message_starts_a_thread_its_replies_join() -> None:
    [top] = parsed("channel_top.json").messages
    [reply] = parsed("channel_reply.json").messages
    [with_file] = parsed("file_share.json").messages
    [other] = parsed("channel_other_top.json").messages
    assert top.thread == "C2147483705:1795341500.000200:U0G9QF9C6"
    assert reply.thread == with_file.thread == top.thread
    assert other.thread == "C2147483705:1795341530.000600:U0G9QF9C6"
    assert top.sender.name is None  # Slack sends no profile with these events


def test_someone_else_replying_in_the_thread_has_a_thread_of_their_own() -> None:
    [colleague] = parsed("channel_reply_colleague.json").messages
    assert colleague.thread == "C2147483705:1795341500.000200:U0H2KJ4LX"


@pytest.mark.parametrize(
    ("channel", "channel_type", "thread"),
    [
        ("D024BE91L", "im", "D024BE91L"),
        ("D024BE91L", None, "D024BE91L"),
        ("G0MPIM0001", "mpim", "G0MPIM0001:U1"),
        ("C2147483705", "channel", "C2147483705:1.000001:U1"),
        ("G0PRIVATE1", "group", "G0PRIVATE1:1.000001:U1"),
        ("C2147483705", None, "C2147483705:1.000001:U1"),
    ],
)
def test_the_thread_by_kind_of_channel(channel: str, channel_type: str | None, thread: str) -> None:
    reply = Message(user="U1", ts="2.000002", thread_ts="1.000001")
    assert thread_of(channel, channel_type, reply) == thread


def test_an_app_mention_is_the_same_message_as_its_message_event() -> None:
    [mention] = parsed("channel_mention.json").messages
    [message] = parsed("channel_top.json").messages
    assert (mention.external_id, mention.thread) == (message.external_id, message.thread)


def test_shared_files_are_attachments_with_their_private_url() -> None:
    [message] = parsed("file_share.json").messages
    assert message.text == "Here is the error"
    [file] = message.attachments
    assert (file.name, file.content_type, file.size, file.provider_id) == (
        "sso-error.png",
        "image/png",
        183514,
        "F0S43PZDF",
    )
    assert file.url == "https://files.slack.com/files-pri/T061EG9R6-F0S43PZDF/sso-error.png"


def test_a_slack_connect_guest_keeps_their_home_workspace_in_their_id() -> None:
    result = parsed("connect_guest.json")
    assert identities(result) == [("slack", "T09GLOBEX1:U05CUSTGST", True)]
    assert result.messages[0].external_id == "T061EG9R6:C05SHARED1:1795341510.000700"
    assert result.messages[0].inbox == "slack:T061EG9R6"  # where the app is, not the guest
    assert result.messages[0].sender.name == "Kenji Watanabe"


def test_message_changed_is_an_edit_of_the_original_ts() -> None:
    result = parsed("im_changed.json")
    assert result.messages == []
    [edit] = result.edits
    assert edit.message.external_id == "T061EG9R6:D024BE91L:1795341540.000100"
    assert edit.message.text == "Hello, my invoice for October is wrong"
    assert edit.message.thread == "D024BE91L"
    assert edit.edited_at == datetime(2026, 11, 22, 9, 59, 30, tzinfo=UTC)


def test_message_deleted_is_a_deleted_report_on_the_message() -> None:
    result = parsed("im_deleted.json")
    [report] = result.deliveries
    assert (report.source, report.external_id, report.status) == (
        "slack",
        "T061EG9R6:D024BE91L:1795341560.000300",
        "deleted",
    )
    assert report.at == datetime(2026, 11, 22, 9, 59, 40, 500, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bot_message.json", "bot_message"),
        ("app_echo.json", "bot_message"),
        ("im_unfurl.json", "unchanged"),
        ("channel_join.json", "subtype:channel_join"),
        ("reaction_added.json", "event:reaction_added"),
        ("channel_created.json", "event:channel_created"),
    ],
)
def test_bots_system_messages_and_other_events_are_ignored(name: str, reason: str) -> None:
    result = parsed(name)
    assert (result.messages, result.edits, result.deliveries) == ([], [], [])
    assert result.ignored == [reason]


def test_url_verification_answers_the_challenge() -> None:
    reply = parsed("url_verification.json").reply
    assert reply is not None
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }


@pytest.mark.parametrize(
    "body",
    [
        b"token=x&challenge=y",
        b'{"type": "url_verification"}',
        b'{"type": "event_callback", "event": {"type": "message", "ts": "1.0"}}',
        b'{"type": "event_callback", "team_id": "T1", "event": {"type": "message", "ts": "x"'
        b', "user": "U1", "channel": "D1"}}',
    ],
)
def test_a_body_that_is_no_events_api_request_is_bad_input(body: bytes) -> None:
    with pytest.raises(InputError):
        parse_request(body)


@pytest.mark.parametrize("ts", ["1e400", "-1e400", "nan", "inf", "9" * 30, "1" * 5000])
def test_a_ts_that_is_no_time_is_bad_input(ts: str) -> None:
    body = json.loads(fixture_bytes("slack", "im.json"))
    body["event"]["ts"] = ts
    with pytest.raises(InputError, match="is not a time"):
        parse_request(json.dumps(body).encode())


STAFF = "T061EG9R6:U0H2KJ4LX"
"""The colleague who answers in a customer's channel thread."""


@pytest.mark.parametrize(
    ("ignore", "name"),
    [
        ({STAFF}, "channel_reply_colleague.json"),
        ({"T061EG9R6:*"}, "channel_reply_colleague.json"),
        ({"T061EG9R6:*"}, "channel_top.json"),
        ({"T061EG9R6:U2147483697"}, "im.json"),
        ({"T061EG9R6:U2147483697"}, "im_changed.json"),
        ({"T061EG9R6:U2147483697"}, "im_deleted.json"),
        ({"T09GLOBEX1:*"}, "connect_guest.json"),
    ],
)
def test_messages_edits_and_deletions_by_ignored_users_are_ignored(
    ignore: set[str], name: str
) -> None:
    result = parse_request(fixture_bytes("slack", name), ignore=frozenset(ignore))
    assert (result.messages, result.edits, result.deliveries) == ([], [], [])
    assert result.ignored == ["ignored_user"]


@pytest.mark.parametrize(
    ("ignore", "name"),
    [
        ({STAFF}, "channel_top.json"),
        ({"T061EG9R6:*"}, "connect_guest.json"),  # a guest from the customer's workspace
        ({"T09GLOBEX1:U0H2KJ4LX"}, "channel_reply_colleague.json"),  # another workspace
    ],
)
def test_everyone_else_is_still_taken(ignore: set[str], name: str) -> None:
    assert len(parse_request(fixture_bytes("slack", name), ignore=frozenset(ignore)).messages) == 1


@pytest.mark.parametrize("entry", ["U0H2KJ4LX", ":U1", "T1:", "T1:U1:x", " T1:U1", ""])
def test_ignore_users_must_name_team_and_user(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        f'[connectors.slack]\nsigning_secret = "{SECRET}"\nignore_users = ["{entry}"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert any(p.startswith("connectors.slack.ignore_users") for p in caught.value.problems)


# --- the signature ------------------------------------------------------------------


def connector() -> SlackConnector:
    return SlackConnector(SlackSettings(Secret(SECRET)), ConnectorContext(ManualClock(NOW)))


def verify(body: bytes, headers: dict[str, str], *, received_at: datetime = NOW) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    connector().verify(WebhookRequest("POST", "https://x/", lowered, body, received_at))


def test_a_request_signed_within_five_minutes_is_verified() -> None:
    body = fixture_bytes("slack", "im.json")
    verify(body, signed(body, at=NOW - timedelta(seconds=300)))
    verify(body, signed(body, at=NOW + timedelta(seconds=300)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda b: signed(b + b" "), "invalid X-Slack-Signature"),
        (lambda b: signed(b, secret="another-secret"), "invalid X-Slack-Signature"),
        (lambda b: signed(b, at=NOW - timedelta(seconds=301)), "stale"),
        (lambda b: signed(b, at=NOW + timedelta(seconds=301)), "stale"),
        (lambda b: {"X-Slack-Request-Timestamp": str(int(NOW.timestamp()))}, "missing"),
        (lambda b: signed(b) | {"X-Slack-Request-Timestamp": "soon"}, "malformed"),
        (lambda b: signed(b) | {"X-Slack-Request-Timestamp": "9" * 400}, "malformed"),
        (lambda b: {}, "missing"),
    ],
    ids=[
        "tampered",
        "wrong_secret",
        "stale",
        "future",
        "unsigned",
        "bad_stamp",
        "huge_stamp",
        "bare",
    ],
)
def test_a_bad_signature_or_timestamp_is_unauthorized(make: Any, message: str) -> None:
    body = fixture_bytes("slack", "im.json")
    with pytest.raises(Unauthorized, match=message):
        verify(body, make(body))


# --- the webhook on the running app ----------------------------------------------------


async def post(client: Client, name: str, **extra: str) -> tuple[int, Any]:
    body = fixture_bytes("slack", name)
    return await post_webhook(client, "slack", body, signed(body) | extra)


async def test_url_verification_is_answered_with_the_challenge(client: Client) -> None:
    status, answer = await post(client, "url_verification.json")
    assert status == 200
    assert answer == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_a_retried_event_is_stored_once(client: Client) -> None:
    status, answer = await post(client, "im.json")
    assert (status, answer["accepted"]) == (200, 1)
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, again = await post(client, "im.json", **retry)
    assert (status, again["accepted"], again["duplicates"]) == (200, 0, 1)
    customer = await customer_of(client, MARIA)
    assert customer is not None
    assert customer["name"] == "Maria Lopez"
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hello, my invoice for November is wrong"


async def test_replies_land_in_the_conversation_their_parent_started(client: Client) -> None:
    _, top = await post(client, "channel_top.json")
    _, reply = await post(client, "channel_reply.json")
    _, with_file = await post(client, "file_share.json")
    _, other = await post(client, "channel_other_top.json")
    _, mention = await post(client, "channel_mention.json")
    assert [a["accepted"] for a in (top, reply, with_file, other)] == [1, 1, 1, 1]
    assert top["conversation_ids"] == reply["conversation_ids"] == with_file["conversation_ids"]
    assert other["conversation_ids"] != top["conversation_ids"]
    assert (mention["duplicates"], mention["conversation_ids"]) == (1, top["conversation_ids"])
    customer = await customer_of(client, OMAR)
    assert customer is not None
    entries = await history(client, customer["customer_id"])
    assert len(entries) == 4
    [shared] = [e for e in entries if e["attachments"]]
    assert shared["attachments"][0]["provider_id"] == "F0S43PZDF"


async def test_someone_else_replying_in_the_thread_never_becomes_the_customer(
    client: Client,
) -> None:
    _, top = await post(client, "channel_top.json")
    status, colleague = await post(client, "channel_reply_colleague.json")
    assert (status, colleague["accepted"]) == (200, 1)
    assert colleague["conversation_ids"] != top["conversation_ids"]
    customer = await customer_of(client, OMAR)
    other = await customer_of(client, "slack:T061EG9R6:U0H2KJ4LX")
    assert customer is not None
    assert other is not None
    assert other["customer_id"] != customer["customer_id"]
    assert [i["value"] for i in customer["identities"]] == ["T061EG9R6:U0G9QF9C6"]


async def test_a_direct_conversation_is_one_conversation_threaded_or_not(client: Client) -> None:
    _, first = await post(client, "im.json")
    _, reply = await post(client, "im_thread_reply.json")
    assert reply["accepted"] == 1
    assert reply["conversation_ids"] == first["conversation_ids"]


async def test_an_edit_changes_the_stored_text(client: Client) -> None:
    await post(client, "im.json")
    status, answer = await post(client, "im_changed.json")
    assert (status, answer["edited"], answer["accepted"]) == (200, 1, 0)
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["text"] == "Hello, my invoice for October is wrong"
    assert [r["text"] for r in entry["revisions"]] == ["Hello, my invoice for November is wrong"]


async def test_a_deletion_is_recorded_as_a_delivery_report(client: Client) -> None:
    await post(client, "im_thread_reply.json")
    status, answer = await post(client, "im_deleted.json")
    assert (status, answer["deliveries"]) == (200, 1)
    response = await client.get(
        "/v1/deliveries/slack/T061EG9R6:D024BE91L:1795341560.000300", headers=AUTH
    )
    [report] = (await response.json())["deliveries"]
    assert report["status"] == "deleted"
    customer = await customer_of(client, MARIA)
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


@pytest.mark.parametrize(
    "name", ["bot_message.json", "app_echo.json", "channel_join.json", "reaction_added.json"]
)
async def test_bot_and_system_events_are_acknowledged_and_store_nothing(
    client: Client, name: str
) -> None:
    status, answer = await post(client, name)
    assert (status, answer["accepted"], answer["ignored"]) == (200, 0, 1)
    assert await customer_of(client, OMAR) is None
    assert await customer_of(client, MARIA) is None


@pytest.mark.parametrize(
    "headers",
    [
        lambda b: signed(b + b"\n"),
        lambda b: signed(b, secret="wrong-secret"),
        lambda b: signed(b, at=NOW - timedelta(minutes=6)),
    ],
    ids=["tampered", "wrong_secret", "stale"],
)
async def test_a_bad_signature_is_401_and_stores_nothing(client: Client, headers: Any) -> None:
    body = fixture_bytes("slack", "im.json")
    status, answer = await post_webhook(client, "slack", body, headers(body))
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, MARIA)


async def test_a_signed_event_with_a_ts_that_is_no_time_is_400(client: Client) -> None:
    body = json.loads(fixture_bytes("slack", "im.json"))
    body["event"]["ts"] = "1e400"
    raw = json.dumps(body).encode()
    status, answer = await post_webhook(client, "slack", raw, signed(raw))
    assert (status, answer["error"]["code"]) == (400, "bad_request"), answer
    await assert_nothing_stored(client, MARIA)


async def test_the_inbox_is_the_workspace(client: Client) -> None:
    await post(client, "im.json")
    customer = await customer_of(client, MARIA)
    assert customer is not None
    [entry] = await history(client, customer["customer_id"])
    assert entry["attributes"]["inbox"] == "slack:T061EG9R6"


class TestStaff:
    """``ignore_users``: a colleague answering in a customer's thread is not a customer."""

    @pytest.fixture
    def policy(self) -> str:
        return f'[connectors.slack]\nsigning_secret = "{SECRET}"\nignore_users = ["{STAFF}"]\n'

    async def test_a_colleagues_reply_is_acknowledged_and_stores_nothing(
        self, client: Client
    ) -> None:
        _, top = await post(client, "channel_top.json")
        assert top["accepted"] == 1
        status, answer = await post(client, "channel_reply_colleague.json")
        assert (status, answer["accepted"], answer["ignored"]) == (200, 0, 1)
        assert await customer_of(client, f"slack:{STAFF}") is None
        customer = await customer_of(client, OMAR)
        assert customer is not None
        assert len(await history(client, customer["customer_id"])) == 1


async def test_slack_has_no_get_handshake(client: Client) -> None:
    response = await client.get("/v1/connectors/slack/webhook")
    assert response.status == 404


@pytest.mark.parametrize(
    "policy",
    [f'[http]\nmax_body_bytes = 300\n\n[connectors.slack]\nsigning_secret = "{SECRET}"\n'],
    ids=["limit_300"],
)
async def test_a_body_over_the_limit_is_413(client: Client) -> None:
    status, _ = await post(client, "im.json")
    assert status == 413
    assert await customer_of(client, MARIA) is None
