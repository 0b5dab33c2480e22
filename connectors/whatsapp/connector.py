"""The WhatsApp Cloud API connector: Meta's signed webhook, parsed by ``parse``."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, Parsed, WebhookRequest
from connectors.meta import MetaWebhook
from connectors.whatsapp.parse import parse_body
from connectors.whatsapp.settings import WhatsAppSettings


class WhatsAppConnector(MetaWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="whatsapp",
        channel="social",
        title="WhatsApp Cloud API",
        settings=WhatsAppSettings,
        docs="https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks",
    )

    def __init__(self, settings: WhatsAppSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._phone_number_ids = settings.phone_number_ids

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_body(
            request.body,
            received_at=request.received_at,
            phone_number_ids=self._phone_number_ids,
        )
