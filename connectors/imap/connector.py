"""The ``imap`` connector: a poller that reads one mailbox and marks each message read
once it is stored."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, NoWebhook
from connectors.email.trust import announce
from connectors.imap.poller import ImapPoller
from connectors.imap.settings import ImapSettings


class ImapConnector(NoWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="imap",
        channel="email",
        title="Email from an IMAP mailbox (IDLE where the server has it)",
        settings=ImapSettings,
        webhook=False,
        docs="https://www.rfc-editor.org/rfc/rfc3501",
    )
    instead = "it reads its mailbox itself"

    def __init__(self, settings: ImapSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._poller = ImapPoller(settings, context.clock)
        announce(self.manifest.name, settings.options)

    def service(self) -> ImapPoller:
        return self._poller
