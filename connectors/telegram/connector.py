"""The Telegram connector: ``POST /v1/connectors/telegram/webhook`` takes the updates a
bot's webhook delivers (``setWebhook`` with ``secret_token``)."""

from __future__ import annotations

from connectors.base import (
    ConnectorContext,
    Manifest,
    Parsed,
    Verified,
    WebhookOnly,
    WebhookRequest,
    require_equal,
)
from connectors.telegram.parse import parse_update
from connectors.telegram.settings import TelegramSettings

HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramConnector(WebhookOnly):
    manifest = Manifest(
        name="telegram",
        channel="social",
        title="Telegram (Bot API webhook)",
        settings=TelegramSettings,
        docs="https://core.telegram.org/bots/api#setwebhook",
    )

    def __init__(self, settings: TelegramSettings, context: ConnectorContext) -> None:
        self._secret = settings.secret_token.get()

    def verify(self, request: WebhookRequest) -> Verified:
        """Telegram signs nothing: it echoes the webhook's secret token in a header."""
        require_equal(request.header(HEADER), self._secret, HEADER)
        return Verified()

    async def parse(self, request: WebhookRequest) -> Parsed:
        return parse_update(request.body)
