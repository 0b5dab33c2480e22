"""Agent tokens: mint and verify, and every way a token can be wrong."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import agent_tokens
from router.agent_tokens import DEFAULT_TTL_S, MAX_TTL_S, derive_key, mint, verify
from router.errors import Unauthorized

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
KEY = derive_key("api-token")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _parts(token: str) -> tuple[str, str]:
    payload, signature = token.removeprefix("agt.").split(".")
    return payload, signature


def test_round_trip() -> None:
    minted = mint(KEY, "maria.lopez@acme", now=NOW)
    assert minted.token.startswith("agt.")
    assert minted.expires_at == NOW + timedelta(seconds=DEFAULT_TTL_S)
    claims = verify(KEY, minted.token, now=NOW + timedelta(days=29))
    assert claims.sub == "maria.lopez@acme"
    assert claims.iat == int(NOW.timestamp())
    assert claims.exp == int(minted.expires_at.timestamp())


@given(
    agent_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.@\-]{0,127}\Z"),
    ttl_s=st.integers(min_value=1, max_value=MAX_TTL_S),
)
def test_round_trip_any_agent_and_ttl(agent_id: str, ttl_s: int) -> None:
    minted = mint(KEY, agent_id, now=NOW, ttl_s=ttl_s)
    assert verify(KEY, minted.token, now=NOW + timedelta(seconds=ttl_s - 1)).sub == agent_id
    with pytest.raises(Unauthorized, match="expired"):
        verify(KEY, minted.token, now=NOW + timedelta(seconds=ttl_s))


def test_expired() -> None:
    minted = mint(KEY, "alice", now=NOW, ttl_s=60)
    with pytest.raises(Unauthorized, match=r"'alice' expired at 2026-11-22T10:01:00\+00:00"):
        verify(KEY, minted.token, now=NOW + timedelta(seconds=60))


def test_tampered_payload_is_refused() -> None:
    payload, signature = _parts(mint(KEY, "alice", now=NOW).token)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = _b64(json.dumps({**claims, "sub": "bob"}).encode())
    with pytest.raises(Unauthorized, match="bad signature"):
        verify(KEY, f"agt.{forged}.{signature}", now=NOW)
    longer = _b64(json.dumps({**claims, "exp": claims["exp"] + 10**6}).encode())
    with pytest.raises(Unauthorized, match="bad signature"):
        verify(KEY, f"agt.{longer}.{signature}", now=NOW)


def test_tampered_signature_is_refused() -> None:
    payload, signature = _parts(mint(KEY, "alice", now=NOW).token)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(Unauthorized, match="bad signature"):
        verify(KEY, f"agt.{payload}.{flipped}", now=NOW)
    with pytest.raises(Unauthorized, match="bad signature"):
        verify(KEY, f"agt.{payload}.{signature[:-2]}", now=NOW)


def test_rotating_the_api_token_revokes_agent_tokens() -> None:
    minted = mint(KEY, "alice", now=NOW)
    with pytest.raises(Unauthorized, match="bad signature"):
        verify(derive_key("rotated-api-token"), minted.token, now=NOW)


def test_key_is_not_the_api_token() -> None:
    assert derive_key("api-token") != b"api-token"
    assert len(derive_key("api-token")) == 32


@pytest.mark.parametrize(
    "token",
    [
        "",
        "agt.",
        "agt..",
        "agt.abc",
        "agt.abc.def.ghi",
        "jwt.abc.def",
        "agt.ab+c.def",
        "agt.abc.dé",
        "agt.abc.def ",
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(Unauthorized, match="malformed"):
        verify(KEY, token, now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"sub": "alice"}',
        b'{"sub": "alice", "iat": "x", "exp": 1}',
        b'{"sub": "-bad", "iat": 1, "exp": 9999999999}',
        b'{"sub": "alice", "iat": 1, "exp": 9999999999, "admin": true}',
        b"[]",
    ],
)
def test_signed_but_unreadable_payload_is_malformed(payload: bytes) -> None:
    """Only we can sign, but a bad payload must still be a clean 401, never a crash."""
    text = _b64(payload)
    token = f"agt.{text}.{agent_tokens._sign(KEY, text)}"
    with pytest.raises(Unauthorized, match="malformed"):
        verify(KEY, token, now=NOW)


def test_mint_refuses_bad_agent_ids_and_ttls() -> None:
    with pytest.raises(ValueError, match="agent id"):
        mint(KEY, "no spaces", now=NOW)
    with pytest.raises(ValueError, match="ttl_s"):
        mint(KEY, "alice", now=NOW, ttl_s=0)
    with pytest.raises(ValueError, match="ttl_s"):
        mint(KEY, "alice", now=NOW, ttl_s=MAX_TTL_S + 1)


@given(st.text() | st.text().map(lambda s: "agt." + s))
def test_any_string_is_refused_as_unauthorized_only(token: str) -> None:
    with pytest.raises(Unauthorized):
        verify(KEY, token, now=NOW)
