"""The routing policy: where a new message goes, how urgent it is, and when it is due.

``RoutingPolicy.decide`` runs, for every message:

1. the ordered rules (``router.rules``) → queue, priority, skills, tags, SLA policy;
2. sticky routing: a returning customer served by an agent in the last
   ``routing.sticky_days`` is offered first to ``agent.<agent_id>``, falling back to the
   team queue after ``routing.sticky_timeout_s`` (a ``sticky`` timer);
3. the SLA policy's targets for that priority and channel, counted in the queue's
   business-hours calendar (``router.calendars``) → the clocks and their timers
   (``router.sla``), and the deadline: the earliest running response clock;
4. the backlog score (``router.urgency``): the deadline, capped by the priority's aging
   bound ``routing.max_wait_s``, then the priority.

Every step adds its ``Reason``, so a work item says which rules matched, what each
decided, and which SLA policy and calendar gave the deadline. ``compile_policy`` checks
the whole configuration at once and names every bad key; ``omniroute check-config``
and start-up refuse a policy with problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from router import lifecycle, urgency
from router.calendars import Calendar, parse_calendars
from router.errors import ConfigError
from router.lifecycle import LifecycleConfig
from router.models import Decision, NormalizedMessage, Reason, RoutingContext
from router.queue_spec import OverflowSpec, QueueSpec, agent_queue, valid_agent_id
from router.rules import Facts, RuleSet
from router.rules_config import compile_rules
from router.settings import Settings
from router.sla import SlaPolicy, parse_policies

_QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_QUEUE_KEYS = {"calendar", "sla", "overflow"}
_OVERFLOW_KEYS = {"to", "after_s", "at", "mode"}


@dataclass(frozen=True)
class RoutingPolicy:
    settings: Settings
    rules: RuleSet
    calendars: Mapping[str, Calendar]
    policies: Mapping[str, SlaPolicy]
    queues: Mapping[str, QueueSpec]
    lifecycle: LifecycleConfig
    context_window_s: float = 0.0
    """The longest ``match.repeat.within_s`` of the rules (how far back the store reads
    a customer's recent messages)."""

    @property
    def needs_context(self) -> bool:
        """Whether deciding reads the store's ``RoutingContext``: some rule looks at the
        stored profile or recent messages, or sticky routing is on."""
        return self.rules.uses_profile or self.settings.routing.sticky_days > 0

    def max_wait_s(self, priority: int) -> float:
        return self.settings.routing.max_wait_s[priority - 1]

    def decide(
        self,
        message: NormalizedMessage,
        context: RoutingContext,
        *,
        conversation_id: str,
        item_id: str,
    ) -> Decision:
        routing = self.settings.routing
        at = message.received_at
        outcome = self.rules.evaluate(
            Facts(message=message, context=context, now=at),
            default_priority=routing.default_priority,
        )
        reasons = list(outcome.reasons)
        queue = outcome.queue
        if queue is None:
            queue = routing.default_queue
            reasons.append(Reason(kind="default", name="default-queue", decided={"queue": queue}))
        priority = outcome.priority
        sticky = self._sticky_agent(context, at)
        team_queue = None
        if sticky is not None:
            team_queue, queue = queue, agent_queue(sticky)
            reasons.append(
                Reason(kind="sticky", name=sticky, decided={"queue": queue, "fallback": team_queue})
            )
        opening = lifecycle.initial(
            self.lifecycle,
            policy=outcome.sla,
            priority=priority,
            channel=message.channel,
            queue=queue,
            received_at=at,
            conversation_id=conversation_id,
            item_id=item_id,
            team_queue=team_queue,
        )
        deadline = opening.deadline or at + timedelta(seconds=self.max_wait_s(priority))
        calendar = self.queues[team_queue or queue].calendar
        decided = dict(opening.reason.decided, calendar=calendar, deadline=deadline.isoformat())
        reasons.append(Reason(kind="sla", name=opening.reason.name, decided=decided))
        return Decision(
            queue=queue,
            priority=priority,
            deadline=deadline,
            reasons=reasons,
            score=urgency.score(
                deadline, priority, queued_at=at, max_wait_s=self.max_wait_s(priority)
            ),
            skills=list(outcome.skills),
            tags=list(outcome.tags),
            sla=opening.sla,
            timers=opening.timers,
        )

    def _sticky_agent(self, context: RoutingContext, at: datetime) -> str | None:
        days = self.settings.routing.sticky_days
        if not days or context.last_agent is None or context.last_agent_at is None:
            return None
        if at - context.last_agent_at > timedelta(days=days):
            return None
        return context.last_agent if valid_agent_id(context.last_agent) else None


def compile_policy(settings: Settings) -> tuple[RoutingPolicy | None, list[str]]:
    """The policy of ``settings`` and every problem with it (None when there are any)."""
    tables, routing = settings.tables, settings.routing
    calendars, problems = parse_calendars(tables.calendars)
    policies, sla_problems = parse_policies(
        tables.sla, default_first_response_s=routing.first_response_s
    )
    problems += sla_problems
    queues = _parse_queues(settings, calendars, policies, problems)
    if routing.default_sla not in policies:
        problems.append(
            f"routing.default_sla: unknown SLA policy {routing.default_sla!r} "
            f"(known: {', '.join(sorted(policies))})"
        )
    rules, rule_problems = compile_rules(
        tables.rules,
        queues=list(queues),
        calendars=calendars,
        policies=list(policies),
        queue_calendars={name: spec.calendar for name, spec in queues.items()},
    )
    problems += rule_problems
    if problems:
        return None, problems
    lifecycle = LifecycleConfig(
        queues=queues,
        calendars=calendars,
        policies=policies,
        default_policy=routing.default_sla,
        warning_priority_delta=routing.warning_priority_delta,
        breach_priority_delta=routing.breach_priority_delta,
        reopen_window_s=routing.reopen_window_s,
        sticky_timeout_s=routing.sticky_timeout_s,
    )
    policy = RoutingPolicy(
        settings=settings,
        rules=rules,
        calendars=calendars,
        policies=policies,
        queues=queues,
        lifecycle=lifecycle,
        context_window_s=rules.repeat_window_s,
    )
    return policy, []


def policy_problems(settings: Settings) -> list[str]:
    return compile_policy(settings)[1]


def load_policy(settings: Settings) -> RoutingPolicy:
    policy, problems = compile_policy(settings)
    if policy is None:
        raise ConfigError(problems)
    return policy


def _parse_queues(
    settings: Settings,
    calendars: Mapping[str, Calendar],
    policies: Mapping[str, SlaPolicy],
    problems: list[str],
) -> dict[str, QueueSpec]:
    names = settings.queue_names
    for name in settings.tables.queues:
        if not _QUEUE_NAME.match(name):
            problems.append(f"queues.{name}: invalid queue name: use a-z, 0-9, '_' and '-'")
    specs: dict[str, QueueSpec] = {}
    for name in names:
        table = settings.tables.queues.get(name, {})
        path = f"queues.{name}"
        if not isinstance(table, dict):
            problems.append(f"{path}: must be a table")
            table = {}
        specs[name] = _parse_queue(name, table, names, (calendars, policies), problems)
    return specs


def _parse_queue(
    name: str,
    table: dict[str, Any],
    names: tuple[str, ...],
    known: tuple[Mapping[str, Calendar], Mapping[str, SlaPolicy]],
    problems: list[str],
) -> QueueSpec:
    calendars, policies = known
    path = f"queues.{name}"
    for key in sorted(set(table) - _QUEUE_KEYS):
        problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(_QUEUE_KEYS))})")
    calendar = table.get("calendar", "always")
    if calendar not in calendars:
        listed = ", ".join(sorted(calendars))
        problems.append(f"{path}.calendar: unknown calendar {calendar!r} (known: {listed})")
        calendar = "always"
    sla = table.get("sla")
    if sla is not None and sla not in policies:
        problems.append(
            f"{path}.sla: unknown SLA policy {sla!r} (known: {', '.join(sorted(policies))})"
        )
        sla = None
    overflow = None
    if "overflow" in table:
        overflow = _parse_overflow(name, table["overflow"], f"{path}.overflow", names, problems)
    return QueueSpec(name=name, calendar=calendar, sla=sla, overflow=overflow)


