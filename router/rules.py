"""Routing rules: what a message says and who sent it decide queue, priority, SLA, skills.

Rules are an ordered array of tables in the configuration file. Every rule that matches
a message contributes to the outcome; for the queue, the base priority and the SLA
policy the first matching rule that names one wins, deltas add up and skills and tags
are unions::

    [[rules]]
    name = "vip"                                # required, unique
    match.attributes = { vip = true }           # customer attribute equals (one of) the values
    then.priority_delta = -1                    # VIP: one step more urgent

    [[rules]]
    name = "billing-spanish"
    description = "Spanish refunds go to the billing desk"   # optional, for people
    match.channel = ["email", "chat"]           # the message's channel is one of these
    match.source = ["whatsapp"]                 # the connector it came through is one of these
    match.inbox = ["email:sales@*", "whatsapp:1065*"]  # where it arrived (glob patterns)
    match.words = ["refund", "chargeback"]      # any whole word or phrase in subject or text
    match.regex = ["(?i)order\\\\s*#?\\\\d{6}"]     # any Python regex found in subject + text
    match.language = ["es"]                     # detected language (ISO 639-1) is one of these
    match.identity_kinds = ["phone"]            # the message carries an identity of a kind
    match.tags = ["angry"]                      # the customer's "tags" attribute has any
    match.repeat = { count = 3, within_s = 86400 }  # 3+ messages in a day, this one included
    match.business_hours = "outside"            # "inside" | "outside" the calendar's hours
    match.calendar = "madrid"                   # default: then.queue's calendar, else "always"
    then.queue = "billing"                      # first matching rule with a queue decides it
    then.priority = 2                           # base priority, 1 (highest) .. 5
    then.priority_delta = -1                    # -4 .. 4, every matching rule's delta adds
    then.skills = ["spanish"]                   # union over matching rules
    then.sla = "premium"                        # first matching rule with an sla decides it
    then.tags = ["billing"]                     # union over matching rules

Matching:

- All conditions of a rule must hold (AND); a list inside a condition is any-of (OR).
  A rule without ``match`` matches every message. Every list condition also takes a
  single string (``match.channel = "email"``); an empty list is an error.
- ``attributes``: the customer attributes are the stored profile's, overlaid with the
  ones the message's sender carries (the message wins). Each key must equal the value,
  or one of a list of values. Values are scalars: booleans, numbers, strings (compared
  case-insensitively); ``true`` never equals ``1``. A customer attribute that is a
  list matches when any of its elements does.
- ``words``: whole words, case-insensitive under Unicode (NFKC case folding, so
  "STRASSE" finds "straße"), in the subject or the text; spaces inside a phrase match
  any run of whitespace. ``regex``: searched as written (add ``(?i)`` for case) in the
  subject and text joined by a newline (the text alone when there is no subject).
- ``language``: the language of the subject and text as ``router.language.detect``
  sees it; a text too short or too ambiguous to tell has no language and matches no
  ``language`` condition. Detection runs once per message, and only when a rule has a
  ``language`` condition and its cheaper conditions all held.
- ``source``, ``identity_kinds``, ``tags``: compared case-insensitively.
- ``inbox``: the business address, number, page or account the message arrived at, as
  its connector names it (``InboundMessage.inbox``, ``email:support@acme.example``,
  ``twilio:+14155550199``); shell-style patterns (``*``, ``?``, ``[...]``),
  case-insensitive. A message without an inbox matches no ``inbox`` condition.
- ``repeat``: at least ``count`` messages from this customer with ``sent_at`` in the
  last ``within_s`` seconds, the new one included (``RoutingContext.recent`` holds the
  customer's earlier messages; the new message is not among them).
- ``business_hours``: whether the calendar is open at the time of routing. The calendar
  is ``match.calendar``, else the calendar of the rule's own ``then.queue``, else
  ``always`` (24x7). ``match.calendar`` without ``business_hours`` is an error.

The outcome's ``reasons`` carry one ``Reason(kind="rule")`` per matching rule, with only
what that rule decided (a queue a former rule already chose is not repeated) and the
names of its conditions under ``matched``. ``compile_rules`` (in ``router.rules_config``,
importable from here too) reports every problem of the array at once, each naming its
key: ``rules[2].then.queue: unknown queue "billling" (known: billing, default)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar, Protocol

from router.language import detect
from router.models import NormalizedMessage, Reason, RoutingContext

__all__ = ["ALWAYS", "Facts", "OpenHours", "RuleOutcome", "RuleSet", "fold"]

ALWAYS = "always"
"""The calendar that is always open, known even when not configured."""
MIN_PRIORITY, MAX_PRIORITY = 1, 5
MAX_DELTA = MAX_PRIORITY - MIN_PRIORITY


class OpenHours(Protocol):
    """What a rule needs of a calendar (``router.calendars.Calendar`` has it)."""

    def is_open(self, at: datetime, /) -> bool: ...


class _AlwaysOpen:
    def is_open(self, at: datetime, /) -> bool:
        return True


def fold(text: str) -> str:
    """Unicode caseless form (NFKC + casefold) that ``words`` compare in."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Facts:
    """What a rule sees about one message. Derived views are computed on first use and
    kept, so twenty rules asking for the language detect it once."""

    message: NormalizedMessage
    context: RoutingContext
    now: datetime
    detector: Callable[[str], str | None] = field(default=detect, compare=False, repr=False)
    """How the language is told (``router.language.detect``)."""

    @cached_property
    def searchable(self) -> str:
        """The subject and the text joined by a newline, what ``regex`` searches."""
        subject = self.message.subject
        return f"{subject}\n{self.message.text}" if subject else self.message.text

    @cached_property
    def folded(self) -> str:
        return fold(self.searchable)

    @cached_property
    def language(self) -> str | None:
        return self.detector(self.searchable)

    @cached_property
    def attributes(self) -> dict[str, Any]:
        return {**self.context.attributes, **self.message.customer_attributes}

    @cached_property
    def identity_kinds(self) -> frozenset[str]:
        return frozenset(identity.kind.lower() for identity in self.message.identities)

    @cached_property
    def tags(self) -> frozenset[str]:
        tags = self.attributes.get("tags")
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list | tuple):
            return frozenset()
        return frozenset(fold(tag) for tag in tags if isinstance(tag, str))


