"""Placeholder: filled in by the agent-tools work (issue 5)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
