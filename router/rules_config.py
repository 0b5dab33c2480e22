"""Compiling the ``[[rules]]`` TOML array into a ``router.rules.RuleSet``.

The format is documented in ``router.rules``, next to the conditions that evaluate it;
this module is its other half, kept apart so that the per-message path does not carry
the validation. It checks every key and reports every problem of the array at once,
each naming its key path, and builds the conditions from ``router.rules``'s (private)
condition types, cheapest first.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from router.models import CHANNELS
from router.rules import (
    ALWAYS,
    MAX_DELTA,
    MAX_PRIORITY,
    MIN_PRIORITY,
    AttrKey,
    OpenHours,
    RuleSet,
    _AlwaysOpen,
    _attr_key,
    _Attributes,
    _BusinessHours,
    _Channel,
    _Condition,
    _IdentityKinds,
    _Inbox,
    _Language,
    _Regex,
    _Repeat,
    _Rule,
    _Source,
    _Tags,
    _Then,
    _Words,
    fold,
)

RULE_KEYS = ("name", "description", "match", "then")
MATCH_KEYS = (
    "attributes",
    "business_hours",
    "calendar",
    "channel",
    "identity_kinds",
    "inbox",
    "language",
    "regex",
    "repeat",
    "source",
    "tags",
    "words",
)
THEN_KEYS = ("priority", "priority_delta", "queue", "skills", "sla", "tags")
_ISO_639_1 = re.compile(r"[a-z]{2}")


@dataclass
class _Known:
    """What rules may refer to, and where problems go."""

    queues: Collection[str]
    calendars: Mapping[str, OpenHours]
    policies: Collection[str]
    queue_calendars: Mapping[str, str]
    problems: list[str] = field(default_factory=list)

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")


def compile_rules(
    raw: Any,
    *,
    queues: Collection[str],
    calendars: Mapping[str, OpenHours],
    policies: Collection[str],
    queue_calendars: Mapping[str, str],
    path: str = "rules",
) -> tuple[RuleSet, list[str]]:
    """Compile the ``rules`` TOML value (None when absent) into a ``RuleSet``, with every
    problem found; the rule set holds only the rules that compiled cleanly."""
    known = _Known(queues, calendars, policies, queue_calendars)
    if raw is None:
        return RuleSet(), []
    if not isinstance(raw, list):
        known.problem(path, "must be an array of tables [[rules]]")
        return RuleSet(), known.problems
    rules: list[_Rule] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(raw):
        where = f"{path}[{index}]"
        rule = _compile_rule(entry, where, known)
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in first_index:
            known.problem(
                f"{where}.name", f'duplicate rule name "{name}" (also {path}[{first_index[name]}])'
            )
            continue
        if isinstance(name, str):
            first_index[name] = index
        if rule is not None:
            rules.append(rule)
    return RuleSet(rules), known.problems


def _compile_rule(entry: object, where: str, known: _Known) -> _Rule | None:
    if not isinstance(entry, dict):
        known.problem(where, "must be a table")
        return None
    before = len(known.problems)
    _unknown_keys(entry, RULE_KEYS, where, "key", known)
    name = entry.get("name")
    if name is None:
        known.problem(where, "missing name")
    elif not isinstance(name, str) or not name.strip():
        known.problem(f"{where}.name", "must be a non-empty string")
    if not isinstance(entry.get("description", ""), str):
        known.problem(f"{where}.description", "must be a string")
    then = _compile_then(_table(entry, "then", where, known), f"{where}.then", known)
    match = _table(entry, "match", where, known)
    conditions = _compile_match(match, f"{where}.match", then, known)
    if len(known.problems) > before or not isinstance(name, str):
        return None
    return _Rule(
        name=name,
        conditions=tuple(sorted(conditions.values(), key=lambda c: c.cost)),
        condition_names=tuple(conditions),
        then=then,
    )


def _table(entry: dict[str, Any], key: str, where: str, known: _Known) -> dict[str, Any]:
    value = entry.get(key, {})
    if isinstance(value, dict):
        return value
    known.problem(f"{where}.{key}", "must be a table")
    return {}


def _unknown_keys(
    table: Mapping[str, Any], allowed: Sequence[str], where: str, what: str, known: _Known
) -> None:
    for key in table:
        if key not in allowed:
            known.problem(f"{where}.{key}", f"unknown {what} (known: {', '.join(allowed)})")


# --- then -------------------------------------------------------------------------------


def _compile_then(then: dict[str, Any], where: str, known: _Known) -> _Then:
    _unknown_keys(then, THEN_KEYS, where, "action", known)
    queue = _name_in(then, "queue", known.queues, where, known)
    sla = _name_in(then, "sla", known.policies, where, known)
    priority = _integer(then, "priority", where, known, low=MIN_PRIORITY, high=MAX_PRIORITY)
    delta = _integer(then, "priority_delta", where, known, low=-MAX_DELTA, high=MAX_DELTA)
    skills = _strings(then["skills"], f"{where}.skills", known) if "skills" in then else ()
    tags = _strings(then["tags"], f"{where}.tags", known) if "tags" in then else ()
    return _Then(
        queue=queue,
        priority=priority,
        priority_delta=delta or 0,
        sla=sla,
        skills=skills or (),
        tags=tags or (),
    )


def _name_in(
    table: dict[str, Any], key: str, names: Collection[str], where: str, known: _Known
) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str):
        known.problem(f"{where}.{key}", "must be a string")
        return None
    if value not in names:
        what = "sla policy" if key == "sla" else key
        known.problem(f"{where}.{key}", f'unknown {what} "{value}" (known: {_listing(names)})')
        return None
    return value


def _integer(
    table: dict[str, Any], key: str, where: str, known: _Known, *, low: int, high: int
) -> int | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        known.problem(f"{where}.{key}", f"must be an integer {low}..{high}, not {value!r}")
        return None
    return value


def _strings(value: object, where: str, known: _Known) -> tuple[str, ...] | None:
    """A non-empty list of non-empty strings; a single string stands for a list of one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        known.problem(where, "must be a non-empty list of strings")
        return None
    bad = [i for i, item in enumerate(items) if not isinstance(item, str) or not item.strip()]
    for i in bad:
        known.problem(f"{where}[{i}]", "must be a non-empty string")
    return None if bad else tuple(dict.fromkeys(items))


