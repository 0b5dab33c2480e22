from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import rules as rules_module
from router.models import Identity, NormalizedMessage, Reason, RoutingContext
from router.rules import Facts, RuleOutcome, RuleSet
from router.rules_config import compile_rules

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 UTC
QUEUES = ("billing", "default", "vip", "night")
POLICIES = ("default", "premium")


class OfficeHours:
    """Weekdays 09:00-17:00 UTC: a stand-in for ``router.calendars.Calendar``."""

    def is_open(self, at: datetime, /) -> bool:
        return at.weekday() < 5 and 9 <= at.hour < 17


CALENDARS = {"office": OfficeHours()}
QUEUE_CALENDARS = {"billing": "office"}


def ruleset(toml: str) -> RuleSet:
    compiled, problems = compile_rules(
        tomllib.loads(toml).get("rules"),
        queues=QUEUES,
        calendars=CALENDARS,
        policies=POLICIES,
        queue_calendars=QUEUE_CALENDARS,
    )
    assert problems == []
    return compiled


def problems_of(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = tomllib.loads(raw).get("rules")
    _, problems = compile_rules(
        raw,
        queues=QUEUES,
        calendars=CALENDARS,
        policies=POLICIES,
        queue_calendars=QUEUE_CALENDARS,
    )
    assert problems, "expected problems"
    return problems


def message(
    text: str = "hello",
    *,
    subject: str | None = None,
    channel: str = "chat",
    source: str = "webchat",
    identities: tuple[Identity, ...] = (),
    attributes: dict[str, Any] | None = None,
) -> NormalizedMessage:
    return NormalizedMessage(
        channel=channel,
        source=source,
        external_id="m1",
        sender_name=None,
        identities=identities,
        customer_attributes=attributes or {},
        thread=None,
        subject=subject,
        text=text,
        sent_at=NOW,
        received_at=NOW,
        attachments=(),
        attributes={},
    )


def facts(
    msg: NormalizedMessage | None = None,
    *,
    profile: dict[str, Any] | None = None,
    recent: list[datetime] | None = None,
    now: datetime = NOW,
    detector: Any = None,
) -> Facts:
    context = RoutingContext(customer_id="c1", attributes=profile or {}, recent=recent or [])
    if detector is None:
        return Facts(message=msg or message(), context=context, now=now)
    return Facts(message=msg or message(), context=context, now=now, detector=detector)


def run(rs: RuleSet, f: Facts, default_priority: int = 3) -> RuleOutcome:
    return rs.evaluate(f, default_priority=default_priority)


class CountingDetector:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, text: str) -> str | None:
        self.calls += 1
        return self.answer


# --- the documented format --------------------------------------------------------------


def test_the_module_docstring_example_compiles() -> None:
    doc = rules_module.__doc__ or ""
    example = doc.split("::\n", 1)[1].split("\nMatching:", 1)[0]
    compiled, problems = compile_rules(
        tomllib.loads(example)["rules"],
        queues=QUEUES,
        calendars={"madrid": OfficeHours()},
        policies=POLICIES,
        queue_calendars={},
    )
    assert problems == []
    assert compiled.names == ("vip", "billing-spanish")
    assert compiled.uses_language


def test_absent_rules_are_an_empty_ruleset() -> None:
    compiled, problems = compile_rules(
        None, queues=QUEUES, calendars={}, policies=POLICIES, queue_calendars={}
    )
    assert (len(compiled), problems) == (0, [])
    outcome = run(compiled, facts(), default_priority=4)
    assert outcome == RuleOutcome(
        queue=None, priority=4, sla=None, skills=(), tags=(), reasons=[], matched=()
    )


def test_a_rule_without_match_matches_everything() -> None:
    rs = ruleset('[[rules]]\nname = "all"\nthen.tags = ["seen"]')
    assert run(rs, facts()).tags == ("seen",)


# --- combining matching rules ------------------------------------------------------------


COMBINED = """
[[rules]]
name = "vip"
match.attributes = { vip = true }
then.priority_delta = -1
then.skills = ["vip"]

[[rules]]
name = "billing"
match.words = ["refund"]
then.queue = "billing"
then.priority = 4
then.sla = "premium"
then.skills = ["billing", "vip"]
then.tags = ["money"]

[[rules]]
name = "anything-to-default"
then.queue = "default"
then.priority = 5
then.sla = "default"
then.priority_delta = -1
then.tags = ["money", "all"]
"""