# --- conditions, cheapest first ---------------------------------------------------------


@dataclass(frozen=True)
class _Channel:
    cost: ClassVar[int] = 0
    values: frozenset[str]

    def holds(self, facts: Facts) -> bool:
        return facts.message.channel in self.values


@dataclass(frozen=True)
class _Source:
    cost: ClassVar[int] = 0
    values: frozenset[str]

    def holds(self, facts: Facts) -> bool:
        return facts.message.source.casefold() in self.values


@dataclass(frozen=True)
class _Inbox:
    cost: ClassVar[int] = 0
    pattern: re.Pattern[str]
    """Every glob of the condition as one case-insensitive regex (``fnmatch.translate``)."""

    def holds(self, facts: Facts) -> bool:
        inbox = facts.message.inbox
        return inbox is not None and self.pattern.match(inbox) is not None


@dataclass(frozen=True)
class _IdentityKinds:
    cost: ClassVar[int] = 1
    values: frozenset[str]

    def holds(self, facts: Facts) -> bool:
        return not self.values.isdisjoint(facts.identity_kinds)


AttrKey = tuple[str, object]


def _attr_key(value: object) -> AttrKey | None:
    """A comparable form that keeps ``true`` apart from ``1`` and ignores string case."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("str", fold(value))
    return None


@dataclass(frozen=True)
class _Attributes:
    cost: ClassVar[int] = 1
    wanted: tuple[tuple[str, frozenset[AttrKey]], ...]

    def holds(self, facts: Facts) -> bool:
        attributes = facts.attributes
        for name, values in self.wanted:
            have = attributes.get(name)
            items = have if isinstance(have, list | tuple) else (have,)
            if not any(_attr_key(item) in values for item in items):
                return False
        return True


@dataclass(frozen=True)
class _Tags:
    cost: ClassVar[int] = 1
    values: frozenset[str]

    def holds(self, facts: Facts) -> bool:
        return not self.values.isdisjoint(facts.tags)


@dataclass(frozen=True)
class _BusinessHours:
    cost: ClassVar[int] = 2
    calendar: OpenHours
    inside: bool

    def holds(self, facts: Facts) -> bool:
        return self.calendar.is_open(facts.now) == self.inside


@dataclass(frozen=True)
class _Repeat:
    cost: ClassVar[int] = 2
    count: int
    within: timedelta

    def holds(self, facts: Facts) -> bool:
        needed = self.count - 1  # the new message is the first
        if needed <= 0:
            return True
        since = facts.now - self.within
        for sent_at in facts.context.recent:
            if sent_at >= since:
                needed -= 1
                if needed == 0:
                    return True
        return False


@dataclass(frozen=True)
class _Words:
    cost: ClassVar[int] = 3
    pattern: re.Pattern[str]

    def holds(self, facts: Facts) -> bool:
        return self.pattern.search(facts.folded) is not None


@dataclass(frozen=True)
class _Regex:
    cost: ClassVar[int] = 4
    patterns: tuple[re.Pattern[str], ...]

    def holds(self, facts: Facts) -> bool:
        text = facts.searchable
        return any(pattern.search(text) is not None for pattern in self.patterns)


@dataclass(frozen=True)
class _Language:
    cost: ClassVar[int] = 9
    values: frozenset[str]

    def holds(self, facts: Facts) -> bool:
        return facts.language in self.values


_Condition = (
    _Channel
    | _Source
    | _Inbox
    | _IdentityKinds
    | _Attributes
    | _Tags
    | _BusinessHours
    | _Repeat
    | _Words
    | _Regex
    | _Language
)


# --- rules and their outcome ------------------------------------------------------------


@dataclass(frozen=True)
class _Then:
    queue: str | None = None
    priority: int | None = None
    priority_delta: int = 0
    sla: str | None = None
    skills: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rule:
    name: str
    conditions: tuple[_Condition, ...]
    """Cheapest first."""
    condition_names: tuple[str, ...]
    """As configured, for the reason."""
    then: _Then

    def matches(self, facts: Facts) -> bool:
        # A plain loop: all() over a generator costs a frame per rule, on every message.
        for condition in self.conditions:  # noqa: SIM110
            if not condition.holds(facts):
                return False
        return True


@dataclass(frozen=True)
class RuleOutcome:
    queue: str | None
    """None: no rule decided the queue (the caller uses its default)."""
    priority: int
    """Clamped to 1..5."""
    sla: str | None
    skills: tuple[str, ...]
    tags: tuple[str, ...]
    reasons: list[Reason]
    matched: tuple[str, ...]
    """Names of the matching rules, in order."""


class _Accumulator:
    """Folds the matching rules' actions into one outcome, in rule order."""

    def __init__(self) -> None:
        self.queue: str | None = None
        self.priority: int | None = None
        self.delta = 0
        self.sla: str | None = None
        self.skills: dict[str, None] = {}
        self.tags: dict[str, None] = {}
        self.reasons: list[Reason] = []
        self.matched: list[str] = []

    def add(self, rule: _Rule) -> None:
        then = rule.then
        decided: dict[str, Any] = {}
        if then.queue is not None and self.queue is None:
            self.queue = decided["queue"] = then.queue
        if then.priority is not None and self.priority is None:
            self.priority = decided["priority"] = then.priority
        if then.priority_delta:
            self.delta += then.priority_delta
            decided["priority_delta"] = then.priority_delta
        if then.sla is not None and self.sla is None:
            self.sla = decided["sla"] = then.sla
        if then.skills:
            self.skills.update(dict.fromkeys(then.skills))
            decided["skills"] = list(then.skills)
        if then.tags:
            self.tags.update(dict.fromkeys(then.tags))
            decided["tags"] = list(then.tags)
        decided["matched"] = list(rule.condition_names)
        self.reasons.append(Reason(kind="rule", name=rule.name, decided=decided))
        self.matched.append(rule.name)

    def outcome(self, default_priority: int) -> RuleOutcome:
        base = default_priority if self.priority is None else self.priority
        return RuleOutcome(
            queue=self.queue,
            priority=min(MAX_PRIORITY, max(MIN_PRIORITY, base + self.delta)),
            sla=self.sla,
            skills=tuple(self.skills),
            tags=tuple(self.tags),
            reasons=self.reasons,
            matched=tuple(self.matched),
        )


