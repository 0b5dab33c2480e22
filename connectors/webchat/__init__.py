"""Web chat: a website's chat widget over a WebSocket (``/v1/chat/ws``)."""

from connectors.webchat.connector import WebChatConnector

__all__ = ["WebChatConnector"]
