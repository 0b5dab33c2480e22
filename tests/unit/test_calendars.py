"""Business-hours calendars: the issue's examples, DST, holidays, and config problems."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from router.calendars import ALWAYS, Calendar, parse_calendars

MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS_9_17 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
HOUR = 3600


def calendar(**table: Any) -> Calendar:
    """One calendar named ``c`` (Madrid, 9-17 Mon-Fri unless overridden); no problems."""
    table = {"timezone": "Europe/Madrid", "hours": WEEKDAYS_9_17, **table}
    calendars, problems = parse_calendars({"c": table})
    assert problems == []
    return calendars["c"]


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


def problems_of(table: Any, name: str = "c") -> list[str]:
    calendars, problems = parse_calendars({name: table})
    assert name not in calendars or name == "always"
    return problems


# --- the examples ----------------------------------------------------------------


def test_friday_afternoon_target_is_due_monday_morning() -> None:
    due = calendar().add(madrid(2026, 1, 16, 16, 30), 4 * HOUR)
    assert due == madrid(2026, 1, 19, 12, 30)
    assert due.tzinfo is UTC


def test_due_date_across_the_spring_dst_change() -> None:
    due = calendar().add(madrid(2026, 3, 27, 16, 30), 4 * HOUR)
    assert due == datetime(2026, 3, 30, 10, 30, tzinfo=UTC)
    assert due.astimezone(MADRID).hour == 12


def test_a_working_day_stays_eight_hours_on_both_sides_of_dst() -> None:
    cal = calendar()
    for day in (date(2026, 3, 27), date(2026, 3, 30), date(2026, 10, 23), date(2026, 10, 26)):
        start = datetime.combine(day, datetime.min.time(), MADRID)
        assert cal.between(start, start + timedelta(days=1)) == 8 * HOUR


def test_public_holidays_are_closed_all_day() -> None:
    cal = calendar(holidays={"country": "ES", "subdiv": "MD"})
    # Tuesday 6 January is Epiphany.
    assert not cal.is_open(madrid(2026, 1, 6, 10))
    assert cal.add(madrid(2026, 1, 5, 16), 2 * HOUR) == madrid(2026, 1, 7, 10)
    # Friday 25 December is Christmas: Thursday evening runs on into Monday.
    assert cal.add(madrid(2026, 12, 24, 16), 2 * HOUR) == madrid(2026, 12, 28, 10)


def test_open_dates_override_a_holiday() -> None:
    cal = calendar(holidays={"country": "ES", "subdiv": "MD"}, open=["2026-01-06"])
    assert cal.add(madrid(2026, 1, 5, 16), 2 * HOUR) == madrid(2026, 1, 6, 10)


def test_explicit_closed_dates_accept_strings_and_toml_dates() -> None:
    cal = calendar(closed=["2026-12-31", date(2026, 12, 30)])
    assert cal.add(madrid(2026, 12, 29, 16), 2 * HOUR) == madrid(2027, 1, 1, 10)


def test_split_day_skips_the_lunch_break() -> None:
    cal = calendar(hours={**WEEKDAYS_9_17, "fri": ["09:00-14:00", "15:00-18:00"]})
    assert cal.add(madrid(2026, 1, 16, 13, 30), HOUR) == madrid(2026, 1, 16, 15, 30)
    assert not cal.is_open(madrid(2026, 1, 16, 14, 30))
    assert cal.between(madrid(2026, 1, 16), madrid(2026, 1, 17)) == 8 * HOUR


# --- edges of add, between, next_open ------------------------------------------------------


def test_a_target_that_runs_out_at_closing_ends_at_closing() -> None:
    cal = calendar()
    assert cal.add(madrid(2026, 1, 16, 16), HOUR) == madrid(2026, 1, 16, 17)
    assert not cal.is_open(madrid(2026, 1, 16, 17))


def test_zero_seconds_is_start_when_open_else_the_next_opening() -> None:
    cal = calendar()
    assert cal.add(madrid(2026, 1, 14, 10), 0) == madrid(2026, 1, 14, 10)
    assert cal.add(madrid(2026, 1, 16, 17), 0) == madrid(2026, 1, 19, 9)
    assert cal.next_open(madrid(2026, 1, 17, 12)) == madrid(2026, 1, 19, 9)
    assert cal.next_open(madrid(2026, 1, 14, 9)) == madrid(2026, 1, 14, 9)


def test_between_counts_business_seconds_only() -> None:
    cal = calendar()
    assert cal.between(madrid(2026, 1, 16, 16, 30), madrid(2026, 1, 19, 12, 30)) == 4 * HOUR
    assert cal.between(madrid(2026, 1, 19, 12), madrid(2026, 1, 19, 11)) == 0
    assert cal.between(madrid(2026, 1, 17), madrid(2026, 1, 18)) == 0


def test_between_across_months_and_add_of_weeks() -> None:
    cal = calendar(holidays={"country": "ES", "subdiv": "MD"})
    # January-February 2026: 42 weekdays, minus New Year's Day and Epiphany.
    assert cal.between(madrid(2026, 1, 1), madrid(2026, 3, 1)) == 40 * 8 * HOUR
    assert cal.add(madrid(2026, 1, 1), 40 * 8 * HOUR) == madrid(2026, 2, 27, 17)
    # A year of business time from the start of 2026 still lands on a working instant.
    due = cal.add(madrid(2026, 1, 1), 250 * 8 * HOUR)
    assert cal.between(madrid(2026, 1, 1), due) == 250 * 8 * HOUR


def test_always_is_plain_elapsed_time() -> None:
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert ALWAYS.name == "always"
    assert ALWAYS.add(start, 86_400.5) == start + timedelta(seconds=86_400.5)
    assert ALWAYS.between(start, start + timedelta(days=400)) == 400 * 86_400
    assert ALWAYS.is_open(start)


def test_any_timezone_in_gives_the_same_instant_out() -> None:
    cal = calendar()
    local = madrid(2026, 1, 16, 16, 30)
    assert cal.add(local, HOUR) == cal.add(local.astimezone(ZoneInfo("Asia/Tokyo")), HOUR)


def test_naive_datetimes_and_negative_targets_are_refused() -> None:
    cal = calendar()
    with pytest.raises(ValueError, match="aware"):
        cal.is_open(datetime(2026, 1, 14, 10))
    with pytest.raises(ValueError, match=">= 0"):
        cal.add(madrid(2026, 1, 14, 10), -1)
    with pytest.raises(ValueError, match="finite"):
        cal.add(madrid(2026, 1, 14, 10), float("inf"))


def test_a_long_closed_run_gives_up_instead_of_searching_forever() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(52 * 7)]
    cal = calendar(hours={"mon": ["09:00-17:00"]}, closed=mondays)
    with pytest.raises(ValueError, match="closed for"):
        cal.add(madrid(2026, 1, 1), HOUR)
    with pytest.raises(ValueError, match="closed for"):
        cal.next_open(madrid(2026, 1, 1))
    assert cal.between(madrid(2026, 1, 1), madrid(2031, 1, 1)) == 0


# --- DST inside an interval ----------------------------------------------------------------


def test_an_interval_across_a_dst_change_counts_real_elapsed_seconds() -> None:
    cal = calendar(hours={"sun": ["00:00-06:00"]})
    assert cal.between(madrid(2026, 3, 29), madrid(2026, 3, 30)) == 5 * HOUR
    assert cal.between(madrid(2026, 10, 25), madrid(2026, 10, 26)) == 7 * HOUR
    assert cal.add(madrid(2026, 3, 29), 5 * HOUR) == madrid(2026, 3, 29, 6)


def test_a_skipped_local_time_opens_at_the_jump() -> None:
    cal = calendar(hours={"sun": ["02:30-04:00", "10:00-11:00"]})
    # 02:30 does not exist on 29 March: the clock jumps from 02:00 to 03:00 summer time.
    assert cal.next_open(madrid(2026, 3, 29, 0)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert cal.between(madrid(2026, 3, 29), madrid(2026, 3, 30)) == 2 * HOUR


def test_an_interval_wholly_inside_the_gap_is_empty_that_day() -> None:
    cal = calendar(hours={"sun": ["02:00-02:45", "10:00-11:00"]})
    assert cal.between(madrid(2026, 3, 29), madrid(2026, 3, 30)) == HOUR
    assert cal.between(madrid(2026, 3, 22), madrid(2026, 3, 23)) == HOUR + 45 * 60


def test_an_ambiguous_local_time_takes_its_first_occurrence() -> None:
    cal = calendar(hours={"sun": ["02:30-03:30"]})
    # 25 October: 02:00-03:00 happens twice; 02:30 is the summer-time one.
    assert cal.next_open(madrid(2026, 10, 25)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert cal.between(madrid(2026, 10, 25), madrid(2026, 10, 26)) == 2 * HOUR


# --- configuration ------------------------------------------------------------------------

EXAMPLE = """
[calendars.madrid]
timezone = "Europe/Madrid"
hours = { mon = ["09:00-17:00"], tue = ["09:00-17:00"], wed = ["09:00-17:00"], \
thu = ["09:00-17:00"], fri = ["09:00-14:00", "15:00-18:00"] }
holidays = { country = "ES", subdiv = "MD" }
closed = ["2026-12-24", 2026-12-31]
open = []