def test_first_queue_priority_and_sla_win_deltas_add_and_lists_union() -> None:
    outcome = run(ruleset(COMBINED), facts(message("I want a refund", attributes={"vip": True})))
    assert outcome.queue == "billing"
    assert outcome.priority == 4 - 1 - 1
    assert outcome.sla == "premium"
    assert outcome.skills == ("vip", "billing")
    assert outcome.tags == ("money", "all")
    assert outcome.matched == ("vip", "billing", "anything-to-default")


def test_reasons_carry_only_what_each_rule_decided() -> None:
    outcome = run(ruleset(COMBINED), facts(message("I want a refund", attributes={"vip": True})))
    assert outcome.reasons == [
        Reason(
            kind="rule",
            name="vip",
            decided={"priority_delta": -1, "skills": ["vip"], "matched": ["attributes"]},
        ),
        Reason(
            kind="rule",
            name="billing",
            decided={
                "queue": "billing",
                "priority": 4,
                "sla": "premium",
                "skills": ["billing", "vip"],
                "tags": ["money"],
                "matched": ["words"],
            },
        ),
        Reason(
            kind="rule",
            name="anything-to-default",
            decided={"priority_delta": -1, "tags": ["money", "all"], "matched": []},
        ),
    ]


def test_the_default_priority_applies_when_no_rule_sets_one() -> None:
    rs = ruleset('[[rules]]\nname = "d"\nthen.priority_delta = 1')
    assert run(rs, facts(), default_priority=3).priority == 4


@pytest.mark.parametrize(("delta", "expected"), [(-4, 1), (4, 5)])
def test_priority_is_clamped(delta: int, expected: int) -> None:
    rs = ruleset(
        f'[[rules]]\nname = "a"\nthen.priority_delta = {delta}\n'
        f'[[rules]]\nname = "b"\nthen.priority_delta = {delta}'
    )
    assert run(rs, facts()).priority == expected


@given(
    base=st.integers(1, 5) | st.none(),
    default=st.integers(1, 5),
    deltas=st.lists(st.integers(-4, 4), max_size=6),
)
def test_priority_is_base_plus_deltas_clamped(
    base: int | None, default: int, deltas: list[int]
) -> None:
    raw: list[dict[str, Any]] = [
        {"name": f"r{i}", "then": {"priority_delta": d}} for i, d in enumerate(deltas)
    ]
    if base is not None:
        raw.append({"name": "base", "then": {"priority": base}})
    rs, problems = compile_rules(raw, queues=(), calendars={}, policies=(), queue_calendars={})
    assert problems == []
    expected = min(5, max(1, (default if base is None else base) + sum(deltas)))
    assert run(rs, facts(), default_priority=default).priority == expected


def test_twenty_rules_evaluate_to_what_each_one_says() -> None:
    words = [f"topic{i}" for i in range(20)]
    raw = [
        {
            "name": f"rule-{i}",
            "match": {"words": [words[i]], "channel": ["email", "chat"]},
            "then": {"tags": [f"t{i}"], "priority_delta": -1 if i % 5 == 0 else 0},
        }
        for i in range(19)
    ]
    raw.append({"name": "sms-only", "match": {"channel": "sms"}, "then": {"queue": "night"}})
    rs, problems = compile_rules(raw, queues=QUEUES, calendars={}, policies=(), queue_calendars={})
    assert problems == []
    text = "About topic0, topic5 and topic7 (not topic77 nor xtopic3)"
    outcome = run(rs, facts(message(text, channel="email")))
    assert outcome.matched == ("rule-0", "rule-5", "rule-7")
    assert outcome.tags == ("t0", "t5", "t7")
    assert outcome.priority == 3 - 2
    assert outcome.queue is None
    assert run(rs, facts(message(text, channel="sms"))).matched == ("sms-only",)


# --- conditions -------------------------------------------------------------------------


def test_attributes_overlay_the_profile_with_the_message() -> None:
    rs = ruleset('[[rules]]\nname = "gold"\nmatch.attributes = { tier = ["Gold", "platinum"] }')
    assert run(rs, facts(profile={"tier": "gold"})).matched == ("gold",)
    assert run(rs, facts(message(attributes={"tier": "PLATINUM"}))).matched == ("gold",)
    overridden = facts(message(attributes={"tier": "silver"}), profile={"tier": "gold"})
    assert run(rs, overridden).matched == ()
    assert run(rs, facts()).matched == ()


