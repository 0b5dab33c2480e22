"""The X (Twitter) connector: ``/v1/connectors/twitter/webhook`` is the Account Activity
webhook URL (GET answers the CRC check, POST takes the deliveries)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import msgspec

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Reply,
    Service,
    Verified,
    WebhookRequest,
    require_equal,
)
from connectors.twitter.parse import parse_activity
from connectors.twitter.settings import TwitterSettings
from router.errors import InputError

HEADER = "x-twitter-webhooks-signature"
MAX_CRC_TOKEN = 255
CRC_TOKEN = re.compile(rf"[A-Za-z0-9_\-=+/]{{1,{MAX_CRC_TOKEN}}}")
"""What X sends as a ``crc_token``: a short base64 or URL-safe random string."""

_json = msgspec.json.Encoder()


class TwitterConnector:
    manifest = Manifest(
        name="twitter",
        channel="social",
        title="X / Twitter (Account Activity API)",
        settings=TwitterSettings,
        docs="https://docs.x.com/x-api/webhooks/introduction",
    )

    def __init__(self, settings: TwitterSettings, context: ConnectorContext) -> None:
        self._secret = settings.consumer_secret.get().encode()
        self._mentions = settings.mentions

    def handshake(self, request: WebhookRequest) -> Reply:
        """The CRC check: ``sha256=`` + base64 HMAC-SHA256 of ``crc_token``.

        The answer is the signature a POST of ``crc_token`` as its body would carry, and
        anyone may ask: only a token that can never be a delivery is answered (``CRC_TOKEN``
        has no ``{``, and every delivery is a JSON object), else anyone could have any
        forged body signed here."""
        token = request.query_value("crc_token")
        if not token:
            raise InputError("GET needs a crc_token (the X challenge-response check)")
        if not CRC_TOKEN.fullmatch(token):
            raise InputError(
                f"crc_token must be 1 to {MAX_CRC_TOKEN} characters of A-Z a-z 0-9 _ - = + /"
            )
        answer = {"response_token": self._signature(token.encode())}
        return Reply(body=_json.encode(answer), content_type="application/json")

    def verify(self, request: WebhookRequest) -> Verified:
        require_equal(request.header(HEADER), self._signature(request.body), HEADER)
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_activity(request.body, mentions=self._mentions)

    def service(self) -> Service | None:
        return None

    def _signature(self, data: bytes) -> str:
        digest = hmac.new(self._secret, data, hashlib.sha256).digest()
        return "sha256=" + base64.b64encode(digest).decode()
