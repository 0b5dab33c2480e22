"""Instagram messaging: Meta's ``instagram`` webhook (direct messages to a professional
account)."""

from connectors.instagram.connector import InstagramConnector

__all__ = ["InstagramConnector"]