def test_attribute_values_keep_booleans_apart_from_numbers() -> None:
    rs = ruleset('[[rules]]\nname = "vip"\nmatch.attributes = { vip = true, level = 2 }')
    assert run(rs, facts(profile={"vip": True, "level": 2})).matched == ("vip",)
    assert run(rs, facts(profile={"vip": True, "level": 2.0})).matched == ("vip",)
    assert run(rs, facts(profile={"vip": 1, "level": 2})).matched == ()
    assert run(rs, facts(profile={"vip": "true", "level": 2})).matched == ()
    assert run(rs, facts(profile={"vip": True})).matched == ()


def test_a_list_attribute_matches_when_an_element_does() -> None:
    rs = ruleset('[[rules]]\nname = "r"\nmatch.attributes = { products = "router" }')
    assert run(rs, facts(profile={"products": ["phone", "Router"]})).matched == ("r",)


def test_words_are_whole_words_case_insensitive_unicode() -> None:
    rs = ruleset(
        '[[rules]]\nname = "w"\nmatch.words = ["refund", "straße", "charge back", "Größe"]'
    )

    def hit(text: str, subject: str | None = None) -> bool:
        return run(rs, facts(message(text, subject=subject))).matched == ("w",)

    assert hit("I want a REFUND now")
    assert hit("refund.")
    assert hit("anything", subject="Refund request")
    assert hit("Hauptstrasse? no: HAUPT STRASSE")
    assert hit("please charge\n  back my card")
    assert hit("die GRÖSSE stimmt nicht")
    assert not hit("I was refunded")
    assert not hit("prerefund")
    assert not hit("chargeback")


def test_regex_searches_subject_and_text() -> None:
    rs = ruleset(
        '[[rules]]\nname = "order"\nmatch.regex = ["(?i)order\\\\s*#?\\\\d{6}", "^URGENT"]'
    )

    def hit(text: str, subject: str | None = None) -> bool:
        return run(rs, facts(message(text, subject=subject))).matched == ("order",)

    assert hit("where is ORDER #123456?")
    assert hit("hi", subject="order 654321")
    assert hit("URGENT: call me")
    assert hit("URGENT", subject=None)
    assert not hit("order 12345")
    assert not hit("this is URGENT")


def test_channel_source_and_identity_kinds() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "wa-phone"
        match.channel = "social"
        match.source = ["WhatsApp"]
        match.identity_kinds = ["phone"]
        """
    )
    phone = (Identity(kind="phone", value="+34612345678", verified=True),)
    good = message(channel="social", source="whatsapp", identities=phone)
    assert run(rs, facts(good)).matched == ("wa-phone",)
    no_phone = message(channel="social", source="whatsapp")
    assert run(rs, facts(no_phone)).matched == ()
    other_channel = message(channel="sms", source="whatsapp", identities=phone)
    assert run(rs, facts(other_channel)).matched == ()
    other_source = message(channel="social", source="telegram", identities=phone)
    assert run(rs, facts(other_source)).matched == ()


def test_tags_look_in_the_customers_tags_attribute() -> None:
    rs = ruleset('[[rules]]\nname = "angry"\nmatch.tags = ["angry", "churn-risk"]')
    assert run(rs, facts(profile={"tags": ["Churn-Risk", "b2b"]})).matched == ("angry",)
    assert run(rs, facts(message(attributes={"tags": "angry"}))).matched == ("angry",)
    assert run(rs, facts(profile={"tags": ["happy"]})).matched == ()
    assert run(rs, facts(profile={"tags": 3})).matched == ()


def test_repeat_counts_recent_messages_in_the_window_plus_this_one() -> None:
    rs = ruleset('[[rules]]\nname = "again"\nmatch.repeat = { count = 3, within_s = 3600 }')
    hour = timedelta(hours=1)
    assert run(rs, facts(recent=[NOW - timedelta(minutes=5), NOW - hour])).matched == ("again",)
    late = [NOW - timedelta(minutes=5), NOW - hour - timedelta(seconds=1)]
    assert run(rs, facts(recent=late)).matched == ()
    assert run(rs, facts(recent=[NOW - timedelta(minutes=1)])).matched == ()


def test_the_ruleset_knows_how_far_back_repeat_looks() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "a"
        match.repeat = { count = 2, within_s = 600 }
        [[rules]]
        name = "b"
        match.repeat = { count = 3, within_s = 86400.5 }
        """
    )
    assert rs.repeat_window_s == 86400.5
    assert ruleset('[[rules]]\nname = "c"').repeat_window_s == 0.0


