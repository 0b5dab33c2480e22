"""The ``imap`` connector: a poller that reads one mailbox and marks each message read
once it is stored."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, Parsed, Reply, Verified, WebhookRequest
from connectors.imap.poller import ImapPoller
from connectors.imap.settings import ImapSettings
from router.errors import NotFound

NO_WEBHOOK = "the imap connector has no webhook: it reads its mailbox itself"


class ImapConnector:
    manifest: ClassVar[Manifest] = Manifest(
        name="imap",
        channel="email",
        title="Email from an IMAP mailbox (IDLE where the server has it)",
        settings=ImapSettings,
        webhook=False,
        docs="https://www.rfc-editor.org/rfc/rfc3501",
    )

    def __init__(self, settings: ImapSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._poller = ImapPoller(settings, context.clock)

    def handshake(self, request: WebhookRequest) -> Reply:
        raise NotFound(NO_WEBHOOK)

    def verify(self, request: WebhookRequest) -> Verified:
        raise NotFound(NO_WEBHOOK)

    async def parse(self, request: WebhookRequest) -> Parsed:
        raise NotFound(NO_WEBHOOK)

    def service(self) -> ImapPoller:
        return self._poller
