"""Connector tests: recorded provider payloads (``<name>/fixtures/``) posted to the
running app (``aiohttp_client(create_app(settings))``, the real lifecycle).

A test module names its connector's configuration by overriding ``policy`` (the TOML
text, e.g. ``[connectors.whatsapp]`` with the test secrets). Connector tests run on the
embedded default unless a module overrides ``backend``: the stores underneath are
covered on both backends by the contract suites, and ``test_identity.py`` runs the
cross-channel identity checks on both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import (  # noqa: F401 — fixtures shared with the HTTP tests
    AUTH,
    Client,
    app_client,
    client,
    clock,
    env,
    settings,
)

HERE = Path(__file__).parent

__all__ = [
    "AUTH",
    "Client",
    "customer_of",
    "fixture_bytes",
    "fixture_json",
    "history",
    "post_webhook",
]


@pytest.fixture
def backend() -> str:
    return "embedded"


@pytest.fixture
def policy() -> str | None:
    return None


@pytest.fixture
def acme_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the test plugin as a distribution would: a dist-info with entry points."""
    site = tmp_path / "site"
    dist = site / "acme_omniroute-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-omniroute\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[omniroute.connectors]\nacme = tests.connectors.plugin.acme_connector:AcmeConnector\n"
    )
    monkeypatch.syspath_prepend(str(site))


def fixture_bytes(connector: str, name: str) -> bytes:
    """A recorded payload, byte for byte (signatures are computed over these bytes)."""
    return (HERE / connector / "fixtures" / name).read_bytes()


def fixture_json(connector: str, name: str) -> Any:
    return json.loads(fixture_bytes(connector, name))


async def post_webhook(
    http: Client, name: str, body: bytes, headers: dict[str, str], *, query: str = ""
) -> tuple[int, Any]:
    """POST to ``/v1/connectors/{name}/webhook``; the status and the decoded answer."""
    url = f"/v1/connectors/{name}/webhook" + (f"?{query}" if query else "")
    response = await http.post(url, data=body, headers=headers)
    text = await response.text()
    try:
        answer: Any = json.loads(text) if text else None
    except json.JSONDecodeError:
        answer = text
    return response.status, answer


async def customer_of(http: Client, identity: str) -> dict[str, Any] | None:
    """The live customer owning the verified ``kind:value``, or None."""
    response = await http.get("/v1/customers", params={"identity": identity}, headers=AUTH)
    assert response.status == 200, await response.text()
    found = (await response.json())["customers"]
    return found[0] if found else None


async def history(http: Client, customer_id: str) -> list[dict[str, Any]]:
    """The customer's whole history, newest first."""
    response = await http.get(
        f"/v1/customers/{customer_id}/history", params={"limit": "200"}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    return list((await response.json())["messages"])


async def quarantine(http: Client) -> list[dict[str, Any]]:
    response = await http.get("/v1/quarantine", headers=AUTH)
    assert response.status == 200, await response.text()
    return list((await response.json())["entries"])
