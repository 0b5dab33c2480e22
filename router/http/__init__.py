"""The HTTP API (aiohttp): operations endpoints, the versioned ``/v1`` API, WebSockets."""
