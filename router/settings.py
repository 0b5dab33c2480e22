"""One typed settings object, built once from a TOML file and ``OMNIROUTE_*`` variables.

Every key is ``[section] key`` in the file and ``OMNIROUTE_<SECTION>_<KEY>`` in the
environment (``OMNIROUTE_HTTP_PORT``); a few have the short names the docs promise
(``OMNIROUTE_API_TOKEN``, ``OMNIROUTE_CONFIG``). The environment wins over the file.
Loading reports every problem at once, naming the key; secrets never show in ``repr``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from router.errors import ConfigError


class Secret:
    """A string that never prints: ``repr`` and ``str`` show a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


def masked_url(url: str) -> str:
    """The URL with its password replaced, for logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    shutdown_timeout_s: float = 10.0
    public_url: str = ""
    """The daemon's address as providers and browsers see it (``https://omni.example.com``);
    webhook signatures over the URL (Twilio) are checked against it."""


@dataclass(frozen=True)
class ApiSettings:
    token: Secret = field(default_factory=lambda: Secret(""))
    """Bearer token for /v1; empty: one is generated into ``<data dir>/api-token``."""


@dataclass(frozen=True)
class DataSettings:
    dir: Path = Path("./data")
    attachments_dir: Path | None = None
    """Where attachment contents and quarantined raw messages are kept (a local path or
    a mounted object store); default ``<dir>/attachments``."""

    @property
    def attachments(self) -> Path:
        return self.attachments_dir or self.dir / "attachments"


@dataclass(frozen=True)
class RedisSettings:
    url: Secret = field(default_factory=lambda: Secret(""))
    prefix: str = "omniroute"


@dataclass(frozen=True)
class AmqpSettings:
    url: Secret = field(default_factory=lambda: Secret(""))
    prefix: str = "omniroute"
    queue_type: str = "classic"
    """``quorum`` declares agent, inbound and dead-letter queues as quorum queues
    (replicated); RabbitMQ refuses to change an existing queue's type."""


@dataclass(frozen=True)
class RoutingSettings:
    queues: tuple[str, ...] = ("default",)
    """Agent queues; every ``[queues.<name>]`` table adds its queue too."""
    default_queue: str = "default"
    default_priority: int = 3
    first_response_s: int = 3600
    """The built-in ``default`` SLA policy's first-response target (when not configured)."""
    default_sla: str = "default"
    """The SLA policy when neither a rule nor the queue names one."""
    max_wait_s: tuple[float, ...] = (1800.0, 3600.0, 7200.0, 14400.0, 28800.0)
    """Aging bound per priority 1..5: no item waits in a backlog longer than this before
    it is served ahead of anything queued later (starvation-free ordering)."""
    reopen_window_s: float = 7 * 86400.0
    """A customer message this soon after resolution reopens the conversation."""
    sticky_days: float = 0.0
    """Offer a returning customer's conversation first to the agent who served them in
    the last N days (``omniroute.agent.<agent_id>``); 0 turns sticky routing off."""
    sticky_timeout_s: float = 120.0
    """How long a sticky offer waits for that agent before it falls back to the queue."""
    warning_priority_delta: int = -1
    """Added to the priority when an SLA warning fires (1 is the highest priority)."""
    at_risk_s: float = 900.0
    """``GET /v1/queues`` counts a waiting item as at risk when it is due within this."""
    breach_priority_delta: int = -1


@dataclass(frozen=True)
class PolicyTables:
    """The routing policy's own tables, validated by ``router.policy`` (not env-settable):
    ``[calendars.<name>]``, ``[sla.<name>]``, ``[queues.<name>]`` and ``[[rules]]``."""

    calendars: dict[str, Any] = field(default_factory=dict)
    sla: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, Any] = field(default_factory=dict)
    rules: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class DispatchSettings:
    ready_depth: int = 1
    """The least number of items each agent queue may hold ready (or in flight); the
    rest waits in the backlog in urgency order."""
    release_horizon_ms: int = 500
    """Release no more than consumers take in this long: what waits in an agent queue
    is taken within about this, so a change of urgency reaches consumers as fast."""
    lease_s: float = 30.0
    poll_ms: int = 100
    history_limit: int = 10
    batch_max: int = 256