def _listing(names: Collection[str]) -> str:
    return ", ".join(sorted(names)) or "none"


# --- match ------------------------------------------------------------------------------


def _compile_match(
    match: dict[str, Any], where: str, then: _Then, known: _Known
) -> dict[str, _Condition]:
    """The conditions by configured name; problems go to ``known``."""
    _unknown_keys(match, MATCH_KEYS, where, "condition", known)
    conditions: dict[str, _Condition | None] = {}
    for key, value in match.items():
        at = f"{where}.{key}"
        if key in _LIST_CONDITIONS:
            values = _strings(value, at, known)
            conditions[key] = None if values is None else _LIST_CONDITIONS[key](values, at, known)
        elif key == "attributes":
            conditions[key] = _attributes(value, at, known)
        elif key == "repeat":
            conditions[key] = _repeat(value, at, known)
        elif key == "business_hours":
            conditions[key] = _business_hours(match, where, then, known)
    if "calendar" in match and "business_hours" not in match:
        known.problem(f"{where}.calendar", "needs match.business_hours (inside or outside)")
    return {key: c for key, c in conditions.items() if c is not None}


def _channel(values: tuple[str, ...], where: str, known: _Known) -> _Channel | None:
    unknown = [v for v in values if v not in CHANNELS]
    for value in unknown:
        known.problem(where, f'unknown channel "{value}" (known: {", ".join(CHANNELS)})')
    return None if unknown else _Channel(frozenset(values))


def _source(values: tuple[str, ...], where: str, known: _Known) -> _Source:
    return _Source(frozenset(v.casefold() for v in values))


def _inbox(values: tuple[str, ...], where: str, known: _Known) -> _Inbox:
    alternatives = "|".join(fnmatch.translate(v.strip()) for v in values)
    return _Inbox(re.compile(f"(?:{alternatives})", re.IGNORECASE))


def _identity_kinds(values: tuple[str, ...], where: str, known: _Known) -> _IdentityKinds:
    return _IdentityKinds(frozenset(v.lower() for v in values))


def _tags(values: tuple[str, ...], where: str, known: _Known) -> _Tags:
    return _Tags(frozenset(fold(v) for v in values))