class RuleSet:
    """The compiled ``[[rules]]``; evaluating it never fails and does no I/O."""

    def __init__(self, rules: Sequence[_Rule] = ()) -> None:
        self._rules = tuple(rules)
        self.uses_language: bool = any(
            isinstance(c, _Language) for rule in self._rules for c in rule.conditions
        )
        """Whether some rule asks for the message's language (the detector's model then
        deserves loading at start-up, ``router.language.load``, not on the first message)."""
        self.repeat_window_s: float = max(
            (
                c.within.total_seconds()
                for rule in self._rules
                for c in rule.conditions
                if isinstance(c, _Repeat)
            ),
            default=0.0,
        )
        """The longest ``match.repeat.within_s``: how far back ``RoutingContext.recent``
        must reach."""
        self.uses_profile: bool = any(
            isinstance(c, _Attributes | _Tags | _Repeat)
            for rule in self._rules
            for c in rule.conditions
        )
        """Whether some rule reads what the store knows of the customer (stored
        attributes, tags, recent messages): without one, the routing context is not read."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def evaluate(self, facts: Facts, *, default_priority: int) -> RuleOutcome:
        acc = _Accumulator()
        for rule in self._rules:
            if rule.matches(facts):
                acc.add(rule)
        return acc.outcome(default_priority)
