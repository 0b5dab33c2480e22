"""Properties of calendar arithmetic over several calendars, DST zones and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from router.calendars import Calendar, parse_calendars

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")
TABLES = {
    "madrid": {
        "timezone": "Europe/Madrid",
        "hours": {day: ["09:00-17:00"] for day in WEEKDAYS},
        "holidays": {"country": "ES", "subdiv": "MD"},
        "closed": ["2026-12-24", "2027-12-24"],
    },
    "new_york": {
        "timezone": "America/New_York",
        "hours": {
            **{day: ["08:00-12:00", "13:00-17:30"] for day in WEEKDAYS},
            "sat": ["10:00-14:00"],
        },
        "holidays": {"country": "US", "subdiv": "NY"},
    },
    # Spans midnight and both London DST changes (01:00 jumps to 02:00 and back).
    "night": {
        "timezone": "Europe/London",
        "hours": {day: ["00:00-06:00", "22:00-24:00"] for day in EVERY_DAY},
    },
    "lord_howe": {  # a half-hour DST shift at 02:00 local, open across it
        "timezone": "Australia/Lord_Howe",
        "hours": {day: ["01:00-03:00", "12:00-12:01"] for day in EVERY_DAY},
    },
}
CALENDARS, PROBLEMS = parse_calendars(TABLES)
assert PROBLEMS == []

US = timedelta(microseconds=1)
TWO_WEEKS_S = 14 * 86_400

calendars = st.sampled_from(sorted(CALENDARS.values(), key=lambda cal: cal.name))
DST_CHANGES = [  # Madrid, London, New York and Lord Howe, spring and autumn
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
]
instants = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda change, shift: change + shift,
        st.sampled_from(DST_CHANGES),
        st.timedeltas(timedelta(days=-4), timedelta(days=1)),
    ),
)
# Whole seconds hit interval edges exactly; floats exercise sub-second rounding.
targets = st.one_of(
    st.integers(0, TWO_WEEKS_S),
    st.floats(0, TWO_WEEKS_S, allow_nan=False),
    st.sampled_from([0, 3600, 8 * 3600, 86_400]),
)


def close_enough(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= max(1e-6 * expected, 1e-3)


def never_inside_closed_hours(cal: Calendar, at: datetime) -> bool:
    return cal.is_open(at) or cal.is_open(at - US)


@given(calendars, instants, targets)
def test_add_never_lands_inside_closed_hours(cal: Calendar, start: datetime, s: float) -> None:
    due = cal.add(start, s)
    assert due.tzinfo is UTC
    assert due >= start
    assert never_inside_closed_hours(cal, due)


@given(calendars, instants, targets, targets)
def test_add_is_monotonic_in_the_target(cal: Calendar, start: datetime, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert cal.add(start, low) <= cal.add(start, high)


@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(days=10)), targets)
def test_add_is_monotonic_in_the_start(
    cal: Calendar, start: datetime, later: timedelta, s: float
) -> None:
    assert cal.add(start, s) <= cal.add(start + later, s)


@given(calendars, instants, targets)
def test_between_undoes_add(cal: Calendar, start: datetime, s: float) -> None:
    assert close_enough(cal.between(start, cal.add(start, s)), s)


@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(days=20)))
def test_add_of_between_reaches_no_later_than_end(
    cal: Calendar, start: datetime, span: timedelta
) -> None:
    end = start + span
    elapsed = cal.between(start, end)
    if cal.is_open(end) or elapsed > 0:
        assert cal.add(start, elapsed) <= end
    if end > start and cal.is_open(end - US):  # counting right up to end: reaches it exactly
        assert cal.add(start, elapsed) == end


@given(
    calendars,
    instants,
    st.timedeltas(timedelta(0), timedelta(days=10)),
    st.timedeltas(timedelta(0), timedelta(days=10)),
)
def test_between_is_additive(cal: Calendar, a: datetime, ab: timedelta, bc: timedelta) -> None:
    b, c = a + ab, a + ab + bc
    assert close_enough(cal.between(a, b) + cal.between(b, c), cal.between(a, c))
    assert cal.between(a, c) <= (c - a).total_seconds()


@given(calendars, instants)
def test_next_open_is_the_first_open_instant(cal: Calendar, at: datetime) -> None:
    opening = cal.next_open(at)
    assert cal.is_open(opening)
    assert opening == at or not cal.is_open(at)
    assert cal.between(at, opening) == 0
