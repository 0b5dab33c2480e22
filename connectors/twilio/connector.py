"""The Twilio connector: ``POST /v1/connectors/twilio/webhook`` as a phone number's (or
Messaging Service's) incoming-message webhook and as the status callback URL."""

from __future__ import annotations

from typing import ClassVar

import structlog

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
)
from connectors.twilio import signature
from connectors.twilio.parse import parse_form
from connectors.twilio.settings import TwilioSettings
from router.errors import Unauthorized

log = structlog.get_logger("connectors.twilio")


class TwilioConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="twilio",
        channel="sms",
        title="Twilio (SMS, MMS and WhatsApp)",
        settings=TwilioSettings,
        docs="https://www.twilio.com/docs/messaging/guides/webhook-request",
    )

    def __init__(self, settings: TwilioSettings, context: ConnectorContext) -> None:
        if not settings.auth_token:
            raise ValueError("auth_token must not be empty")
        self.settings = settings

    def verify(self, request: WebhookRequest) -> Verified:
        given = request.header("X-Twilio-Signature")
        if not given:
            raise Unauthorized("missing X-Twilio-Signature")
        url = self.settings.webhook_url or request.url
        if not signature.valid(self.settings.auth_token.get(), url, request.form(), given):
            log.debug("twilio.signature_mismatch", url=url)
            raise Unauthorized(
                "invalid X-Twilio-Signature (check auth_token, and that webhook_url is "
                "exactly the URL configured in Twilio)"
            )
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_form(request.form(), request.body, request.received_at)