@dataclass(frozen=True)
class AgentsSettings:
    lease_s: float = 30.0
    """How long an agent's presence holds when its announcement names no ``lease_s``."""
    heartbeat_s: float = 10.0
    """How often an agent socket is sent ``{"type": "heartbeat", "lease_until"}``."""
    sweep_ms: int = 500
    """How often each router process looks for lapsed leases and closes their sockets."""


@dataclass(frozen=True)
class IdentitySettings:
    default_region: str = ""
    """ISO country for phone numbers written without '+', e.g. "ES"; empty: '+' needed."""


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = field(default_factory=HttpSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    data: DataSettings = field(default_factory=DataSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    amqp: AmqpSettings = field(default_factory=AmqpSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    agents: AgentsSettings = field(default_factory=AgentsSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    log: LogSettings = field(default_factory=LogSettings)
    tables: PolicyTables = field(default_factory=PolicyTables)
    connectors: Mapping[str, Any] = field(default_factory=dict)
    """Each configured connector's settings object by name (``[connectors.<name>]`` and
    ``OMNIROUTE_CONNECTORS_<NAME>_<KEY>``), built by ``connectors.registry``."""

    @property
    def embedded(self) -> bool:
        return not self.redis.url and not self.amqp.url

    @property
    def queue_names(self) -> tuple[str, ...]:
        """Every configured agent queue: ``routing.queues`` and the ``[queues.*]`` tables."""
        extra = tuple(q for q in self.tables.queues if q not in self.routing.queues)
        return self.routing.queues + extra


ENV_ALIASES = {"OMNIROUTE_API_TOKEN": ("api", "token")}

_Check = Callable[[Any], str | None]


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number 0-65535"


def _one_of(*choices: str) -> _Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _url(*schemes: str) -> _Check:
    def check(value: Any) -> str | None:
        text = value.get() if isinstance(value, Secret) else value
        if not text or urlsplit(text).scheme in schemes:
            return None
        return f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"

    return check


def _queue_names(value: Any) -> str | None:
    bad = [q for q in value if not _NAME.match(q)]
    if not value:
        return "must name at least one queue"
    return f"invalid queue names {bad}: use a-z, 0-9, '_' and '-'" if bad else None


CHECKS: dict[tuple[str, str], _Check] = {
    ("http", "port"): _port,
    ("http", "max_body_bytes"): _positive,
    ("http", "shutdown_timeout_s"): _positive,
    ("http", "public_url"): _url("http", "https"),
    ("redis", "url"): _url("redis", "rediss", "unix"),
    ("amqp", "url"): _url("amqp", "amqps"),
    ("amqp", "queue_type"): _one_of("classic", "quorum"),
    ("routing", "queues"): _queue_names,
    ("routing", "default_priority"): lambda v: None if 1 <= v <= 5 else "must be 1-5",
    ("routing", "first_response_s"): _positive,
    ("routing", "max_wait_s"): lambda v: (
        None if len(v) == 5 and all(x > 0 for x in v) else "must be 5 positive numbers"
    ),
    ("routing", "reopen_window_s"): lambda v: None if v >= 0 else "must be 0 or more",
    ("routing", "sticky_days"): lambda v: None if v >= 0 else "must be 0 or more",
    ("routing", "sticky_timeout_s"): _positive,
    ("routing", "at_risk_s"): lambda v: None if v >= 0 else "must be 0 or more",
    ("routing", "warning_priority_delta"): lambda v: None if -4 <= v <= 0 else "must be -4..0",
    ("routing", "breach_priority_delta"): lambda v: None if -4 <= v <= 0 else "must be -4..0",
    ("dispatch", "ready_depth"): _positive,
    ("dispatch", "release_horizon_ms"): _positive,
    ("dispatch", "lease_s"): _positive,
    ("dispatch", "poll_ms"): _positive,
    ("dispatch", "history_limit"): lambda v: None if v >= 0 else "must be 0 or more",
    ("dispatch", "batch_max"): _positive,
    ("agents", "lease_s"): _positive,
    ("agents", "heartbeat_s"): _positive,
    ("agents", "sweep_ms"): _positive,
    ("log", "level"): _one_of("debug", "info", "warning", "error"),
    ("log", "format"): _one_of("auto", "json", "console"),
}


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``path`` (or ``$OMNIROUTE_CONFIG``) and ``env``."""
    env = os.environ if env is None else env
    problems: list[str] = []
    raw: dict[str, Any] = {}
    path = path or (Path(env["OMNIROUTE_CONFIG"]) if env.get("OMNIROUTE_CONFIG") else None)
    if path is not None:
        raw = _read_toml(path, problems)
    sections = _build_sections(raw, env, problems)
    if not problems:
        _check_cross(sections, problems)
    from connectors.registry import load_settings  # connectors declare their own settings

    sections["connectors"] = load_settings(raw.get("connectors", {}), env, problems)
    if problems:
        raise ConfigError(problems)
    settings = Settings(**sections)
    from router.policy import policy_problems  # the policy module reads these settings

    problems = policy_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    return {}


def _build_sections(
    raw: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    hints = get_type_hints(Settings)
    tables = get_type_hints(PolicyTables)
    known = [name for name in hints if name != "tables"] + list(tables)
    for name in raw:
        if name not in known:
            problems.append(f"[{name}]: unknown section (known: {', '.join(known)})")
    sections: dict[str, Any] = {"tables": _policy_tables(raw, problems)}
    for name, cls in hints.items():
        if name in ("tables", "connectors"):
            continue
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"[{name}]: must be a table")
            table = {}
        sections[name] = _build_section(name, cls, table, env, problems)
    return sections


def _policy_tables(raw: dict[str, Any], problems: list[str]) -> PolicyTables:
    values: dict[str, Any] = {}
    for name, hint in get_type_hints(PolicyTables).items():
        if name not in raw:
            continue
        kind = list if "list" in str(hint) else dict
        if isinstance(raw[name], kind):
            values[name] = raw[name]
        else:
            what = "an array of tables [[rules]]" if kind is list else "a table"
            problems.append(f"[{name}]: must be {what}")
    return PolicyTables(**values)


def _build_section(
    section: str, cls: type[Any], table: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> Any:
    return build_table(section, cls, table, env, problems)


def build_table(
    section: str,
    cls: type[Any],
    table: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
    *,
    checks: Mapping[str, _Check] | None = None,
) -> Any:
    """An instance of the dataclass ``cls`` from ``[section]`` and
    ``OMNIROUTE_<SECTION>_<KEY>`` (a dotted section ``a.b`` reads ``OMNIROUTE_A_B_<KEY>``);
    every problem is appended to ``problems`` (None is returned when there is one)."""
    fields = {f.name for f in dataclasses.fields(cls)}  # not ClassVars such as ``checks``
    hints = {k: v for k, v in get_type_hints(cls).items() if k in fields}
    for key in table:
        if key not in hints:
            problems.append(f"{section}.{key}: unknown key (known: {', '.join(hints)})")
    values: dict[str, Any] = {}
    failed = False
    for key, hint in hints.items():
        given, origin = _lookup(section, key, table, env)
        if given is None:
            if _required(cls, key):
                problems.append(f"{section}.{key}: required")
                failed = True
            continue
        value, error = _coerce(given, hint, from_env=origin.startswith("$"))
        check = (checks or {}).get(key) or CHECKS.get((section, key), lambda _: None)
        error = error or check(value)
        if error:
            problems.append(f"{section}.{key} ({origin}): {error}")
            failed = True
        else:
            values[key] = value
    return None if failed else cls(**values)


def _required(cls: type[Any], key: str) -> bool:
    spec = next(f for f in dataclasses.fields(cls) if f.name == key)
    no_default = spec.default is dataclasses.MISSING
    return no_default and spec.default_factory is dataclasses.MISSING


def _lookup(
    section: str, key: str, table: dict[str, Any], env: Mapping[str, str]
) -> tuple[Any, str]:
    names = [f"OMNIROUTE_{section.upper().replace('.', '_')}_{key.upper()}"]
    names += [alias for alias, target in ENV_ALIASES.items() if target == (section, key)]
    for name in names:
        if name in env:
            return env[name], f"${name}"
    return table.get(key), "config file"


def _coerce(given: Any, hint: Any, *, from_env: bool) -> tuple[Any, str | None]:
    try:
        return _COERCE[hint](given, from_env), None
    except (TypeError, ValueError) as exc:
        return None, str(exc)


def _to_int(given: Any, from_env: bool) -> int:
    if from_env and isinstance(given, str) and given.strip().lstrip("-").isdigit():
        return int(given)
    if isinstance(given, bool) or not isinstance(given, int):
        raise TypeError(f"must be an integer, got {given!r}")
    return given


def _to_float(given: Any, from_env: bool) -> float:
    if from_env and isinstance(given, str):
        try:
            return float(given)
        except ValueError:
            raise TypeError(f"must be a number, got {given!r}") from None
    if isinstance(given, bool) or not isinstance(given, int | float):
        raise TypeError(f"must be a number, got {given!r}")
    return float(given)


def _to_bool(given: Any, from_env: bool) -> bool:
    if from_env and isinstance(given, str) and given.lower() in ("1", "true", "yes", "on"):
        return True
    if from_env and isinstance(given, str) and given.lower() in ("0", "false", "no", "off", ""):
        return False
    if not isinstance(given, bool):
        raise TypeError(f"must be true or false, got {given!r}")
    return given


def _to_str(given: Any, from_env: bool) -> str:
    if not isinstance(given, str):
        raise TypeError(f"must be a string, got {given!r}")
    return given


def _to_names(given: Any, from_env: bool) -> tuple[str, ...]:
    if from_env and isinstance(given, str):
        given = [part.strip() for part in given.split(",") if part.strip()]
    if not isinstance(given, list) or not all(isinstance(x, str) for x in given):
        raise TypeError("must be a list of strings")
    return tuple(given)


def _to_numbers(given: Any, from_env: bool) -> tuple[float, ...]:
    if from_env and isinstance(given, str):
        given = [part.strip() for part in given.split(",") if part.strip()]
        try:
            return tuple(float(x) for x in given)
        except ValueError:
            raise TypeError("must be a list of numbers") from None
    if not isinstance(given, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in given
    ):
        raise TypeError("must be a list of numbers")
    return tuple(float(x) for x in given)


_COERCE: dict[Any, Callable[[Any, bool], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    Path: lambda g, e: Path(_to_str(g, e)),
    Path | None: lambda g, e: Path(_to_str(g, e)),
    Secret: lambda g, e: Secret(_to_str(g, e)),
    tuple[str, ...]: _to_names,
    tuple[float, ...]: _to_numbers,
}


def _check_cross(sections: dict[str, Any], problems: list[str]) -> None:
    routing: RoutingSettings = sections["routing"]
    queues = set(routing.queues) | set(sections["tables"].queues)
    if routing.default_queue not in queues:
        problems.append(
            f"routing.default_queue: {routing.default_queue!r} is not a configured queue "
            "(routing.queues or a [queues.<name>] table)"
        )
    redis_url, amqp_url = sections["redis"].url, sections["amqp"].url
    if bool(redis_url) != bool(amqp_url):
        problems.append(
            "redis.url / amqp.url: set both for the production backends, or neither for "
            "the embedded default"
        )


def describe(settings: Settings) -> dict[str, Any]:
    """A printable view with secrets masked (for ``check-config`` and the start log)."""
    out: dict[str, Any] = {}
    for section in dataclasses.fields(settings):
        if section.name in ("tables", "connectors"):
            continue
        values = dataclasses.asdict(getattr(settings, section.name))
        out[section.name] = {k: _printable(v) for k, v in values.items()}
    tables = settings.tables
    out["connectors"] = {
        name: {k: _printable(v) for k, v in dataclasses.asdict(conf).items()}
        for name, conf in settings.connectors.items()
    }
    out["policy"] = {
        "queues": list(settings.queue_names),
        "calendars": sorted(tables.calendars),
        "sla": sorted(tables.sla),
        "rules": [rule.get("name") for rule in tables.rules if isinstance(rule, dict)],
    }
    return out


def _printable(value: Any) -> Any:
    if isinstance(value, Secret):
        return masked_url(value.get()) if "://" in value.get() else repr(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
