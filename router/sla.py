"""SLA policies and the arithmetic of a conversation's clocks.

A policy (``[sla.<name>]``) gives each conversation up to three targets, in business
seconds of the conversation's calendar: ``first_response`` (the first agent reply),
``next_response`` (each later reply, counted from the customer's next message) and
``resolution``. A clock runs while the ball is in the agents' court, pauses while the
conversation waits on the customer (``pending``) and keeps the business seconds it had
left, so a weekend spent pending costs nothing.

Every function here is pure: it takes the time and the calendar, returns new structs and
never mutates its inputs (``msgspec.structs.replace``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import msgspec
from msgspec.structs import replace

from router.calendars import ALWAYS
from router.models import CHANNELS, ClockKind, ConversationSla, SlaClock, Timer

RESPONSE_KINDS: tuple[ClockKind, ...] = ("first_response", "next_response")
CLOCK_KINDS: tuple[ClockKind, ...] = ("first_response", "next_response", "resolution")
DEFAULT_POLICY = "default"
DEFAULT_WARNING_RATIO = 0.75

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


class Calendar(Protocol):
    """The business-hours calendar clocks count in (``router.calendars``)."""

    @property
    def name(self) -> str: ...

    def is_open(self, at: datetime) -> bool: ...

    def add(self, start: datetime, seconds: float) -> datetime:
        """``start`` plus ``seconds`` of business time."""
        ...

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds in ``[start, end)``."""
        ...

    def next_open(self, at: datetime) -> datetime: ...


# --- policies -------------------------------------------------------------------------


class Targets(msgspec.Struct, frozen=True, kw_only=True):
    """The targets for one conversation, in business seconds; None: no such clock."""

    first_response_s: int | None = None
    next_response_s: int | None = None
    resolution_s: int | None = None

    def of(self, kind: ClockKind) -> int | None:
        return {
            "first_response": self.first_response_s,
            "next_response": self.next_response_s,
            "resolution": self.resolution_s,
        }[kind]


@dataclass(frozen=True)
class TargetEntry:
    """One ``[[sla.<name>.targets]]`` entry; a None filter matches everything."""

    targets: Targets
    priorities: frozenset[int] | None = None
    channels: frozenset[str] | None = None

    def matches(self, priority: int, channel: str) -> bool:
        return (self.priorities is None or priority in self.priorities) and (
            self.channels is None or channel in self.channels
        )


@dataclass(frozen=True)
class SlaPolicy:
    """A named policy: its entries in order, the last one matching everything."""

    name: str
    warning_ratio: float
    entries: tuple[TargetEntry, ...]

    def targets_for(self, priority: int, channel: str) -> Targets:
        """The first matching entry's targets (parsing guarantees a catch-all)."""
        for entry in self.entries:
            if entry.matches(priority, channel):
                return entry.targets
        return Targets()


