"""The Instagram messaging connector: Meta's signed ``instagram`` webhook, in the
Messenger Platform format (parsed by ``connectors.messenger.parse``)."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, Parsed, WebhookRequest
from connectors.instagram.settings import InstagramSettings
from connectors.messenger.parse import INSTAGRAM, parse_body
from connectors.meta import MetaWebhook


class InstagramConnector(MetaWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="instagram",
        channel="social",
        title="Instagram messaging",
        settings=InstagramSettings,
        docs="https://developers.facebook.com/docs/instagram-platform/webhooks",
    )

    def __init__(self, settings: InstagramSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._account_ids = settings.account_ids

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_body(
            request.body,
            platform=INSTAGRAM,
            received_at=request.received_at,
            accounts=self._account_ids,
        )
