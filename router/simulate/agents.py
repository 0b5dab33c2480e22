"""The agents of a simulated day: groups with a head count, the queues they serve in
preference order, their skills and one shift.

A spec is TOML or JSON with the same shape::

    timezone = "Europe/Madrid"     # shift times are local wall-clock times here (default UTC)

    [[groups]]
    name = "early"                 # required, unique
    count = 8                      # agents in the group
    queues = ["support", "billing"]  # served in this preference order (ties of urgency)
    skills = ["spanish"]           # an item needing skills goes only to agents with all of them
    start = "07:00"                # shift, local time; an end at or before the start is next day
    end = "15:00"
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.errors import ConfigError

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_KEYS = {"name", "count", "queues", "skills", "start", "end"}


@dataclass(frozen=True)
class AgentGroup:
    name: str
    count: int
    queues: tuple[str, ...]
    skills: frozenset[str]
    start: time
    end: time

    def shift(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The group's shift on ``day`` as UTC instants."""
        start = datetime.combine(day, self.start, tzinfo=zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        end = datetime.combine(end_day, self.end, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class AgentsSpec:
    groups: tuple[AgentGroup, ...]
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def queues(self) -> frozenset[str]:
        return frozenset(q for g in self.groups for q in g.queues)


def load_agents(path: Path) -> AgentsSpec:
    """Read a spec file (``.json`` or TOML); ``ConfigError`` lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or exc}"]) from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be parsed: {exc}"]) from None
    spec, problems = parse_agents(raw)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return spec


def parse_agents(raw: Mapping[str, Any]) -> tuple[AgentsSpec, list[str]]:
    problems: list[str] = []
    problems += [
        f"{k}: unknown key (known: groups, timezone)"
        for k in raw
        if k not in ("groups", "timezone")
    ]
    zone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(f"timezone: unknown time zone {zone!r}")
        zone = "UTC"
    items = raw.get("groups")
    if not isinstance(items, list) or not items:
        problems.append("groups: must be a non-empty list of tables")
        items = []
    groups = [g for i, t in enumerate(items) if (g := _group(t, f"groups[{i}]", problems))]
    names = [g.name for g in groups]
    problems += [f"groups: duplicate name {n!r}" for n in sorted(set(names)) if names.count(n) > 1]
    return AgentsSpec(groups=tuple(groups), timezone=zone), problems


def _group(raw: Any, path: str, problems: list[str]) -> AgentGroup | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a table")
        return None
    before = len(problems)
    problems += [
        f"{path}.{k}: unknown key (known: {', '.join(sorted(_KEYS))})"
        for k in raw
        if k not in _KEYS
    ]
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{path}.name: required, a non-empty string")
    count = raw.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        problems.append(f"{path}.count: must be an integer of at least 1, got {count!r}")
        count = 0
    queues = _strings(raw.get("queues"), f"{path}.queues", problems, required=True)
    skills = _strings(raw.get("skills", []), f"{path}.skills", problems, required=False)
    start = _clock(raw.get("start"), f"{path}.start", problems)
    end = _clock(raw.get("end"), f"{path}.end", problems)
    if len(problems) > before or start is None or end is None:
        return None
    return AgentGroup(str(name), count, tuple(queues), frozenset(skills), start, end)


def _strings(value: Any, path: str, problems: list[str], *, required: bool) -> list[str]:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    if not ok or (required and not value):
        need = "a non-empty list" if required else "a list"
        problems.append(f"{path}: must be {need} of non-empty strings, got {value!r}")
        return []
    return list(value)


def _clock(value: Any, path: str, problems: list[str]) -> time | None:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        problems.append(f'{path}: must be a local time "HH:MM", got {value!r}')
        return None
    return time(int(match[1]), int(match[2]))
