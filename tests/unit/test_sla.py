"""SLA policies (parsing, target lookup) and clock arithmetic over 24x7 and business hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from router import sla
from router.calendars import Calendar
from router.models import ConversationSla, SlaClock
from router.sla import SlaPolicy, TargetEntry, Targets

MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
H = 3600


class Always:
    """A tiny 24x7 calendar: business time is wall time."""

    name = "always"

    def is_open(self, at: datetime) -> bool:
        return True

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())

    def next_open(self, at: datetime) -> datetime:
        return at


ALWAYS = Always()
OFFICE = Calendar(
    "office", tz=ZoneInfo("UTC"), week=[[(9 * 60, 17 * 60)]] * 5 + [[], []]
)  # Mon-Fri 09:00-17:00 UTC


def policy(**targets: int) -> SlaPolicy:
    return SlaPolicy("p", 0.75, (TargetEntry(targets=Targets(**targets)),))


def started(calendar: Any = ALWAYS, at: datetime = MON, **targets: int) -> ConversationSla:
    return sla.start(policy(**targets), Targets(**targets), calendar, at)


def clock(s: ConversationSla, kind: str) -> SlaClock:
    found = sla.find(s, kind)
    assert found is not None
    return found


# --- durations and policies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 4 * H), ("2d", 2 * 86400), ("1h30m", 5400), (60, 60)],
)
def test_parse_duration(text: object, seconds: int) -> None:
    assert sla.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["15x", "", "1.5h", "h", "30m1h", -1, True, 1.5, None])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        sla.parse_duration(bad)


STANDARD: dict[str, Any] = {
    "standard": {
        "warning_at": 0.8,
        "targets": [
            {
                "priority": [1, 2],
                "channel": ["chat", "social"],
                "first_response": "15m",
                "next_response": "30m",
                "resolution": "8h",
            },
            {"priority": 1, "first_response": "1h"},
            {"first_response": "4h", "resolution": "3d"},
        ],
    }
}


def test_policies_parse_and_the_first_matching_entry_wins() -> None:
    policies, problems = sla.parse_policies(STANDARD, default_first_response_s=3600)
    assert problems == []
    standard = policies["standard"]
    assert standard.warning_ratio == 0.8
    assert standard.targets_for(2, "chat") == Targets(
        first_response_s=900, next_response_s=1800, resolution_s=8 * H
    )
    assert standard.targets_for(1, "email") == Targets(first_response_s=H)
    assert standard.targets_for(3, "chat") == Targets(
        first_response_s=4 * H, resolution_s=3 * 86400
    )


def test_default_policy_is_built_in_unless_configured() -> None:
    policies, _ = sla.parse_policies(STANDARD, default_first_response_s=600)
    default = policies["default"]
    assert default.warning_ratio == 0.75
    assert default.targets_for(5, "sms") == Targets(first_response_s=600)
    mine = {"default": {"targets": [{"resolution": "1d"}]}}
    policies, problems = sla.parse_policies(mine, default_first_response_s=600)
    assert problems == []
    assert policies["default"].targets_for(3, "email") == Targets(resolution_s=86400)


def test_every_problem_is_reported_with_its_key() -> None:
    raw = {
        "standard": {
            "warning_at": 1.0,
            "colour": "red",
            "targets": [
                {"priority": [0, 3], "channel": "fax", "first_response": "15x", "speed": 1},
                {"channel": ["chat"], "resolution": 0},
            ],
        },
        "empty": {"targets": []},
        "flat": 3,
    }
    policies, problems = sla.parse_policies(raw, default_first_response_s=60)
    assert set(policies) == {"default"}
    assert problems == [
        "sla.standard.colour: unknown key",
        "sla.standard.warning_at: 1.0 must be a number between 0 and 1",
        "sla.standard.targets[0].speed: unknown key",
        "sla.standard.targets[0].priority: 0 is not a priority (1..5)",
        'sla.standard.targets[0].channel: "fax" is not a channel '
        "(email, chat, social, sms, voice, other)",
        'sla.standard.targets[0].first_response: "15x" is not a duration',
        "sla.standard.targets[1].resolution: must be longer than zero",
        "sla.standard.targets[1]: the last entry must match everything "
        "(no priority or channel filter)",
        "sla.empty.targets: needs at least one [[targets]] entry",
        "sla.flat: must be a table",
    ]


def test_a_custom_path_prefixes_problems() -> None:
    _, problems = sla.parse_policies(
        {"x": {"targets": [{"first_response": "1y"}]}}, default_first_response_s=60, path="t.sla"
    )
    assert problems == ['t.sla.x.targets[0].first_response: "1y" is not a duration']


# --- clocks, 24x7 ---------------------------------------------------------------------


def test_start_runs_first_response_and_resolution_with_warning_at_75_percent() -> None:
    s = started(first_response_s=4 * H, next_response_s=H, resolution_s=8 * H)
    assert [c.kind for c in s.clocks] == ["first_response", "resolution"]
    first = clock(s, "first_response")
    assert first.status == "running"
    assert first.due == MON + timedelta(hours=4)
    assert first.warning_at == MON + timedelta(hours=3)
    assert (s.policy, s.calendar, s.warning_ratio) == ("p", "always", 0.75)
    assert sla.deadline(s) == first.due


def test_no_targets_no_clocks() -> None:
    s = started()
    assert s.clocks == []
    assert sla.deadline(s) is None
    assert sla.timers("c", s) == []


def test_pause_keeps_the_time_left_and_resume_counts_on() -> None:
    s = started(first_response_s=4 * H)
    paused = sla.pause(s, ALWAYS, MON + timedelta(hours=1))
    c = clock(paused, "first_response")
    assert (c.status, c.remaining_s, c.due, c.warning_at) == ("paused", 3 * H, None, None)
    assert c.paused_at == MON + timedelta(hours=1)
    assert sla.deadline(paused) is None
    assert sla.timers("c", paused) == []
    back = sla.resume(paused, ALWAYS, MON + timedelta(hours=5))
    c = clock(back, "first_response")
    assert c.status == "running"
    assert c.due == MON + timedelta(hours=8)
    assert c.warning_at == MON + timedelta(hours=7)  # 2 h more of the 3 h warning budget
    assert c.paused_s == 4 * H
    assert c.paused_at is None
    assert c.remaining_s is None
    assert clock(s, "first_response").status == "running"  # inputs never change


def test_resume_after_the_warning_point_warns_at_once_or_not_again() -> None:
    s = started(first_response_s=4 * H)
    late = sla.pause(s, ALWAYS, MON + timedelta(hours=3, minutes=30))
    assert clock(
        sla.resume(late, ALWAYS, MON + timedelta(hours=9)), "first_response"
    ).warning_at == (MON + timedelta(hours=9))
    warned = replace(late, clocks=[replace(clock(late, "first_response"), warned_at=MON)])
    back = clock(sla.resume(warned, ALWAYS, MON + timedelta(hours=9)), "first_response")
    assert back.warning_at is None
    assert [t.kind for t in sla.timers("c", sla.resume(warned, ALWAYS, MON))] == ["breach"]


def test_an_overdue_clock_pauses_with_nothing_left_and_shows_breached() -> None:
    s = started(first_response_s=H)
    paused = sla.pause(s, ALWAYS, MON + timedelta(hours=2))
    c = clock(paused, "first_response")
    assert c.remaining_s == 0
    assert sla.clock_view(c, MON + timedelta(hours=3))["breached"] is True


def test_meet_and_next_response() -> None:
    targets = Targets(first_response_s=H, next_response_s=30 * 60, resolution_s=8 * H)
    s = sla.start(policy(), targets, ALWAYS, MON)
    # still owed a first response: a customer message starts nothing
    assert sla.start_next_response(s, targets, ALWAYS, MON + timedelta(minutes=5)) == s
    replied = sla.meet(s, sla.RESPONSE_KINDS, MON + timedelta(minutes=10))
    assert clock(replied, "first_response").status == "met"
    assert clock(replied, "first_response").met_at == MON + timedelta(minutes=10)
    assert clock(replied, "resolution").status == "running"
    assert sla.deadline(replied) == MON + timedelta(hours=8)  # the resolution clock now
    again = sla.start_next_response(replied, targets, ALWAYS, MON + timedelta(hours=1))
    nxt = clock(again, "next_response")
    assert (nxt.status, nxt.due) == ("running", MON + timedelta(hours=1, minutes=30))
    assert sla.deadline(again) == nxt.due
    # a second customer message before the reply does not restart it
    assert sla.start_next_response(again, targets, ALWAYS, MON + timedelta(hours=2)) == again
    met = sla.meet(again, sla.RESPONSE_KINDS, MON + timedelta(hours=2))
    fresh = sla.start_next_response(met, targets, ALWAYS, MON + timedelta(hours=3))
    assert [c.kind for c in fresh.clocks].count("next_response") == 1
    assert clock(fresh, "next_response").started_at == MON + timedelta(hours=3)
    # a late reply is met but shows breached
    view = sla.clock_view(clock(met, "next_response"), MON + timedelta(hours=4))
    assert view["status"] == "met"
    assert view["breached"] is True


def test_no_next_response_target_no_clock() -> None:
    targets = Targets(first_response_s=H)
    s = sla.meet(sla.start(policy(), targets, ALWAYS, MON), ["first_response"], MON)
    assert sla.start_next_response(s, targets, ALWAYS, MON + timedelta(hours=1)) == s


def test_meet_a_paused_clock_counts_the_pause() -> None:
    s = sla.pause(started(first_response_s=H), ALWAYS, MON + timedelta(minutes=10))
    met = clock(sla.meet(s, ["first_response"], MON + timedelta(minutes=40)), "first_response")
    assert (met.status, met.paused_s, met.paused_at) == ("met", 1800, None)
    assert sla.clock_view(met, MON + timedelta(days=1))["breached"] is False


def test_stop_then_reopen_resumes_the_resolution_clock() -> None:
    s = started(first_response_s=H, resolution_s=8 * H)
    resolved = sla.stop(s, ALWAYS, MON + timedelta(hours=2))
    assert clock(resolved, "first_response").status == "stopped"
    res = clock(resolved, "resolution")
    assert (res.status, res.remaining_s, res.met_at) == ("met", 6 * H, MON + timedelta(hours=2))
    assert sla.deadline(resolved) is None
    assert sla.timers("c", resolved) == []
    back = sla.reopen(resolved, ALWAYS, MON + timedelta(days=1))
    res = clock(back, "resolution")
    assert res.status == "running"
    assert res.due == MON + timedelta(days=1, hours=6)
    assert res.warning_at == MON + timedelta(days=1, hours=4)
    assert res.met_at is None
    assert clock(back, "first_response").status == "stopped"
    assert sla.deadline(back) == res.due


def test_deadline_prefers_response_clocks() -> None:
    s = started(first_response_s=10 * H, resolution_s=2 * H)
    assert sla.deadline(s) == MON + timedelta(hours=10)
    assert sla.deadline(None) is None


def test_timers_and_keys() -> None:
    s = started(first_response_s=4 * H, resolution_s=8 * H)
    armed = sla.timers("c1", s)
    assert {(t.kind, t.ref, t.at) for t in armed} == {
        ("warning", "first_response", MON + timedelta(hours=3)),
        ("breach", "first_response", MON + timedelta(hours=4)),
        ("warning", "resolution", MON + timedelta(hours=6)),
        ("breach", "resolution", MON + timedelta(hours=8)),
    }
    keys = sla.all_clock_timer_keys("c1")
    assert len(keys) == 6
    assert {t.key for t in armed} <= set(keys)
    assert "c1|breach|next_response" in keys


def test_clock_view() -> None:
    s = sla.pause(started(first_response_s=4 * H), ALWAYS, MON + timedelta(hours=1))
    view = sla.clock_view(clock(s, "first_response"), MON + timedelta(hours=2))
    assert view["paused_s"] == H  # the pause still going on counts
    assert view["remaining_s"] == 3 * H
    assert view["breached"] is False
    running = clock(started(first_response_s=4 * H), "first_response")
    assert sla.clock_view(running, MON + timedelta(hours=1), ALWAYS)["remaining_s"] == 3 * H
    assert sla.clock_view(running, MON + timedelta(hours=1))["remaining_s"] is None
    assert sla.clock_view(running, MON + timedelta(hours=4))["breached"] is True
    assert set(sla.clock_view(running, MON)) >= {
        "kind", "status", "target_s", "due", "paused_s", "met_at", "breached",
        "warned_at", "breached_at", "remaining_s",
    }  # fmt: skip


# --- clocks over business hours -------------------------------------------------------

FRI = datetime(2026, 1, 9, tzinfo=UTC)


def test_a_clock_started_after_hours_counts_from_the_next_opening() -> None:
    s = started(OFFICE, FRI + timedelta(hours=20), first_response_s=4 * H)
    c = clock(s, "first_response")
    assert c.due == FRI + timedelta(days=3, hours=13)  # Monday 13:00
    assert c.warning_at == FRI + timedelta(days=3, hours=12)
    assert s.calendar == "office"


def test_pending_over_the_weekend_costs_only_business_time() -> None:
    """Started Friday 15:00 (4 h target), pending Friday 16:00, the customer writes
    Monday 10:00: 3 business hours were left, so it is due Monday 13:00."""
    s = started(OFFICE, FRI + timedelta(hours=15), first_response_s=4 * H)
    assert clock(s, "first_response").due == FRI + timedelta(days=3, hours=11)
    paused = sla.pause(s, OFFICE, FRI + timedelta(hours=16))
    assert clock(paused, "first_response").remaining_s == 3 * H
    back = clock(sla.resume(paused, OFFICE, FRI + timedelta(days=3, hours=10)), "first_response")
    assert back.due == FRI + timedelta(days=3, hours=13)
    assert back.warning_at == FRI + timedelta(days=3, hours=12)  # 3 h of 4 used by then
    assert back.paused_s == (2 * 24 + 18) * H  # wall time waited


def test_resume_while_closed_counts_from_the_opening() -> None:
    s = started(OFFICE, FRI + timedelta(hours=15), first_response_s=4 * H)
    paused = sla.pause(s, OFFICE, FRI + timedelta(hours=16))
    back = clock(sla.resume(paused, OFFICE, FRI + timedelta(days=1, hours=12)), "first_response")
    assert back.due == FRI + timedelta(days=3, hours=12)  # Monday 09:00 + 3 h


@given(
    target_h=st.integers(min_value=1, max_value=40),
    pause_after_m=st.integers(min_value=0, max_value=7 * 24 * 60),
    pause_for_m=st.integers(min_value=0, max_value=7 * 24 * 60),
    start_m=st.integers(min_value=0, max_value=7 * 24 * 60),
)
def test_pause_and_resume_never_gain_or_lose_business_time(
    target_h: int, pause_after_m: int, pause_for_m: int, start_m: int
) -> None:
    t0 = MON + timedelta(minutes=start_m)
    paused_at = t0 + timedelta(minutes=pause_after_m)
    resumed_at = paused_at + timedelta(minutes=pause_for_m)
    s = started(OFFICE, t0, resolution_s=target_h * H)
    before = clock(s, "resolution")
    assert before.due is not None
    back = clock(sla.resume(sla.pause(s, OFFICE, paused_at), OFFICE, resumed_at), "resolution")
    assert back.due is not None
    used = OFFICE.between(t0, min(paused_at, before.due))
    if paused_at < before.due:
        assert used + OFFICE.between(resumed_at, back.due) == pytest.approx(target_h * H)
    else:
        assert back.due == OFFICE.next_open(resumed_at)
    assert back.paused_s == pause_for_m * 60
