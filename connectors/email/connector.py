"""The ``email`` connector: raw RFC 5322 messages posted to ``/v1/connectors/email/raw``."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, NoWebhook, Parsed, WebhookRequest
from connectors.email.mime import parse_email
from connectors.email.settings import EmailSettings
from connectors.email.trust import announce

RAW_PATH = "/v1/connectors/email/raw"


class EmailConnector(NoWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="email",
        channel="email",
        title="Email (raw RFC 5322 messages)",
        settings=EmailSettings,
        webhook=False,
        docs="https://www.rfc-editor.org/rfc/rfc5322",
    )
    instead = f"POST message/rfc822 to {RAW_PATH}"

    def __init__(self, settings: EmailSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.options = settings.options
        self._context = context
        announce(self.manifest.name, self.options)

    async def parse(self, request: WebhookRequest) -> Parsed:
        """The raw message in ``request.body`` (the raw endpoint, API token checked),
        parsed in a worker thread: a large mail must not hold up the event loop."""
        return await asyncio.to_thread(
            parse_email,
            request.body,
            options=self.options,
            received_at=request.received_at,
            via="raw",
        )
