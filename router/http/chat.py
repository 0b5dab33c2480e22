"""The web chat: ``POST /v1/chat/sessions`` (a signed visitor token) and the visitor's
socket ``GET /v1/chat/ws``; the ``webchat`` connector's settings."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Register the chat hub's start-up and clean-up with the app (``create_app``)."""
