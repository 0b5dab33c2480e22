"""What the Meta connectors' tests (``whatsapp``, ``messenger``, ``instagram``) share: the
test app's secret and verify token, the policy that turns a connector on with them, and
a body signed and posted as Meta does it."""

from __future__ import annotations

from typing import Any

from connectors.meta import signature
from tests.connectors.conftest import Client, fixture_bytes, post_webhook

SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"


def policy_for(connector: str) -> str:
    return f'[connectors.{connector}]\napp_secret = "{SECRET}"\nverify_token = "{VERIFY_TOKEN}"\n'


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers Meta sends with ``body``: its ``X-Hub-Signature-256``."""
    return {"X-Hub-Signature-256": signature(body, secret), "Content-Type": "application/json"}


async def post_fixture(client: Client, connector: str, name: str) -> tuple[int, Any]:
    """The connector's recorded ``fixtures/<name>``, signed, posted to its webhook."""
    body = fixture_bytes(connector, name)
    return await post_webhook(client, connector, body, signed(body))