def test_repeat_of_one_is_every_message() -> None:
    rs = ruleset('[[rules]]\nname = "once"\nmatch.repeat = { count = 1, within_s = 1 }')
    assert run(rs, facts()).matched == ("once",)


def test_business_hours_use_the_rule_queues_calendar() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "after-hours"
        match.business_hours = "outside"
        then.queue = "billing"
        """
    )
    assert run(rs, facts(now=NOW)).matched == ()
    assert run(rs, facts(now=NOW.replace(hour=20))).matched == ("after-hours",)
    saturday = NOW + timedelta(days=4)
    assert run(rs, facts(now=saturday)).queue == "billing"


def test_business_hours_with_a_named_calendar_or_always() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "office"
        match.business_hours = "inside"
        match.calendar = "office"
        then.tags = ["office"]

        [[rules]]
        name = "never-outside-always"
        match.business_hours = "outside"
        then.queue = "default"
        """
    )
    assert run(rs, facts(now=NOW)).matched == ("office",)
    assert run(rs, facts(now=NOW.replace(hour=3))).matched == ()


def test_language_is_detected_once_and_only_when_needed() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "es-email"
        match.language = ["ES"]
        match.channel = "email"
        then.skills = ["spanish"]

        [[rules]]
        name = "es-any"
        match.language = "es"
        then.tags = ["es"]

        [[rules]]
        name = "pt"
        match.language = "pt"
        then.tags = ["pt"]
        """
    )
    assert rs.uses_language
    detector = CountingDetector("es")
    outcome = run(rs, facts(message(channel="email"), detector=detector))
    assert outcome.matched == ("es-email", "es-any")
    assert detector.calls == 1


def test_language_is_not_detected_when_cheaper_conditions_fail() -> None:
    rs = ruleset('[[rules]]\nname = "r"\nmatch.language = "es"\nmatch.channel = "sms"')
    detector = CountingDetector("es")
    assert run(rs, facts(message(channel="chat"), detector=detector)).matched == ()
    assert detector.calls == 0


def test_no_language_rule_never_detects() -> None:
    rs = ruleset('[[rules]]\nname = "r"\nmatch.words = ["hola"]')
    detector = CountingDetector("es")
    assert not rs.uses_language
    assert run(rs, facts(message("hola"), detector=detector)).matched == ("r",)
    assert detector.calls == 0


def test_language_with_the_real_detector() -> None:
    rs = ruleset('[[rules]]\nname = "es"\nmatch.language = "es"')
    spanish = message("Hola, mi pedido no ha llegado todavía y necesito ayuda.")
    assert run(rs, facts(spanish)).matched == ("es",)
    assert run(rs, facts(message("Hola"))).matched == ()
    english = message("Hello, my order has not arrived yet and I need help.")
    assert run(rs, facts(english)).matched == ()


# --- problems ----------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_key() -> None:
    problems = problems_of(
        """
        [[rules]]
        then.queue = "billling"

        [[rules]]
        name = "a"
        colour = "red"
        match.mood = "bad"
        match.channel = ["email", "fax"]
        then.queue = "billing"
        then.priority = 7
        then.sla = "gold"
        then.assign = "bob"

        [[rules]]
        name = "a"
        match.regex = ["(unclosed"]
        match.repeat = { count = 0, within_s = 0 }
        match.business_hours = "sometimes"
        then.priority_delta = 1
        """
    )
    assert problems == [
        "rules[0]: missing name",
        'rules[0].then.queue: unknown queue "billling" (known: billing, default, night, vip)',
        "rules[1].colour: unknown key (known: name, description, match, then)",
        "rules[1].then.assign: unknown action"
        " (known: priority, priority_delta, queue, skills, sla, tags)",
        'rules[1].then.sla: unknown sla policy "gold" (known: default, premium)',
        "rules[1].then.priority: must be an integer 1..5, not 7",
        "rules[1].match.mood: unknown condition (known: attributes, business_hours, calendar,"
        " channel, identity_kinds, inbox, language, regex, repeat, source, tags, words)",
        'rules[1].match.channel: unknown channel "fax" (known: email, chat, social, sms, voice,'
        " other)",
        'rules[2].match.regex[0]: invalid regex "(unclosed": missing ), unterminated subpattern'
        " at position 0",
        "rules[2].match.repeat.count: must be an integer of at least 1, not 0",
        "rules[2].match.repeat.within_s: must be a number of seconds above 0, not 0",
        'rules[2].match.business_hours: must be "inside" or "outside", not \'sometimes\'',
        'rules[2].name: duplicate rule name "a" (also rules[1])',
    ]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('name = "x"\nthen.tags = []', "rules[0].then.tags: must be a non-empty list of strings"),
        ('name = "x"\nthen.skills = [1]', "rules[0].then.skills[0]: must be a non-empty string"),
        ('name = "x"\nmatch.words = []\nthen.tags=["t"]', "rules[0].match.words: must be a"),
        ('name = "x"\nmatch.words = [""]\nthen.tags=["t"]', "rules[0].match.words[0]: must be"),
        ('name = ""\nthen.tags = ["t"]', "rules[0].name: must be a non-empty string"),
        ("name = 3\nthen.tags = ['t']", "rules[0].name: must be a non-empty string"),
        ('name = "x"\nthen = 3', "rules[0].then: must be a table"),
        ('name = "x"\nthen.priority = true', "rules[0].then.priority: must be an integer 1..5"),
        (
            'name = "x"\nthen.priority_delta = -5',
            "rules[0].then.priority_delta: must be an integer",
        ),
        ('name = "x"\nthen.queue = 1', "rules[0].then.queue: must be a string"),
        ('name = "x"\nthen.tags=["t"]\nmatch.language = "spanish"', "is not an ISO 639-1 code"),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.attributes = {}',
            "rules[0].match.attributes: must be a non-empty table",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.attributes = { a = [] }',
            "rules[0].match.attributes.a: must be a boolean, number or string",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.attributes = { a = { b = 1 } }',
            "rules[0].match.attributes.a: must be a boolean, number or string",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.repeat = 3',
            "rules[0].match.repeat: must be a table",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.repeat = { count = 2, within_s = 9, per = 1 }',
            "rules[0].match.repeat.per: unknown key (known: count, within_s)",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.calendar = "office"',
            "rules[0].match.calendar: needs match.business_hours",
        ),
        (
            'name = "x"\nthen.tags=["t"]\nmatch.business_hours = "inside"\nmatch.calendar = "mars"',
            'rules[0].match.calendar: unknown calendar "mars" (known: always, office)',
        ),
    ],
)
def test_single_problems(toml: str, problem: str) -> None:
    problems = problems_of("[[rules]]\n" + toml)
    assert len(problems) == 1, problems
    assert problem in problems[0], problems


def test_a_queue_with_an_unknown_calendar_is_reported_on_business_hours() -> None:
    compiled, problems = compile_rules(
        [{"name": "x", "match": {"business_hours": "inside"}, "then": {"queue": "billing"}}],
        queues=QUEUES,
        calendars={},
        policies=(),
        queue_calendars={"billing": "lisbon"},
    )
    assert problems == [
        'rules[0].match.business_hours: queue "billing" has unknown calendar "lisbon"'
        " (known: always)"
    ]
    assert len(compiled) == 0


def test_rules_must_be_an_array_of_tables() -> None:
    assert problems_of({"name": "x"}) == ["rules: must be an array of tables [[rules]]"]
    assert problems_of([3]) == ["rules[0]: must be a table"]


def test_only_clean_rules_are_kept_and_the_path_is_used() -> None:
    compiled, problems = compile_rules(
        [{"name": "ok", "then": {"tags": ["t"]}}, {"name": "bad", "then": {"queue": "nope"}}],
        queues=QUEUES,
        calendars={},
        policies=(),
        queue_calendars={},
        path="routing.rules",
    )
    assert compiled.names == ("ok",)
    assert len(problems) == 1
    assert re.match(r'routing\.rules\[1\]\.then\.queue: unknown queue "nope"', problems[0])


def test_inbox_routes_by_where_the_message_arrived() -> None:
    rs = ruleset(
        """
        [[rules]]
        name = "sales"
        match.inbox = ["email:sales@*", "twilio:+1415*"]
        """
    )
    arrived = {
        "EMAIL:Sales@acme.example": True,
        "email:support@acme.example": False,
        "twilio:+14155550199": True,
        "twilio:+34600111222": False,
        None: False,
    }
    for inbox, expected in arrived.items():
        msg = msgspec.structs.replace(message(), inbox=inbox)
        assert (run(rs, facts(msg)).matched == ("sales",)) is expected, inbox
