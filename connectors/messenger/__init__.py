"""Facebook Messenger: Meta's ``page`` webhook (the Messenger Platform format, which
``connectors.instagram`` shares)."""

from connectors.messenger.connector import MessengerConnector

__all__ = ["MessengerConnector"]
