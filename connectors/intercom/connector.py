"""The Intercom connector: ``POST /v1/connectors/intercom/webhook`` as an Intercom app's
webhook endpoint (Developer Hub > your app > Webhooks)."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Reply,
    Service,
    Verified,
    WebhookRequest,
    hmac_hex,
    require_equal,
)
from connectors.intercom.parse import parse_notification
from connectors.intercom.settings import IntercomSettings


class IntercomConnector:
    manifest: ClassVar[Manifest] = Manifest(
        name="intercom",
        channel="chat",
        title="Intercom (conversations from the Messenger)",
        settings=IntercomSettings,
        docs="https://developers.intercom.com/docs/references/webhooks/webhook-models",
    )

    def __init__(self, settings: IntercomSettings, context: ConnectorContext) -> None:
        if not settings.client_secret:
            raise ValueError("client_secret must not be empty")
        self.settings = settings

    def handshake(self, request: WebhookRequest) -> Reply:
        """Intercom checks the endpoint with a HEAD request when it is saved."""
        return Reply()

    def verify(self, request: WebhookRequest) -> Verified:
        """``X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body, keyed by the client
        secret>``."""
        given = request.header("X-Hub-Signature")
        digest = hmac_hex(self.settings.client_secret.get().encode(), request.body, "sha1")
        require_equal(given and given.strip().lower(), f"sha1={digest}", "X-Hub-Signature")
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_notification(request.body)

    def service(self) -> Service | None:
        return None
