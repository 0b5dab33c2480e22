"""Intercom: recorded webhook notifications, signed in the test with the test client
secret (``X-Hub-Signature: sha1=<hex>``), parsed and posted to the running app."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.base import ConnectorContext, Parsed, WebhookRequest
from connectors.intercom import IntercomConnector
from connectors.intercom.html import to_text
from connectors.intercom.parse import parse_notification
from connectors.intercom.settings import IntercomSettings
from router.clock import ManualClock
from router.errors import InputError, Unauthorized
from router.settings import Secret
from tests.connectors.conftest import (
    Client,
    customer_of,
    fixture_bytes,
    history,
    post_webhook,
)
from tests.connectors.nothing_stored import assert_nothing_stored

SECRET = "intercom-test-client-secret"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LEAD = "intercom:6762f0b71bb69f9f2193bb83"
USER = "intercom:5f7c1a2b3c4d5e6f7a8b9c0d"


@pytest.fixture
def policy() -> str:
    return f'[connectors.intercom]\nclient_secret = "{SECRET}"\n'


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": f"sha1={digest}"}


def connector() -> IntercomConnector:
    settings = IntercomSettings(client_secret=Secret(SECRET))
    return IntercomConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    lower = {k.lower(): v for k, v in headers.items()}
    return WebhookRequest("POST", "https://omni.example.com/", lower, body, NOW)


def parse(name: str) -> Parsed:
    return parse_notification(fixture_bytes("intercom", name))


# --- HTML bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (
            "<p>Hi there,</p><p>my <b>order</b> &amp; invoice<br>are wrong.</p>",
            "Hi there,\nmy order & invoice\nare wrong.",
        ),
        ("<p>one</p>\n  <p><br></p><p>two</p>", "one\n\ntwo"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        (
            '<p>See <a href="https://x.example/o/1">the order</a></p>',
            "See the order (https://x.example/o/1)",
        ),
        ('<p><a href="https://x.example">https://x.example</a></p>', "https://x.example"),
        ("I <3 plain text\nfrom API 2.15", "I <3 plain text\nfrom API 2.15"),
    ],
)
def test_html_bodies_read_as_text_with_their_line_breaks(html: str, text: str) -> None:
    assert to_text(html)[0] == text


def test_pasted_images_are_found() -> None:
    _, images = to_text('<p>look</p><div><img src="https://cdn.example/i/a.png"></div>')
    assert images == ["https://cdn.example/i/a.png"]


# --- verify ----------------------------------------------------------------------------


def test_verify_accepts_the_signed_body() -> None:
    body = fixture_bytes("intercom", "created.json")
    connector().verify(request(body, signed(body)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda body: {}, "missing X-Hub-Signature"),
        (lambda body: signed(body, secret="wrong-secret"), "invalid X-Hub-Signature"),
        (lambda body: signed(body.replace(b"twice", b"once")), "invalid X-Hub-Signature"),
        (lambda body: {"X-Hub-Signature": signed(body)["X-Hub-Signature"][5:]}, "invalid"),
    ],
    ids=["unsigned", "wrong-secret", "tampered", "no-sha1-prefix"],
)
def test_verify_refuses_bad_signatures(
    make: Callable[[bytes], dict[str, str]], message: str
) -> None:
    body = fixture_bytes("intercom", "created.json")
    with pytest.raises(Unauthorized, match=message):
        connector().verify(request(body, make(body)))


def test_an_empty_client_secret_is_refused_at_start_up() -> None:
    settings = IntercomSettings(client_secret=Secret(""))
    with pytest.raises(ValueError, match="client_secret"):
        IntercomConnector(settings, ConnectorContext(clock=ManualClock(NOW)))


# --- parse -----------------------------------------------------------------------------


def test_a_new_conversation_is_its_source_message() -> None:
    [message] = parse("created.json").messages
    assert message.channel == "chat"
    assert message.source == "intercom"
    assert message.external_id == "source:2174951872"
    assert message.thread == "8231"
    assert message.text == "Hi, I was charged twice for order A-1001.\n" + (
        "Can you refund one of the charges?"
    )
    assert message.sent_at == datetime(2026, 11, 22, 9, 58, tzinfo=UTC)
    assert message.sender.name == "Maria Lopez"
    kinds = [(i.kind, i.value, i.verified) for i in message.sender.identities]
    assert kinds == [
        ("intercom", "6762f0b71bb69f9f2193bb83", True),
        ("email", "maria.lopez@example.com", False),
    ]
    assert message.attributes["page_url"] == "https://shop.example.com/orders/A-1001"
    assert message.inbox == "intercom:a86dr8yl"


def test_without_an_app_id_there_is_no_inbox_and_an_absurd_time_is_none() -> None:
    note = json.loads(fixture_bytes("intercom", "created.json"))
    del note["app_id"]
    note["data"]["item"]["created_at"] = 10**30
    [message] = parse_notification(json.dumps(note).encode()).messages
    assert (message.inbox, message.sent_at) == (None, None)


def test_a_reply_is_the_customers_part_with_its_attachments() -> None:
    [message] = parse("replied.json").messages
    assert message.external_id == "part:31894521077"
    assert message.thread == "8231"
    assert message.text == "Here is the bank statement & a screenshot:"
    pdf, image = message.attachments
    assert (pdf.name, pdf.content_type, pdf.size) == (
        "statement-nov.pdf",
        "application/pdf",
        48213,
    )
    assert (image.name, image.content_type, image.inline) == (
        "screenshot.png",
        "image/png",
        True,
    )


@pytest.mark.parametrize(
    ("name", "ignored"),
    [
        ("admin_replied.json", "topic:conversation.admin.replied"),
        ("bot_replied.json", "conversation.user.replied:no_customer_message"),
        ("ping.json", "topic:ping"),
    ],
)
def test_teammates_bots_and_other_topics_are_ignored(name: str, ignored: str) -> None:
    parsed = parse(name)
    assert parsed.messages == []
    assert parsed.ignored == [ignored]


def test_a_typed_address_that_is_no_address_is_left_out() -> None:
    note = json.loads(fixture_bytes("intercom", "created.json"))
    note["data"]["item"]["source"]["author"]["email"] = "maria at example"
    [message] = parse_notification(json.dumps(note).encode()).messages
    assert [i.kind for i in message.sender.identities] == ["intercom"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "not an Intercom notification"),
        (b'{"type": "notification_event"}', "not an Intercom notification"),
        (b'{"type": "event", "topic": "ping"}', "type 'event'"),
        (b'{"topic": "conversation.user.created"}', "no data.item"),
        (
            b'{"topic": "conversation.user.created", "data": {"item": {"id": 5}}}',
            "not an Intercom conversation",
        ),
    ],
)
def test_bodies_that_are_not_notifications_are_input_errors(body: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_notification(body)


def test_a_customer_part_without_an_author_id_is_an_input_error() -> None:
    note = json.loads(fixture_bytes("intercom", "replied.json"))
    del note["data"]["item"]["conversation_parts"]["conversation_parts"][0]["author"]["id"]
    with pytest.raises(InputError, match="author has no id"):
        parse_notification(json.dumps(note).encode())


# --- the running app -------------------------------------------------------------------


async def post(client: Client, name: str) -> tuple[int, dict[str, object]]:
    body = fixture_bytes("intercom", name)
    status, answer = await post_webhook(client, "intercom", body, signed(body))
    assert isinstance(answer, dict)
    return status, answer


async def test_a_conversation_and_its_reply_are_one_thread(client: Client) -> None:
    status, answer = await post(client, "created.json")
    assert (status, answer["accepted"]) == (200, 1)
    status, answer = await post(client, "replied.json")
    assert (status, answer["accepted"]) == (200, 1)
    customer = await customer_of(client, LEAD)
    assert customer is not None
    assert customer["name"] == "Maria Lopez"
    verified = {(i["kind"], i["value"]) for i in customer["identities"] if i["verified"]}
    assert verified == {("intercom", "6762f0b71bb69f9f2193bb83")}
    assert await customer_of(client, "email:maria.lopez@example.com") is None
    entries = await history(client, customer["customer_id"])
    assert [e["text"][:18] for e in entries] == ["Here is the bank s", "Hi, I was charged "]
    assert len({e["conversation_id"] for e in entries}) == 1
    assert [a["name"] for a in entries[0]["attachments"]] == ["statement-nov.pdf", "screenshot.png"]
    assert {e["attributes"]["inbox"] for e in entries} == {"intercom:a86dr8yl"}


async def test_a_redelivered_notification_is_stored_once(client: Client) -> None:
    assert (await post(client, "replied.json"))[1]["accepted"] == 1
    status, answer = await post(client, "replied_retry.json")
    assert (status, answer["accepted"], answer["duplicates"]) == (200, 0, 1)
    customer = await customer_of(client, LEAD)
    assert customer is not None
    assert len(await history(client, customer["customer_id"])) == 1


async def test_a_similar_name_is_another_customer(client: Client) -> None:
    await post(client, "created.json")
    await post(client, "user_created.json")
    lead, user = await customer_of(client, LEAD), await customer_of(client, USER)
    assert lead is not None
    assert user is not None
    assert lead["customer_id"] != user["customer_id"]


@pytest.mark.parametrize("name", ["admin_replied.json", "bot_replied.json", "ping.json"])
async def test_ignored_notifications_are_acknowledged_and_store_nothing(
    client: Client, name: str
) -> None:
    status, answer = await post(client, name)
    assert (status, answer["accepted"], answer["ignored"]) == (200, 0, 1)
    assert await customer_of(client, LEAD) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed(fixture_bytes("intercom", "created.json"), secret="wrong-secret"),
        signed(fixture_bytes("intercom", "created.json").replace(b"twice", b"once")),
    ],
    ids=["unsigned", "wrong-secret", "tampered"],
)
async def test_bad_signatures_get_401_and_store_nothing(
    client: Client, headers: dict[str, str]
) -> None:
    body = fixture_bytes("intercom", "created.json")
    status, answer = await post_webhook(client, "intercom", body, headers)
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    await assert_nothing_stored(client, LEAD)


async def test_a_signed_body_that_is_not_json_is_400(client: Client) -> None:
    body = b"topic=ping"
    status, answer = await post_webhook(client, "intercom", body, signed(body))
    assert status == 400
    assert answer["error"]["code"] == "bad_request"


async def test_head_and_get_answer_200_for_intercoms_url_check(client: Client) -> None:
    response = await client.head("/v1/connectors/intercom/webhook")
    assert response.status == 200
    response = await client.get("/v1/connectors/intercom/webhook")
    assert response.status == 200


class TestBodyLimit:
    @pytest.fixture
    def policy(self) -> str:
        return f'[connectors.intercom]\nclient_secret = "{SECRET}"\nmax_body_bytes = 4096\n'

    async def test_a_body_over_the_limit_is_413(self, client: Client) -> None:
        body = json.dumps({"topic": "ping", "padding": "x" * 5000}).encode()
        status, _ = await post_webhook(client, "intercom", body, signed(body))
        assert status == 413
        status, _ = await post(client, "ping.json")
        assert status == 200
