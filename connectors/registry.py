"""Which connectors are installed (the ``omniroute.connectors`` entry point group) and
which are configured (a ``[connectors.<name>]`` table or ``OMNIROUTE_CONNECTORS_<NAME>_*``
variables), with their settings validated like the rest of the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import structlog

from connectors.base import Connector, ConnectorClass, ConnectorContext, Manifest
from router.clock import SystemClock
from router.errors import ConfigError

log = structlog.get_logger("connectors")

GROUP = "omniroute.connectors"


@dataclass(frozen=True)
class Installed:
    name: str
    target: str
    """``module:Class`` as registered."""
    cls: ConnectorClass | None
    error: str | None = None
    """Why it could not be loaded (import error, no manifest, name mismatch)."""

    @property
    def manifest(self) -> Manifest | None:
        return None if self.cls is None else self.cls.manifest


def installed() -> dict[str, Installed]:
    """Every registered connector by name, loaded (a broken one carries its ``error``)."""
    found: dict[str, Installed] = {}
    for point in entry_points(group=GROUP):
        found[point.name] = _load(point.name, point.value, point.load)
    return dict(sorted(found.items()))


def _load(name: str, target: str, load: Any) -> Installed:
    try:
        cls = load()
    except Exception as exc:  # a third-party plugin may fail any way on import
        return Installed(name, target, None, f"cannot import {target}: {exc!r}")
    manifest = getattr(cls, "manifest", None)
    if not isinstance(manifest, Manifest):
        return Installed(name, target, None, f"{target} has no connectors.base.Manifest")
    if manifest.name != name:
        return Installed(name, target, None, f"{target} is named {manifest.name!r}, not {name!r}")
    return Installed(name, target, cls)


def _env_names(env: Mapping[str, str], names: list[str]) -> set[str]:
    """Connectors some ``OMNIROUTE_CONNECTORS_<NAME>_<KEY>`` variable configures."""
    found = set()
    for name in names:
        prefix = f"OMNIROUTE_CONNECTORS_{name.upper()}_"
        if any(var.startswith(prefix) for var in env):
            found.add(name)
    return found


def load_settings(raw: Any, env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Each configured connector's settings object; problems name the key."""
    from router.settings import build_table  # settings imports this module lazily

    if not isinstance(raw, dict):
        problems.append("[connectors]: must be a table of [connectors.<name>] tables")
        return {}
    known = installed()
    usable = {name: i for name, i in known.items() if i.cls is not None}
    for name in raw:
        if name not in known:
            choices = ", ".join(known) or "none installed"
            problems.append(f"[connectors.{name}]: unknown connector (installed: {choices})")
        elif known[name].error:
            problems.append(f"[connectors.{name}]: {known[name].error}")
    out: dict[str, Any] = {}
    for name in sorted((set(raw) | _env_names(env, list(usable))) & set(usable)):
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"[connectors.{name}]: must be a table")
            continue
        manifest = usable[name].manifest
        assert manifest is not None
        checks = getattr(manifest.settings, "checks", None)
        built = build_table(
            f"connectors.{name}", manifest.settings, table, env, problems, checks=checks
        )
        if built is not None and _constructs(name, usable[name], built, problems):
            out[name] = built
    return out


def _constructs(name: str, found: Installed, settings: Any, problems: list[str]) -> bool:
    """Whether the connector accepts its settings (the checks across keys live in its
    constructor), so ``check-config`` reports what start-up would refuse."""
    assert found.cls is not None
    try:
        found.cls(settings, ConnectorContext(clock=SystemClock()))
    except ValueError as exc:
        problems.append(f"[connectors.{name}]: {exc}")
        return False
    return True


def build(settings: Mapping[str, Any], context: ConnectorContext) -> dict[str, Connector]:
    """The configured connectors, constructed (``ConfigError`` when one refuses)."""
    known = installed()
    built: dict[str, Connector] = {}
    problems: list[str] = []
    for name, conf in settings.items():
        cls = known[name].cls if name in known else None
        if cls is None:
            problems.append(f"[connectors.{name}]: not installed")
            continue
        try:
            built[name] = cls(conf, context)
        except ValueError as exc:
            problems.append(f"[connectors.{name}]: {exc}")
    if problems:
        raise ConfigError(problems)
    return built
