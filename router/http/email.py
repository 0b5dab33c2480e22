"""``POST /v1/connectors/email/raw``: one RFC 5322 message (``message/rfc822``), for a
mail server's pipe or a script (API token). Parsed by the ``email`` connector."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
