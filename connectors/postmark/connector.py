"""The Postmark connector: ``POST /v1/connectors/postmark/webhook`` as a server's inbound
webhook URL, with HTTP basic auth credentials in it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import ClassVar

import msgspec
import structlog

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
)
from connectors.email import email_message, parse_email
from connectors.email.trust import announce
from connectors.email_hooks import check_basic_auth, with_attributes
from connectors.postmark.payload import VIA, Inbound, checks, fields
from connectors.postmark.settings import PostmarkSettings
from router.errors import InputError

log = structlog.get_logger("connectors.postmark")

REALM = "omniroute postmark webhook"
_decoder = msgspec.json.Decoder(Inbound)


class PostmarkConnector(WebhookOnly):
    manifest: ClassVar[Manifest] = Manifest(
        name="postmark",
        channel="email",
        title="Postmark (inbound email webhook)",
        settings=PostmarkSettings,
        docs="https://postmarkapp.com/developer/webhooks/inbound-webhook",
    )

    def __init__(self, settings: PostmarkSettings, context: ConnectorContext) -> None:
        if not settings.username or not settings.password:
            raise ValueError("username and password must not be empty")
        self.settings = settings
        self.options = settings.options
        announce(self.manifest.name, self.options, provider_verdicts=True)

    def verify(self, request: WebhookRequest) -> Verified:
        check_basic_auth(request, self.settings.username, self.settings.password, REALM)
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        """The JSON and the mail in it, parsed in a worker thread: a large mail must not
        hold up the event loop."""
        return await asyncio.to_thread(self._parse, request.body, request.received_at)

    def _parse(self, body: bytes, received_at: datetime) -> Parsed:
        inbound = decode(body)
        if inbound.record_type and inbound.record_type.lower() != "inbound":
            return Parsed(ignored=[f"record_type:{inbound.record_type[:32]}"])
        options = self.options
        if inbound.raw_email and self.settings.use_raw_email:
            raw = inbound.raw_email.encode("utf-8", "replace")
            found = checks(inbound, options.authserv_ids)
            parsed = parse_email(
                raw, options=options, received_at=received_at, via=VIA, checks=found
            )
        else:
            mail = fields(inbound, options.authserv_ids)
            parsed = email_message(mail, options=options, received_at=received_at, via=VIA)
        log.debug("postmark.parsed", raw=bool(inbound.raw_email), messages=len(parsed.messages))
        return with_attributes(parsed, {"postmark_message_id": inbound.message_id})


def decode(body: bytes) -> Inbound:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InputError(f"not a Postmark inbound webhook: {exc}") from None
    except msgspec.DecodeError:
        raise InputError("Postmark webhook body is not valid JSON") from None
