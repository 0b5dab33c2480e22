"""The Postmark connector: ``POST /v1/connectors/postmark/webhook`` as a server's inbound
webhook URL, with HTTP basic auth credentials in it."""

from __future__ import annotations

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
from connectors.email_hooks import check_basic_auth, with_attributes
from connectors.postmark.payload import Inbound, fields
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

    def verify(self, request: WebhookRequest) -> Verified:
        check_basic_auth(request, self.settings.username, self.settings.password, REALM)
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        inbound = decode(request.body)
        if inbound.record_type and inbound.record_type.lower() != "inbound":
            return Parsed(ignored=[f"record_type:{inbound.record_type[:32]}"])
        received_at = request.received_at
        if inbound.raw_email and self.settings.use_raw_email:
            raw = inbound.raw_email.encode("utf-8", "replace")
            parsed = parse_email(raw, options=self.options, received_at=received_at, via="postmark")
        else:
            parsed = email_message(
                fields(inbound), options=self.options, received_at=received_at, via="postmark"
            )
        log.debug("postmark.parsed", raw=bool(inbound.raw_email), messages=len(parsed.messages))
        return with_attributes(parsed, {"postmark_message_id": inbound.message_id})


def decode(body: bytes) -> Inbound:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InputError(f"not a Postmark inbound webhook: {exc}") from None
    except msgspec.DecodeError:
        raise InputError("Postmark webhook body is not valid JSON") from None
