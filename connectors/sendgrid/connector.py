"""The SendGrid connector: ``POST /v1/connectors/sendgrid/webhook`` as an Inbound Parse
destination URL, with HTTP basic auth credentials in it and/or a security policy that
signs each POST."""

from __future__ import annotations

import asyncio
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
from connectors.email.trust import announce
from connectors.email_hooks import check_basic_auth, check_fresh
from connectors.forms import Form, parse_form
from connectors.sendgrid import signature
from connectors.sendgrid.parse import parse
from connectors.sendgrid.settings import SendGridSettings
from router.errors import Unauthorized

log = structlog.get_logger("connectors.sendgrid")

REALM = "omniroute sendgrid webhook"


class SendGridConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="sendgrid",
        channel="email",
        title="SendGrid (Inbound Parse webhook)",
        settings=SendGridSettings,
        docs="https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook",
    )

    def __init__(self, settings: SendGridSettings, context: ConnectorContext) -> None:
        if bool(settings.username) != bool(settings.password):
            raise ValueError("set both username and password (HTTP basic auth), or neither")
        if not settings.username and not settings.verification_key:
            raise ValueError(
                "nothing to verify requests with: set username and password, "
                "verification_key, or both"
            )
        self.settings = settings
        self.options = settings.options
        key = settings.verification_key
        self._key = signature.load_key(key) if key else None
        announce(self.manifest.name, self.options, provider_verdicts=True)

    def verify(self, request: WebhookRequest) -> Verified:
        if self.settings.username:
            check_basic_auth(request, self.settings.username, self.settings.password, REALM)
        if self._key is not None:
            self._check_signature(request)
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        """The form and the mail in it, parsed in a worker thread: a large mail must not
        hold up the event loop."""
        form, parsed = await asyncio.to_thread(self._parse, request)
        log.debug("sendgrid.parsed", raw="email" in form, messages=len(parsed.messages))
        return parsed

    def _parse(self, request: WebhookRequest) -> tuple[Form, Parsed]:
        form = parse_form(request.body, request.header("Content-Type"))
        return form, parse(form, self.options, request.received_at)

    def _check_signature(self, request: WebhookRequest) -> None:
        assert self._key is not None
        given = request.header(signature.SIGNATURE)
        timestamp = request.header(signature.TIMESTAMP)
        if not given or not timestamp:
            raise Unauthorized(f"missing {signature.SIGNATURE} or {signature.TIMESTAMP}")
        if not signature.valid(self._key, timestamp, request.body, given):
            raise Unauthorized(f"invalid {signature.SIGNATURE}")
        if self.settings.max_age_s:
            check_fresh(
                timestamp, request.received_at, self.settings.max_age_s, signature.TIMESTAMP
            )
