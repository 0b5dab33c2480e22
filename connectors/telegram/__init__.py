"""Telegram Bot API webhooks: one ``Update`` per request."""

from connectors.telegram.connector import TelegramConnector

__all__ = ["TelegramConnector"]
