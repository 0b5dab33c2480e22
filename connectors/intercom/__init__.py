"""Intercom: customer conversations from an Intercom app's webhook subscription."""

from connectors.intercom.connector import IntercomConnector

__all__ = ["IntercomConnector"]
