"""Visitor tokens and the connector's pure parts: signing, expiry on a manual clock,
tampering, the wrong key; frames into canonical messages; the settings' checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext
from connectors.webchat import WebChatConnector
from connectors.webchat import tokens as t
from connectors.webchat.frames import BadFrame, IdentifyFrame, MessageFrame, decode
from connectors.webchat.settings import WebChatSettings, normalize_origin
from router.clock import ManualClock
from router.errors import ConfigError, InvalidIdentity, Unauthorized
from router.settings import Secret, load

SECRET = "webchat-test-secret-0123456789abcdef"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
KEY = t.derive_key(SECRET)


def test_a_minted_token_verifies_until_it_expires_on_the_clock() -> None:
    clock = ManualClock(START)
    claims = t.claims("vis_1", now=clock.now(), ttl_s=3600, name="Ana", email="ana@example.com")
    token = t.mint(KEY, claims)
    assert token.startswith("wct.")
    assert t.verify(KEY, token, now=clock.now()) == claims
    clock.advance(3599)
    assert t.verify(KEY, token, now=clock.now()).visitor_id == "vis_1"
    clock.advance(1)
    with pytest.raises(Unauthorized, match="expired at 2026-11-22T11:00:00"):
        t.verify(KEY, token, now=clock.now())


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = t.mint(t.derive_key(SECRET + "x"), t.claims("vis_1", now=START, ttl_s=60))
    with pytest.raises(Unauthorized, match="bad signature"):
        t.verify(KEY, token, now=START)


def test_a_tampered_payload_is_refused() -> None:
    token = t.mint(KEY, t.claims("vis_1", now=START, ttl_s=60))
    payload, signature = token.removeprefix(t.PREFIX).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims |= {"sub": "vis_2", "exp": claims["exp"] + 86400}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="bad signature"):
        t.verify(KEY, f"{t.PREFIX}{forged}.{signature}", now=START)


@pytest.mark.parametrize(
    "token", ["", "wct.", "wct.abc", "agt.abc.def", "wct.a.b.c", "wct.ab$.cd", "Bearer x"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized, match="malformed visitor token"):
        t.verify(KEY, token, now=START)


def test_a_correctly_signed_but_unreadable_payload_is_refused() -> None:
    payload = base64.urlsafe_b64encode(b'{"sub": 1}').rstrip(b"=").decode()
    token = f"{t.PREFIX}{payload}.{t._sign(KEY, payload)}"
    with pytest.raises(Unauthorized, match="unreadable payload"):
        t.verify(KEY, token, now=START)


def test_claims_refuse_bad_ids_and_lifetimes() -> None:
    with pytest.raises(ValueError, match="visitor id"):
        t.claims("not a visitor id", now=START, ttl_s=60)
    with pytest.raises(ValueError, match="ttl_s"):
        t.claims("vis_1", now=START, ttl_s=0)


def connector(**overrides: Any) -> WebChatConnector:
    settings = WebChatSettings(secret=Secret(SECRET), **overrides)
    return WebChatConnector(settings, ConnectorContext(clock=ManualClock(START)))


def message_frame(text: str) -> MessageFrame:
    frame = decode(text)
    assert isinstance(frame, MessageFrame)
    return frame


def test_a_resumed_session_keeps_the_visitor_and_what_they_gave() -> None:
    chat = connector(token_ttl_s=600)
    first, visitor = chat.session(now=START, name="Ana", email="Ana@Example.COM")
    assert visitor.email == "ana@example.com"
    renewed, again = chat.session(now=START.replace(minute=5), resume=first)
    assert again.visitor_id == visitor.visitor_id
    assert (again.name, again.email) == ("Ana", "ana@example.com")
    assert again.exp == visitor.exp + 300
    assert chat.visitor(renewed, now=START).visitor_id == visitor.visitor_id
    with pytest.raises(InvalidIdentity):
        chat.session(now=START, email="not-an-address")


def test_identify_renews_the_token_with_the_typed_email() -> None:
    chat = connector()
    _, visitor = chat.session(now=START, name="Ana")
    token, identified = chat.identify(visitor, IdentifyFrame(email="a@b.example"), now=START)
    assert (identified.name, identified.email) == ("Ana", "a@b.example")
    assert chat.visitor(token, now=START) == identified


def test_a_message_frame_becomes_a_chat_message_of_the_visitor() -> None:
    chat = connector()
    _, visitor = chat.session(now=START, name="Ana", email="ana@example.com")
    data = base64.b64encode(b"PNG...").decode()
    frame = message_frame(
        json.dumps(
            {
                "type": "message",
                "id": "c-1",
                "text": "  Hello  ",
                "attachments": [
                    {"name": "a.png", "content_type": "image/png", "data": data},
                    {"name": "b.pdf", "url": "https://shop.example.com/b.pdf"},
                ],
            }
        )
    )
    parsed = chat.message(visitor, frame, now=START)
    [message] = parsed.messages
    assert (message.channel, message.source, message.thread) == ("chat", "webchat", visitor.sub)
    assert message.external_id == f"{visitor.visitor_id}:c-1"
    assert message.text == "Hello"
    assert message.sent_at == START
    assert message.sender.name == "Ana"
    kinds = [(i.kind, i.value, i.verified) for i in message.sender.identities]
    assert kinds == [("webchat", visitor.visitor_id, True), ("email", "ana@example.com", False)]
    stored, linked = message.attachments
    assert parsed.blobs == {stored.blob: b"PNG..."}
    assert (stored.size, stored.content_type) == (6, "image/png")
    assert linked.url == "https://shop.example.com/b.pdf"


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ({"text": "x" * 11}, "over the 10 limit"),
        ({"text": "   "}, "needs text or an attachment"),
        ({"attachments": [{"name": "a"}]}, "either a url or data"),
        ({"attachments": [{"name": "a", "url": "javascript:alert(1)"}]}, "http or https"),
        ({"attachments": [{"name": "a", "data": "%%%"}]}, "not base64"),
        ({"attachments": [{"name": "a", "data": "QUJDREVGRw=="}]}, "over the 4 byte limit"),
    ],
)
def test_bad_messages_are_refused_with_their_id(frame: dict[str, object], problem: str) -> None:
    chat = connector(max_message_chars=10, max_attachment_bytes=4)
    _, visitor = chat.session(now=START)
    parsed = message_frame(json.dumps({"type": "message", "id": "c-9", **frame}))
    with pytest.raises(BadFrame, match=problem) as refused:
        chat.message(visitor, parsed, now=START)
    assert refused.value.frame_id == "c-9"


def test_links_only_when_contents_are_off() -> None:
    chat = connector(max_attachment_bytes=0)
    _, visitor = chat.session(now=START)
    parsed = message_frame('{"type":"message","id":"1","attachments":[{"name":"a","data":"QQ=="}]}')
    with pytest.raises(BadFrame, match="links"):
        chat.message(visitor, parsed, now=START)


def test_origins_are_compared_normalized() -> None:
    assert normalize_origin("HTTPS://Shop.Example.com:443/") == "https://shop.example.com"
    assert normalize_origin("http://localhost:8080") == "http://localhost:8080"
    for bad in ("shop.example.com", "https://shop.example.com/path", "ftp://x.example", "null"):
        assert normalize_origin(bad) is None
    chat = connector(allowed_origins=("https://shop.example.com",))
    assert chat.origin_allowed("https://SHOP.example.com")
    assert not chat.origin_allowed("https://evil.example.com")
    assert not chat.origin_allowed(None)
    assert connector().origin_allowed(None)


def test_the_settings_name_each_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        '[connectors.webchat]\nsecret = "short"\ntoken_ttl_s = 0\n'
        'allowed_origins = ["https://ok.example", "https://bad.example/path"]\n'
    )
    with pytest.raises(ConfigError) as refused:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    problems = "\n".join(refused.value.problems)
    assert "connectors.webchat.secret" in problems
    assert "connectors.webchat.token_ttl_s" in problems
    assert "'https://bad.example/path'" in problems
    assert "ok.example" not in problems


def test_the_secret_is_required_and_masked(tmp_path: Path) -> None:
    env = {"OMNIROUTE_DATA_DIR": str(tmp_path), "OMNIROUTE_CONNECTORS_WEBCHAT_TOKEN_TTL_S": "60"}
    with pytest.raises(ConfigError, match=r"connectors\.webchat\.secret: required"):
        load(env=env)
    settings = load(env=env | {"OMNIROUTE_CONNECTORS_WEBCHAT_SECRET": SECRET})
    assert settings.connectors["webchat"].token_ttl_s == 60
    assert SECRET not in repr(settings.connectors["webchat"])
