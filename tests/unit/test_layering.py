"""The dependency rule: domain and routing logic import no I/O library and no backend."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTER = Path(__file__).parents[2] / "router"
PURE = [
    "models.py",
    "identity.py",
    "routing.py",
    "urgency.py",
    "workitem.py",
    "clock.py",
    "errors.py",
    "ids.py",
    "ports.py",
    "pipeline.py",
    "dispatcher.py",
    "batching.py",
    "calendars.py",
    "sla.py",
    "lifecycle.py",
    "rules.py",
    "rules_config.py",
    "language.py",
    "policy.py",
    "queue_spec.py",
    "conversations.py",
    "agents.py",
    "background.py",
    "presence.py",
    "agent_tokens.py",
    "signed_tokens.py",
    "ratelimit.py",
    "ledger.py",
    "simulate/adapter.py",
    "simulate/agents.py",
    "simulate/backlog.py",
    "simulate/engine.py",
    "simulate/generate.py",
    "simulate/prepare.py",
    "simulate/report.py",
    "simulate/simulation.py",
    "simulate/traffic.py",
]
FORBIDDEN = (
    "aiohttp",
    "aio_pika",
    "aiormq",
    "redis",
    "sqlite3",
    "connectors",
    "router.backends",
    "router.http",
    "router.app",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", PURE)
def test_domain_module_imports_no_io_library(module: str) -> None:
    bad = {
        name
        for name in _imports(ROUTER / module)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"router/{module} imports {sorted(bad)}"


def test_only_the_composition_root_names_concrete_backends() -> None:
    for path in ROUTER.rglob("*.py"):
        if path.parent.name == "backends" or path.name == "app.py":
            continue
        assert not any(n.startswith("router.backends") for n in _imports(path)), path
