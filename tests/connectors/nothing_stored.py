"""``assert_nothing_stored``: what a refused webhook request (401, 413) must leave behind,
which is nothing at all."""

from __future__ import annotations

from router.http.keys import SETTINGS
from tests.connectors.conftest import AUTH, Client, customer_of, quarantine


async def assert_nothing_stored(client: Client, *identities: str) -> None:
    """No customer (so no history) for any of ``identities`` (``kind:value``), an empty
    quarantine, no file under the attachments directory, and no work waiting in any
    queue."""
    for identity in identities:
        assert await customer_of(client, identity) is None, f"{identity} was stored"
    held = await quarantine(client)
    assert held == [], f"quarantined: {held}"
    attachments = client.app[SETTINGS].data.attachments
    files = [p for p in attachments.rglob("*") if p.is_file()] if attachments.exists() else []
    assert files == [], f"files written: {files}"
    response = await client.get("/v1/queues", headers=AUTH)
    assert response.status == 200, await response.text()
    waiting = {q["name"]: q["depth"] for q in (await response.json())["queues"] if q["depth"]}
    assert waiting == {}, f"work queued: {waiting}"
