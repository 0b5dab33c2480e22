"""Mailgun's request signature: ``signature`` = hex HMAC-SHA256(signing key, ``timestamp``
+ ``token``), the three given as form fields on route POSTs, or as the ``signature``
object of an event webhook's JSON. A subaccount's requests also carry
``parent-signature``: the same HMAC under the primary account's key.
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

from __future__ import annotations

import hmac

import msgspec

from connectors.base import hmac_hex
from connectors.forms import Form

JSON = "application/json"


class Signed(msgspec.Struct, frozen=True, rename={"parent_signature": "parent-signature"}):
    timestamp: str = ""
    token: str = ""
    signature: str = ""
    parent_signature: str = ""


class _EventBody(msgspec.Struct):
    signature: Signed | None = None


def compute(signing_key: str, timestamp: str, token: str) -> str:
    return hmac_hex(signing_key.encode(), (timestamp + token).encode())


def valid(signed: Signed, signing_key: str, parent_key: str) -> bool:
    """``signature`` under ``signing_key``, or ``parent-signature`` under ``parent_key``
    (an empty key checks nothing); constant-time comparisons."""
    return _matches(signed.signature, signing_key, signed) | _matches(
        signed.parent_signature, parent_key, signed
    )


def _matches(given: str, key: str, signed: Signed) -> bool:
    if not key or not given:
        return False
    expected = compute(key, signed.timestamp, signed.token)
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def from_form(form: Form) -> Signed:
    return Signed(
        timestamp=form.text("timestamp") or "",
        token=form.text("token") or "",
        signature=form.text("signature") or "",
        parent_signature=form.text("parent-signature") or "",
    )


def from_json(body: bytes) -> Signed:
    """The ``signature`` object of an event webhook; empty when there is none."""
    try:
        found = msgspec.json.decode(body, type=_EventBody).signature
    except (msgspec.ValidationError, msgspec.DecodeError):
        found = None
    return found or Signed()
