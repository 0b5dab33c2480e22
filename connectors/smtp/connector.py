"""The ``smtp`` connector: an SMTP listener inside the daemon that stores each message
before it answers 250."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, Parsed, Reply, Verified, WebhookRequest
from connectors.smtp.listener import SmtpListener
from connectors.smtp.settings import SmtpSettings
from router.errors import NotFound

NO_WEBHOOK = "the smtp connector has no webhook: it listens for SMTP on its own port"


class SmtpConnector:
    manifest: ClassVar[Manifest] = Manifest(
        name="smtp",
        channel="email",
        title="Email by SMTP (a listener inside the daemon)",
        settings=SmtpSettings,
        webhook=False,
        docs="https://www.rfc-editor.org/rfc/rfc5321",
    )

    def __init__(self, settings: SmtpSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._listener = SmtpListener(settings, context.clock)

    def handshake(self, request: WebhookRequest) -> Reply:
        raise NotFound(NO_WEBHOOK)

    def verify(self, request: WebhookRequest) -> Verified:
        raise NotFound(NO_WEBHOOK)

    async def parse(self, request: WebhookRequest) -> Parsed:
        raise NotFound(NO_WEBHOOK)

    def service(self) -> SmtpListener:
        return self._listener
