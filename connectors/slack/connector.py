"""The Slack connector: ``POST /v1/connectors/slack/webhook`` is the app's Events API
Request URL."""

from __future__ import annotations

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
    hmac_hex,
    require_equal,
)
from connectors.slack.parse import parse_request
from connectors.slack.settings import SlackSettings
from router.errors import Unauthorized

MAX_SKEW_S = 300
"""Slack's advice: refuse a request whose timestamp is more than five minutes away."""


class SlackConnector(WebhookOnly):
    manifest = Manifest(
        name="slack",
        channel="chat",
        title="Slack (Events API)",
        settings=SlackSettings,
        docs="https://api.slack.com/authentication/verifying-requests-from-slack",
    )

    def __init__(self, settings: SlackSettings, context: ConnectorContext) -> None:
        self._secret = settings.signing_secret.get().encode()
        self._ignore = frozenset(settings.ignore_users)

    def verify(self, request: WebhookRequest) -> Verified:
        """``X-Slack-Signature`` is ``v0=`` + hex HMAC-SHA256 of ``v0:<timestamp>:<body>``;
        the timestamp must be within five minutes of the time it arrived."""
        stamp = request.header("X-Slack-Request-Timestamp")
        if stamp is None or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
            raise Unauthorized("missing or malformed X-Slack-Request-Timestamp")
        signed = b"v0:" + stamp.encode() + b":" + request.body
        expected = "v0=" + hmac_hex(self._secret, signed)
        require_equal(request.header("X-Slack-Signature"), expected, "X-Slack-Signature")
        if abs(request.received_at.timestamp() - int(stamp)) > MAX_SKEW_S:
            raise Unauthorized("X-Slack-Request-Timestamp is more than 5 minutes away (stale)")
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_request(request.body, ignore=self._ignore)
