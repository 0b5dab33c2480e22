"""The Facebook Messenger connector: Meta's signed ``page`` webhook."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, Parsed, WebhookRequest
from connectors.messenger.parse import MESSENGER, parse_body
from connectors.messenger.settings import MessengerSettings
from connectors.meta import MetaWebhook


class MessengerConnector(MetaWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="messenger",
        channel="social",
        title="Facebook Messenger",
        settings=MessengerSettings,
        docs="https://developers.facebook.com/docs/messenger-platform/webhooks",
    )

    def __init__(self, settings: MessengerSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._page_ids = settings.page_ids

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_body(
            request.body,
            platform=MESSENGER,
            received_at=request.received_at,
            accounts=self._page_ids,
        )