def _language(values: tuple[str, ...], where: str, known: _Known) -> _Language | None:
    codes = [v.strip().lower() for v in values]
    bad = [v for v, code in zip(values, codes, strict=True) if not _ISO_639_1.fullmatch(code)]
    for value in bad:
        known.problem(where, f'"{value}" is not an ISO 639-1 code (two letters, e.g. "es")')
    return None if bad else _Language(frozenset(codes))


def _words(values: tuple[str, ...], where: str, known: _Known) -> _Words:
    """One pattern for all the words: ``(?<!\\w)(?:refund|charge\\s+back)(?!\\w)``."""
    phrases = sorted({fold(v).strip() for v in values}, key=len, reverse=True)
    alternatives = (r"\s+".join(map(re.escape, phrase.split())) for phrase in phrases)
    return _Words(re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"))


def _regex(values: tuple[str, ...], where: str, known: _Known) -> _Regex | None:
    patterns: list[re.Pattern[str]] = []
    for i, value in enumerate(values):
        try:
            patterns.append(re.compile(value))
        except re.error as error:
            known.problem(f"{where}[{i}]", f'invalid regex "{value}": {error}')
    return _Regex(tuple(patterns)) if len(patterns) == len(values) else None


_LIST_CONDITIONS: dict[str, Callable[[tuple[str, ...], str, _Known], _Condition | None]] = {
    "channel": _channel,
    "source": _source,
    "inbox": _inbox,
    "identity_kinds": _identity_kinds,
    "tags": _tags,
    "language": _language,
    "words": _words,
    "regex": _regex,
}


def _attributes(value: object, where: str, known: _Known) -> _Attributes | None:
    if not isinstance(value, dict) or not value:
        known.problem(where, "must be a non-empty table of attribute = value(s)")
        return None
    wanted: list[tuple[str, frozenset[AttrKey]]] = []
    for name, given in value.items():
        items = given if isinstance(given, list) else [given]
        keys = {_attr_key(item) for item in items}
        if not items or None in keys:
            known.problem(
                f"{where}.{name}",
                "must be a boolean, number or string, or a non-empty list of them",
            )
            continue
        wanted.append((name, frozenset(key for key in keys if key is not None)))
    return _Attributes(tuple(wanted)) if len(wanted) == len(value) else None


def _repeat(value: object, where: str, known: _Known) -> _Repeat | None:
    if not isinstance(value, dict):
        known.problem(where, "must be a table { count = N, within_s = SECONDS }")
        return None
    _unknown_keys(value, ("count", "within_s"), where, "key", known)
    count, within_s = value.get("count"), value.get("within_s")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        known.problem(f"{where}.count", f"must be an integer of at least 1, not {count!r}")
        count = None
    if isinstance(within_s, bool) or not isinstance(within_s, int | float) or within_s <= 0:
        known.problem(f"{where}.within_s", f"must be a number of seconds above 0, not {within_s!r}")
        within_s = None
    if count is None or within_s is None or set(value) - {"count", "within_s"}:
        return None
    return _Repeat(count=count, within=timedelta(seconds=within_s))


def _business_hours(
    match: dict[str, Any], where: str, then: _Then, known: _Known
) -> _BusinessHours | None:
    mode = match["business_hours"]
    if mode not in ("inside", "outside"):
        known.problem(f"{where}.business_hours", f'must be "inside" or "outside", not {mode!r}')
        return None
    calendar = _calendar(match, where, then, known)
    return None if calendar is None else _BusinessHours(calendar, inside=mode == "inside")


def _calendar(match: dict[str, Any], where: str, then: _Then, known: _Known) -> OpenHours | None:
    """``match.calendar``, else the rule's queue's calendar, else ``always``."""
    at, whose = f"{where}.business_hours", ""
    if "calendar" in match:
        name, at = match["calendar"], f"{where}.calendar"
        if not isinstance(name, str):
            known.problem(at, "must be a string")
            return None
    elif then.queue is not None:
        name = known.queue_calendars.get(then.queue, ALWAYS)
        whose = f'queue "{then.queue}" has '
    else:
        name = ALWAYS
    if name in known.calendars:
        return known.calendars[name]
    if name == ALWAYS:
        return _AlwaysOpen()
    names = _listing({*known.calendars, ALWAYS})
    known.problem(at, f'{whose}unknown calendar "{name}" (known: {names})')
    return None
