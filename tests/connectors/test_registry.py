"""The plugin contract: every connector folder is registered, loads, has fixtures and a
README section; settings are validated like the rest of the configuration; a third-party
connector installed through the entry point group is served like a built-in one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connectors.base import Manifest
from connectors.registry import installed, load_settings
from router import cli
from router.errors import ConfigError
from router.settings import load
from tests.connectors.conftest import AUTH, Client, post_webhook

ROOT = Path(__file__).parents[2]
FOLDERS = sorted(p.name for p in (ROOT / "connectors").iterdir() if (p / "__init__.py").is_file())
LISTENERS = {"smtp", "imap", "webchat"}
"""Not webhooks: their tests drive a real SMTP client, dovecot, or a browser socket."""


def test_every_folder_is_registered_and_loads() -> None:
    found = installed()
    for name in FOLDERS:
        assert name in found, f"connectors/{name} is not in the omniroute.connectors group"
        assert found[name].error is None, found[name].error
        manifest = found[name].manifest
        assert isinstance(manifest, Manifest)
        assert manifest.name == name


def test_every_registered_builtin_has_a_folder() -> None:
    builtin = {n for n, i in installed().items() if i.target.startswith("connectors.")}
    assert builtin == set(FOLDERS)


@pytest.mark.parametrize("name", FOLDERS)
def test_every_connector_is_documented_and_has_fixtures(name: str) -> None:
    readme = (ROOT / "connectors" / "README.md").read_text()
    assert re.search(rf"^## `?{name}`?\b", readme, re.MULTILINE), f"no '## {name}' section"
    tests = ROOT / "tests" / "connectors" / name
    assert list(tests.glob("test_*.py")), f"no tests under tests/connectors/{name}"
    if name not in LISTENERS:
        assert any((tests / "fixtures").iterdir()), f"no fixtures for {name}"


def test_unknown_connector_and_bad_keys_are_named() -> None:
    problems: list[str] = []
    load_settings({"nosuch": {}, "telegram": {"secret_tokn": "x"}}, {}, problems)
    text = "\n".join(problems)
    assert "[connectors.nosuch]: unknown connector" in text
    assert "connectors.telegram.secret_tokn: unknown key" in text


def test_required_secret_missing_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text("[connectors.whatsapp]\n")
    with pytest.raises(ConfigError) as caught:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert any(
        p.startswith("connectors.whatsapp.") and "required" in p for p in caught.value.problems
    )


def test_environment_alone_configures_a_connector(tmp_path: Path) -> None:
    env = {
        "OMNIROUTE_DATA_DIR": str(tmp_path),
        "OMNIROUTE_CONNECTORS_TELEGRAM_SECRET_TOKEN": "s3cret-token",
    }
    settings = load(env=env)
    assert "telegram" in settings.connectors
    assert "s3cret" not in repr(settings.connectors["telegram"])


def test_cli_lists_installed_and_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIROUTE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OMNIROUTE_CONNECTORS_TELEGRAM_SECRET_TOKEN", "s3cret-token")
    monkeypatch.setenv("OMNIROUTE_HTTP_PUBLIC_URL", "https://omni.example.com")
    assert cli.main(["connectors", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["connectors"]}
    assert set(FOLDERS) <= set(rows)
    assert rows["telegram"]["configured"] is True
    assert rows["slack"]["configured"] is False
    assert rows["telegram"]["webhook"] == (
        "https://omni.example.com/v1/connectors/telegram/webhook"
    )


# --- a third-party connector -----------------------------------------------------------


@pytest.fixture
def policy(acme_installed: None) -> str:
    return '[connectors.acme]\ntoken = "acme-token"\n'


async def test_a_third_party_connector_is_served(client: Client) -> None:
    body = json.dumps({"id": "a-1", "user": "u-77", "text": "hello from Acme"}).encode()
    status, answer = await post_webhook(client, "acme", body, {"X-Acme-Token": "acme-token"})
    assert status == 200, answer
    assert answer["accepted"] == 1
    status, answer = await post_webhook(client, "acme", body, {"X-Acme-Token": "wrong"})
    assert status == 401
    assert answer["error"]["code"] == "unauthorized"
    status, answer = await post_webhook(client, "acme", b"{", {"X-Acme-Token": "acme-token"})
    assert status == 400
    response = await client.get("/v1/connectors", headers=AUTH)
    names = [c["name"] for c in (await response.json())["connectors"]]
    assert names == ["acme"]


async def test_unconfigured_connector_is_404(client: Client) -> None:
    status, answer = await post_webhook(client, "slack", b"{}", {})
    assert status == 404
    assert answer["error"]["code"] == "not_found"


def test_check_across_keys_is_reported_at_load(tmp_path: Path) -> None:
    """What a connector's constructor refuses stops ``check-config`` too, not only start-up."""
    path = tmp_path / "omniroute.toml"
    path.write_text("[connectors.smtp]\nport = 2525\n")
    with pytest.raises(ConfigError) as caught:
        load(path, env={"OMNIROUTE_DATA_DIR": str(tmp_path)})
    assert any(p.startswith("[connectors.smtp]: set accept_domains") for p in caught.value.problems)