[calendars.night]
timezone = "Europe/London"
hours = { sat = ["22:00-24:00"], sun = ["00:00-06:00"] }
"""


def test_the_documented_example_parses() -> None:
    calendars, problems = parse_calendars(tomllib.loads(EXAMPLE)["calendars"])
    assert problems == []
    assert set(calendars) == {"always", "madrid", "night"}
    assert calendars["always"] is ALWAYS
    assert calendars["madrid"].name == "madrid"
    assert not calendars["madrid"].is_open(madrid(2026, 12, 31, 10))
    night = calendars["night"]
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 1, 3, 23, tzinfo=london)
    assert night.add(start, 2 * HOUR) == datetime(2026, 1, 4, 1, tzinfo=london)


def test_no_calendars_is_just_always() -> None:
    assert parse_calendars({}) == ({"always": ALWAYS}, [])


def test_adjacent_intervals_are_fine_and_whole_day_is_24_hours() -> None:
    cal = calendar(hours={"mon": ["09:00-12:00", "12:00-13:00"], "tue": ["00:00-24:00"]})
    assert cal.between(madrid(2026, 1, 12), madrid(2026, 1, 14)) == 4 * HOUR + 24 * HOUR


def test_always_cannot_be_redefined() -> None:
    assert problems_of({"timezone": "UTC"}, name="always") == [
        "calendars.always: the built-in 24x7 calendar cannot be redefined"
    ]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"timezone": "Mars/Olympus"}, 'calendars.c.timezone: unknown timezone "Mars/Olympus"'),
        ({"timezone": 3}, "calendars.c.timezone: expected an IANA timezone name, got int"),
        ({"timezone": None}, "calendars.c.timezone: missing"),
        ({"hours": None}, "calendars.c.hours: missing"),
        ({"hours": {"monday": ["09:00-17:00"]}}, "calendars.c.hours.monday: unknown weekday"),
        ({"hours": {"mon": "09:00-17:00"}}, "calendars.c.hours.mon: expected a list"),
        (
            {"hours": {"mon": ["09:00-17:00", "17:00-09:00"]}},
            'calendars.c.hours.mon[1]: "17:00-09:00" ends before it starts',
        ),
        ({"hours": {"mon": ["9:00-17:00"]}}, 'calendars.c.hours.mon[0]: "9:00-17:00" is not'),
        ({"hours": {"mon": [900]}}, "calendars.c.hours.mon[0]: int is not"),
        ({"hours": {"mon": ["09:60-17:00"]}}, 'calendars.c.hours.mon[0]: "09:60-17:00" is out'),
        ({"hours": {"mon": ["24:00-24:00"]}}, 'calendars.c.hours.mon[0]: "24:00-24:00" is out'),
        ({"hours": {"mon": ["09:00-24:01"]}}, 'calendars.c.hours.mon[0]: "09:00-24:01" is out'),
        (
            {"hours": {"fri": ["13:00-15:00", "09:00-14:00"]}},
            'calendars.c.hours.fri[0]: "13:00-15:00" overlaps "09:00-14:00"',
        ),
        ({"hours": {"mon": [], "sat": []}}, "calendars.c.hours: no open hours at all"),
        ({"holidays": {"country": "XX"}}, 'calendars.c.holidays.country: unknown country "XX"'),
        (
            {"holidays": {"country": "ES", "subdiv": "ZZ"}},
            'calendars.c.holidays.subdiv: ES has no subdivision "ZZ"',
        ),
        ({"holidays": {"subdiv": "MD"}}, "calendars.c.holidays.country: expected a country"),
        ({"holidays": "ES"}, "calendars.c.holidays: expected a table"),
        (
            {"holidays": {"country": "ES", "region": "MD"}},
            "calendars.c.holidays.region: unknown key",
        ),
        ({"closed": ["2026-13-01"]}, 'calendars.c.closed[0]: "2026-13-01" is not a date'),
        ({"closed": ["20261224"]}, 'calendars.c.closed[0]: "20261224" is not a date'),
        ({"open": "2026-01-06"}, "calendars.c.open: expected a list of dates"),
        (
            {"closed": ["2026-01-06"], "open": ["2026-01-06"]},
            "calendars.c.open: 2026-01-06 is also listed in calendars.c.closed",
        ),
        ({"colour": "red"}, "calendars.c.colour: unknown key"),
    ],
)
def test_each_problem_names_its_key(table: dict[str, Any], problem: str) -> None:
    full = {"timezone": "Europe/Madrid", "hours": WEEKDAYS_9_17, **table}
    full = {key: value for key, value in full.items() if value is not None}
    problems = problems_of(full)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem)


def test_every_problem_is_reported_at_once() -> None:
    calendars, problems = parse_calendars(
        {
            "bad": {
                "timezone": "Nowhere/Land",
                "hours": {"mon": ["17:00-09:00"], "funday": []},
                "closed": ["soon"],
                "extra": 1,
            },
            "not_a_table": "9-5",
            "good": {"timezone": "UTC", "hours": {"sun": ["10:00-11:00"]}},
        }
    )
    assert set(calendars) == {"always", "good"}
    assert sorted(problems) == [
        'calendars.bad.closed[0]: "soon" is not a date "YYYY-MM-DD"',
        "calendars.bad.extra: unknown key (expected one of timezone, hours, holidays, "
        "closed, open)",
        "calendars.bad.hours.funday: unknown weekday (expected mon, tue, wed, thu, fri, sat, sun)",
        'calendars.bad.hours.mon[0]: "17:00-09:00" ends before it starts',
        'calendars.bad.timezone: unknown timezone "Nowhere/Land"',
        'calendars.not_a_table: expected a table, got "9-5"',
    ]


def test_a_custom_path_prefixes_problems() -> None:
    _, problems = parse_calendars({"x": {"timezone": "UTC"}}, path="config.calendars")
    assert problems == ["config.calendars.x.hours: missing (a calendar needs open hours)"]
