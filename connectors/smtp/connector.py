"""The ``smtp`` connector: an SMTP listener inside the daemon that stores each message
before it answers 250."""

from __future__ import annotations

from typing import ClassVar

from connectors.base import ConnectorContext, Manifest, NoWebhook
from connectors.email.trust import announce
from connectors.smtp.listener import SmtpListener
from connectors.smtp.settings import SmtpSettings


class SmtpConnector(NoWebhook):
    manifest: ClassVar[Manifest] = Manifest(
        name="smtp",
        channel="email",
        title="Email by SMTP (a listener inside the daemon)",
        settings=SmtpSettings,
        webhook=False,
        docs="https://www.rfc-editor.org/rfc/rfc5321",
    )
    instead = "it listens for SMTP on its own port"

    def __init__(self, settings: SmtpSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self._listener = SmtpListener(settings, context.clock)
        announce(self.manifest.name, settings.options)

    def service(self) -> SmtpListener:
        return self._listener