_DURATION = re.compile(r"(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_S = (86400, 3600, 60, 1)


def parse_duration(value: object) -> int:
    """Seconds from ``"90s"``, ``"15m"``, ``"4h"``, ``"2d"``, ``"1h30m"`` or an integer
    of seconds; ``ValueError`` for anything else (negative, float, bool, ``"15x"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            return sum(int(g or 0) * unit for g, unit in zip(match.groups(), _UNIT_S, strict=True))
    raise ValueError(f"{_show(value)} is not a duration")


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


_POLICY_KEYS = frozenset({"warning_at", "targets"})
_TARGET_FIELDS = {
    "first_response": "first_response_s",
    "next_response": "next_response_s",
    "resolution": "resolution_s",
}
_ENTRY_KEYS = frozenset({"priority", "channel", *_TARGET_FIELDS})


def builtin_default(first_response_s: int) -> SlaPolicy:
    """The ``default`` policy when none is configured: a first-response target only."""
    entry = TargetEntry(targets=Targets(first_response_s=first_response_s))
    return SlaPolicy(DEFAULT_POLICY, DEFAULT_WARNING_RATIO, (entry,))


def parse_policies(
    raw: Mapping[str, Any], *, default_first_response_s: int, path: str = "sla"
) -> tuple[dict[str, SlaPolicy], list[str]]:
    """The policies of the ``[sla]`` table and every problem found (key path first).

    A policy named ``default`` is added from ``default_first_response_s`` unless the
    table configures one."""
    policies: dict[str, SlaPolicy] = {}
    problems: list[str] = []
    for name, table in raw.items():
        policy = _parse_policy(str(name), table, f"{path}.{name}", problems)
        if policy is not None:
            policies[policy.name] = policy
    if DEFAULT_POLICY not in raw:
        policies[DEFAULT_POLICY] = builtin_default(default_first_response_s)
    return policies, problems


def _parse_policy(name: str, table: object, path: str, problems: list[str]) -> SlaPolicy | None:
    if not isinstance(table, Mapping):
        problems.append(f"{path}: must be a table")
        return None
    before = len(problems)
    problems.extend(f"{path}.{key}: unknown key" for key in table if key not in _POLICY_KEYS)
    ratio = _parse_ratio(table.get("warning_at", DEFAULT_WARNING_RATIO), path, problems)
    entries = _parse_entries(table.get("targets"), f"{path}.targets", problems)
    if len(problems) > before:
        return None
    return SlaPolicy(name, ratio, entries)


def _parse_ratio(value: object, path: str, problems: list[str]) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    problems.append(f"{path}.warning_at: {_show(value)} must be a number between 0 and 1")
    return DEFAULT_WARNING_RATIO


def _parse_entries(value: object, path: str, problems: list[str]) -> tuple[TargetEntry, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{path}: needs at least one [[targets]] entry")
        return ()
    entries = [_parse_entry(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    last = entries[-1]
    if last is not None and (last.priorities is not None or last.channels is not None):
        problems.append(
            f"{path}[{len(value) - 1}]: the last entry must match everything "
            "(no priority or channel filter)"
        )
    return tuple(e for e in entries if e is not None)


def _parse_entry(item: object, path: str, problems: list[str]) -> TargetEntry | None:
    if not isinstance(item, Mapping):
        problems.append(f"{path}: must be a table")
        return None
    problems.extend(f"{path}.{key}: unknown key" for key in item if key not in _ENTRY_KEYS)
    priorities = _parse_filter(item.get("priority"), f"{path}.priority", problems, _priority_ok)
    channels = _parse_filter(item.get("channel"), f"{path}.channel", problems, _channel_ok)
    fields: dict[str, int] = {}
    for key, field in _TARGET_FIELDS.items():
        if key in item:
            seconds = _parse_target(item[key], f"{path}.{key}", problems)
            if seconds is not None:
                fields[field] = seconds
    return TargetEntry(
        targets=Targets(**fields),
        priorities=frozenset(priorities) if priorities is not None else None,
        channels=frozenset(channels) if channels is not None else None,
    )


def _priority_ok(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
    return None if ok else f"{_show(value)} is not a priority (1..5)"


def _channel_ok(value: object) -> str | None:
    return None if value in CHANNELS else f"{_show(value)} is not a channel ({', '.join(CHANNELS)})"


def _parse_filter(
    value: object, path: str, problems: list[str], check: Callable[[object], str | None]
) -> list[Any] | None:
    """A filter is one value or a non-empty list of them; None when absent."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    if not values:
        problems.append(f"{path}: an empty list matches nothing; leave the key out instead")
    bad = [p for p in (check(v) for v in values) if p is not None]
    problems.extend(f"{path}: {p}" for p in bad)
    return values


def _parse_target(value: object, path: str, problems: list[str]) -> int | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return None
    if seconds == 0:
        problems.append(f"{path}: must be longer than zero")
        return None
    return seconds


# --- clocks ---------------------------------------------------------------------------


def _add(calendar: Calendar, at: datetime, seconds: float) -> datetime:
    """``calendar.add(at, seconds)``; for the built-in 24x7 calendar (the commonest, and
    on every new conversation's path) without walking its day intervals: the same
    microsecond arithmetic, so the same instant."""
    if calendar is ALWAYS and at.utcoffset() is not None and 0 <= seconds < 1e12:
        return _EPOCH + timedelta(microseconds=(at - _EPOCH) // _US + round(seconds * 1_000_000))
    return calendar.add(at, seconds)


def _running(
    kind: ClockKind, target_s: int, calendar: Calendar, at: datetime, ratio: float
) -> SlaClock:
    return SlaClock(
        kind=kind,
        target_s=target_s,
        started_at=at,
        due=_add(calendar, at, target_s),
        warning_at=_add(calendar, at, target_s * ratio),
    )


def start(policy: SlaPolicy, targets: Targets, calendar: Calendar, at: datetime) -> ConversationSla:
    """The clocks of a new conversation: first response and resolution, when targeted."""
    clocks = [
        _running(kind, target_s, calendar, at, policy.warning_ratio)
        for kind in ("first_response", "resolution")
        if (target_s := targets.of(kind)) is not None
    ]
    return ConversationSla(
        policy=policy.name,
        calendar=calendar.name,
        warning_ratio=policy.warning_ratio,
        clocks=clocks,
    )


def _with_clocks(sla: ConversationSla, clocks: Iterable[SlaClock]) -> ConversationSla:
    return replace(sla, clocks=list(clocks))


def _left(calendar: Calendar, at: datetime, due: datetime | None) -> float:
    """Business seconds from ``at`` until ``due``; 0 once it is overdue."""
    if due is None or at >= due:
        return 0.0
    return calendar.between(at, due)


def _halt(clock: SlaClock, calendar: Calendar, at: datetime) -> SlaClock:
    """A running clock's state frozen at ``at``: its business time left, no timers."""
    return replace(clock, remaining_s=_left(calendar, at, clock.due), due=None, warning_at=None)


def _end_pause(clock: SlaClock, at: datetime) -> SlaClock:
    """Count a pause that ends now into ``paused_s``."""
    if clock.paused_at is None:
        return clock
    paused = max(0.0, (at - clock.paused_at).total_seconds())
    return replace(clock, paused_at=None, paused_s=clock.paused_s + paused)


def pause(sla: ConversationSla, calendar: Calendar, at: datetime) -> ConversationSla:
    """Every running clock stops counting and keeps the business seconds it had left."""
    return _with_clocks(
        sla,
        (
            replace(_halt(c, calendar, at), status="paused", paused_at=at)
            if c.status == "running"
            else c
            for c in sla.clocks
        ),
    )


def _run_again(clock: SlaClock, calendar: Calendar, at: datetime, ratio: float) -> SlaClock:
    """A halted clock (paused, or a met resolution) counts again from its time left.

    The warning keeps its place in business time: it fires once ``ratio`` of the
    target has been used, counting what was used before the halt."""
    remaining_s = clock.remaining_s if clock.remaining_s is not None else clock.target_s
    warning_at = None
    if clock.warned_at is None:
        until_warning_s = clock.target_s * ratio - (clock.target_s - remaining_s)
        warning_at = _add(calendar, at, until_warning_s) if until_warning_s > 0 else at
    return replace(
        _end_pause(clock, at),
        status="running",
        due=_add(calendar, at, remaining_s),
        warning_at=warning_at,
        remaining_s=None,
        met_at=None,
    )


def resume(sla: ConversationSla, calendar: Calendar, at: datetime) -> ConversationSla:
    """Every paused clock runs again from the business seconds it had left."""
    return _with_clocks(
        sla,
        (
            _run_again(c, calendar, at, sla.warning_ratio) if c.status == "paused" else c
            for c in sla.clocks
        ),
    )


def reopen(sla: ConversationSla, calendar: Calendar, at: datetime) -> ConversationSla:
    """A resolved conversation opens again: its resolution clock runs from what it had
    left when resolved (the response clocks stay stopped until the customer writes)."""
    return _with_clocks(
        sla,
        (
            _run_again(c, calendar, at, sla.warning_ratio)
            if c.kind == "resolution" and c.status == "met"
            else c
            for c in sla.clocks
        ),
    )


def meet(sla: ConversationSla, kinds: Iterable[ClockKind], at: datetime) -> ConversationSla:
    """Clocks of these kinds that run or are paused are met now (``due`` is kept, so a
    late reply shows as breached)."""
    wanted = frozenset(kinds)
    return _with_clocks(
        sla,
        (
            replace(_end_pause(c, at), status="met", met_at=at, warning_at=None)
            if c.kind in wanted and c.status in ("running", "paused")
            else c
            for c in sla.clocks
        ),
    )


def awaits_first_response(sla: ConversationSla) -> bool:
    return any(c.kind == "first_response" and c.status in ("running", "paused") for c in sla.clocks)


def start_next_response(
    sla: ConversationSla, targets: Targets, calendar: Calendar, at: datetime
) -> ConversationSla:
    """The customer wrote again after being answered: a fresh next-response clock
    (replacing a met or stopped one), unless one already counts or the first response is
    still owed."""
    if targets.next_response_s is None or awaits_first_response(sla):
        return sla
    if any(c.kind == "next_response" and c.status in ("running", "paused") for c in sla.clocks):
        return sla
    fresh = _running("next_response", targets.next_response_s, calendar, at, sla.warning_ratio)
    kept = [c for c in sla.clocks if c.kind != "next_response"]
    return _with_clocks(sla, [*kept, fresh])


def stop(sla: ConversationSla, calendar: Calendar, at: datetime) -> ConversationSla:
    """The conversation is resolved: response clocks stop; the resolution clock is met
    and keeps its business time left, so ``reopen`` can let it run on."""

    def stopped(c: SlaClock) -> SlaClock:
        if c.status not in ("running", "paused"):
            return c
        halted = _end_pause(_halt(c, calendar, at) if c.status == "running" else c, at)
        if c.kind == "resolution":
            return replace(halted, status="met", met_at=at, due=c.due)
        return replace(halted, status="stopped", due=c.due)

    return _with_clocks(sla, (stopped(c) for c in sla.clocks))


def deadline(sla: ConversationSla | None) -> datetime | None:
    """When the conversation next breaches: the earliest running response clock, else
    the running resolution clock, else None."""
    if sla is None:
        return None
    for kinds in (RESPONSE_KINDS, ("resolution",)):
        dues = [c.due for c in sla.clocks if c.kind in kinds and c.status == "running" and c.due]
        if dues:
            return min(dues)
    return None


def clock_timer_key(conversation_id: str, kind: str, clock: ClockKind) -> str:
    return f"{conversation_id}|{kind}|{clock}"


def timers(conversation_id: str, sla: ConversationSla | None) -> list[Timer]:
    """The warning and breach timers the running clocks still owe."""
    armed: list[Timer] = []
    for c in sla.clocks if sla is not None else ():
        if c.status != "running":
            continue
        if c.warned_at is None and c.warning_at is not None:
            armed.append(
                Timer(conversation_id=conversation_id, kind="warning", ref=c.kind, at=c.warning_at)
            )
        if c.breached_at is None and c.due is not None:
            armed.append(
                Timer(conversation_id=conversation_id, kind="breach", ref=c.kind, at=c.due)
            )
    return armed


def all_clock_timer_keys(conversation_id: str) -> list[str]:
    """Every key a clock timer of this conversation can have (to disarm them all)."""
    return [
        clock_timer_key(conversation_id, kind, clock)
        for clock in CLOCK_KINDS
        for kind in ("warning", "breach")
    ]


def find(sla: ConversationSla | None, kind: str) -> SlaClock | None:
    if sla is None:
        return None
    return next((c for c in sla.clocks if c.kind == kind), None)


def is_breached(clock: SlaClock, now: datetime) -> bool:
    """Breach fired, met or stopped after its due, still running past it, or halted
    with no time left."""
    if clock.breached_at is not None:
        return True
    if clock.status == "running":
        return clock.due is not None and now >= clock.due
    if clock.due is not None and clock.met_at is not None and clock.met_at > clock.due:
        return True
    return clock.remaining_s == 0


def clock_view(clock: SlaClock, now: datetime, calendar: Calendar | None = None) -> dict[str, Any]:
    """A clock as the API shows it. ``paused_s`` includes a pause still going on;
    ``remaining_s`` of a running clock is in business seconds when ``calendar`` is
    given (None without it)."""
    paused_s = clock.paused_s
    if clock.paused_at is not None:
        paused_s += max(0.0, (now - clock.paused_at).total_seconds())
    remaining_s = clock.remaining_s
    if clock.status == "running":
        remaining_s = _left(calendar, now, clock.due) if calendar is not None else None
    return {
        "kind": clock.kind,
        "status": clock.status,
        "target_s": clock.target_s,
        "started_at": clock.started_at,
        "due": clock.due,
        "paused_s": paused_s,
        "met_at": clock.met_at,
        "breached": is_breached(clock, now),
        "warned_at": clock.warned_at,
        "breached_at": clock.breached_at,
        "remaining_s": remaining_s,
    }
