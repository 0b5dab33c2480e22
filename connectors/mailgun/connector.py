"""The Mailgun connector: ``POST /v1/connectors/mailgun/webhook`` as a route's
``forward()`` URL (``...webhook?format=mime`` for the raw MIME variant) or its
``store(notify=...)`` URL."""

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
    require_equal,
)
from connectors.email_hooks import check_fresh
from connectors.forms import Form, media_type, parse_form
from connectors.mailgun import signature
from connectors.mailgun.parse import event_name, parse
from connectors.mailgun.settings import MailgunSettings
from router.errors import InputError, Unauthorized

log = structlog.get_logger("connectors.mailgun")


class MailgunConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="mailgun",
        channel="email",
        title="Mailgun (inbound routes: forward or store and notify)",
        settings=MailgunSettings,
        docs="https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/receive-http",
    )

    def __init__(self, settings: MailgunSettings, context: ConnectorContext) -> None:
        if not settings.signing_key:
            raise ValueError("signing_key must not be empty")
        self.settings = settings
        self.options = settings.options

    def verify(self, request: WebhookRequest) -> Verified:
        """The signature over ``timestamp`` + ``token``, a fresh ``timestamp``, and the
        ``token`` as the nonce: the daemon refuses it when seen with another body."""
        signed = self._signed(request)
        if not signed.timestamp or not signed.token:
            raise Unauthorized("missing Mailgun signature fields (timestamp, token, signature)")
        expected = signature.compute(
            self.settings.signing_key.get(), signed.timestamp, signed.token
        )
        require_equal(signed.signature or None, expected, "Mailgun signature")
        max_age_s = self.settings.max_age_s
        check_fresh(signed.timestamp, request.received_at, max_age_s, "Mailgun timestamp")
        return Verified(nonce=signed.token, nonce_ttl_s=2.0 * max_age_s)

    async def parse(self, request: WebhookRequest) -> Parsed:
        if _is_json(request):
            return Parsed(ignored=[f"event:{event_name(request.body)}"])
        parsed = parse(_form(request), self.options, request.received_at)
        log.debug("mailgun.parsed", messages=len(parsed.messages))
        return parsed

    def _signed(self, request: WebhookRequest) -> signature.Signed:
        if _is_json(request):
            return signature.from_json(request.body)
        try:
            return signature.from_form(_form(request))
        except InputError as exc:
            raise Unauthorized(f"no Mailgun signature: {exc.message}") from None


def _is_json(request: WebhookRequest) -> bool:
    return media_type(request.header("Content-Type")) == signature.JSON


def _form(request: WebhookRequest) -> Form:
    return parse_form(request.body, request.header("Content-Type"))
