"""The routing policy as a whole: rules, the queue's calendar, the SLA policy, the aging
bound and sticky routing composed into one ``Decision``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router import urgency
from router.errors import ConfigError
from router.models import IdentityIn, InboundMessage, RoutingContext, Sender
from router.pipeline import normalize
from router.policy import RoutingPolicy, load_policy
from router.settings import load

CONFIG = """
[routing]
queues = ["default"]
default_sla = "office"
sticky_days = 7
max_wait_s = [600, 1200, 1800, 3600, 7200]

[calendars.madrid]
timezone = "Europe/Madrid"
holidays = { country = "ES", subdiv = "MD" }
[calendars.madrid.hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]

[sla.office]
[[sla.office.targets]]
first_response = "4h"

[queues.billing]
calendar = "madrid"
overflow = { to = "default", after_s = 900 }

[[rules]]
name = "billing"
match.words = ["refund"]
then.queue = "billing"

[[rules]]
name = "vip"
match.attributes = { vip = true }
then.priority_delta = -2
"""

FRIDAY_1630_MADRID = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # 16:30 CET


@pytest.fixture
def policy(tmp_path: Path) -> RoutingPolicy:
    path = tmp_path / "omniroute.toml"
    path.write_text(CONFIG)
    return load_policy(load(path, env={}))


def incoming(text: str, at: datetime, **attributes: object):  # type: ignore[no-untyped-def]
    message = InboundMessage(
        channel="email",
        source="mail",
        external_id="m1",
        sender=Sender(
            identities=[IdentityIn(kind="email", value="maria@example.com", verified=True)],
            attributes=dict(attributes),
        ),
        text=text,
    )
    return normalize(message, received_at=at, default_region=None)


def test_a_billing_message_friday_afternoon_is_due_monday_in_business_hours(
    policy: RoutingPolicy,
) -> None:
    decision = policy.decide(
        incoming("I want a refund", FRIDAY_1630_MADRID),
        RoutingContext(),
        conversation_id="con_1",
        item_id="itm_1",
    )
    assert decision.queue == "billing"
    assert decision.deadline == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)  # Mon 12:30 CET
    [sla_reason] = [r for r in decision.reasons if r.kind == "sla"]
    assert sla_reason.name == "office"
    assert sla_reason.decided["calendar"] == "madrid"
    assert sla_reason.decided["first_response_s"] == 4 * 3600
    kinds = {(t.kind, t.ref) for t in decision.timers}
    assert ("overflow", "itm_1") in kinds
    assert ("breach", "first_response") in kinds


def test_the_aging_bound_caps_the_score_of_a_far_deadline(policy: RoutingPolicy) -> None:
    decision = policy.decide(
        incoming("I want a refund", FRIDAY_1630_MADRID),
        RoutingContext(),
        conversation_id="con_1",
        item_id="itm_1",
    )
    bound = FRIDAY_1630_MADRID + timedelta(seconds=1800)  # priority 3's max wait
    assert decision.score == urgency.score(bound, 3)


def test_rules_add_priority_and_the_default_queue_catches_the_rest(
    policy: RoutingPolicy,
) -> None:
    decision = policy.decide(
        incoming("hello", FRIDAY_1630_MADRID, vip=True),
        RoutingContext(),
        conversation_id="con_1",
        item_id="itm_1",
    )
    assert (decision.queue, decision.priority) == ("default", 1)
    assert decision.deadline == FRIDAY_1630_MADRID + timedelta(hours=4)  # "always" calendar
    names = [(r.kind, r.name) for r in decision.reasons]
    assert ("rule", "vip") in names
    assert ("default", "default-queue") in names


def test_sticky_routing_prefers_the_last_agent_within_the_window(
    policy: RoutingPolicy,
) -> None:
    recent = RoutingContext(last_agent="ana", last_agent_at=FRIDAY_1630_MADRID - timedelta(days=2))
    decision = policy.decide(
        incoming("hello", FRIDAY_1630_MADRID), recent, conversation_id="con_1", item_id="itm_1"
    )
    assert decision.queue == "agent.ana"
    assert any(t.kind == "sticky" and t.ref == "itm_1@default" for t in decision.timers)
    stale = RoutingContext(last_agent="ana", last_agent_at=FRIDAY_1630_MADRID - timedelta(days=9))
    decision = policy.decide(
        incoming("hello", FRIDAY_1630_MADRID), stale, conversation_id="con_2", item_id="itm_2"
    )
    assert decision.queue == "default"


def test_every_bad_queue_setting_is_named(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        '[routing]\ndefault_sla = "gold"\n'
        '[queues.a]\ncalendar = "mars"\nsla = "silver"\ncolour = "red"\n'
        'overflow = { to = "a", mode = "sideways" }\n'
        '[queues.b]\noverflow = { to = "a", at = "lunch", after_s = -5 }\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    problems = "\n".join(caught.value.problems)
    for expected in (
        "routing.default_sla: unknown SLA policy 'gold'",
        "queues.a.calendar: unknown calendar 'mars'",
        "queues.a.sla: unknown SLA policy 'silver'",
        "queues.a.colour: unknown key",
        "queues.a.overflow.to: a queue cannot overflow into itself",
        "queues.a.overflow.mode: must be 'move' or 'also'",
        "queues.a.overflow: give after_s",
        "queues.b.overflow.after_s: must be a positive whole number",
        "queues.b.overflow.at: must be 'warning' or 'breach'",
    ):
        assert expected in problems, expected


def test_the_context_is_read_only_when_a_rule_or_sticky_routing_needs_it(
    policy: RoutingPolicy, tmp_path: Path
) -> None:
    assert policy.needs_context  # a rule on attributes, and sticky routing
    path = tmp_path / "words.toml"
    path.write_text('[[rules]]\nname = "refunds"\nmatch.words = ["refund"]\nthen.priority = 2\n')
    assert not load_policy(load(path, env={})).needs_context
    path.write_text('[[rules]]\nname = "again"\nmatch.repeat = { count = 2, within_s = 60 }\n')
    assert load_policy(load(path, env={})).needs_context