def _parse_overflow(
    name: str, raw: Any, path: str, names: tuple[str, ...], problems: list[str]
) -> OverflowSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: must be a table {{ to = ..., after_s = ..., at = ... }}")
        return None
    before = len(problems)
    for key in sorted(set(raw) - _OVERFLOW_KEYS):
        problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(_OVERFLOW_KEYS))})")
    to, after_s, at = raw.get("to"), raw.get("after_s"), raw.get("at")
    mode = raw.get("mode", "move")
    if not isinstance(to, str) or to not in names:
        problems.append(f"{path}.to: unknown queue {to!r} (known: {', '.join(names)})")
    elif to == name:
        problems.append(f"{path}.to: a queue cannot overflow into itself")
    if after_s is not None and (
        isinstance(after_s, bool) or not isinstance(after_s, int) or after_s <= 0
    ):
        problems.append(f"{path}.after_s: must be a positive whole number of seconds")
    if at is not None and at not in ("warning", "breach"):
        problems.append(f"{path}.at: must be 'warning' or 'breach', got {at!r}")
    if after_s is None and at is None:
        problems.append(f"{path}: give after_s (seconds waiting) and/or at (warning | breach)")
    if mode not in ("move", "also"):
        problems.append(f"{path}.mode: must be 'move' or 'also', got {mode!r}")
    if len(problems) > before or not isinstance(to, str):
        return None
    return OverflowSpec(to=to, after_s=after_s, at=at, mode=mode)
