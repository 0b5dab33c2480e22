"""Postmark inbound webhook: email Postmark received and parsed, posted as JSON."""

from connectors.postmark.connector import PostmarkConnector

__all__ = ["PostmarkConnector"]
