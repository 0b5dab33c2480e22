"""Mailgun's request signature: ``signature`` = hex HMAC-SHA256(signing key, ``timestamp``
+ ``token``), the three given as form fields on route POSTs, or as the ``signature``
object of an event webhook's JSON.
https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks#securing-webhooks
"""

from __future__ import annotations

import msgspec

from connectors.base import hmac_hex
from connectors.forms import Form

JSON = "application/json"


class Signed(msgspec.Struct, frozen=True):
    timestamp: str = ""
    token: str = ""
    signature: str = ""


class _EventBody(msgspec.Struct):
    signature: Signed | None = None


def compute(signing_key: str, timestamp: str, token: str) -> str:
    return hmac_hex(signing_key.encode(), (timestamp + token).encode())


def from_form(form: Form) -> Signed:
    return Signed(
        timestamp=form.text("timestamp") or "",
        token=form.text("token") or "",
        signature=form.text("signature") or "",
    )


def from_json(body: bytes) -> Signed:
    """The ``signature`` object of an event webhook; empty when there is none."""
    try:
        found = msgspec.json.decode(body, type=_EventBody).signature
    except (msgspec.ValidationError, msgspec.DecodeError):
        found = None
    return found or Signed()
