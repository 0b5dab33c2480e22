"""Business-hours calendars: when an SLA clock counts, and how far a target reaches.

The model. A calendar has a timezone and, per weekday, a list of open intervals in local
wall-clock time (``"09:00-17:00"``; ``"24:00"`` is the end of the day). A local *date* is
open with its weekday's intervals unless it is closed: an explicit ``closed`` date, or a
public holiday of the configured country (from the ``holidays`` package) that ``open`` does
not list. For each local date the intervals are converted once to UTC instants (integer
microseconds, cached per date; holidays are computed per year, on first use), and all the
arithmetic walks those UTC intervals date by date, never second by second.

Because boundaries are converted per date, DST is exact: a 09:00-17:00 day stays eight
hours on either side of a change, and an interval that spans the change counts the real
elapsed seconds (00:00-06:00 is five hours on the spring-forward night, seven on the
fall-back one). A boundary is
*the first instant at which the wall clock shows that time or later*:

- a time that does not exist (inside a spring-forward gap, e.g. 02:30 in Madrid on the
  last Sunday of March) resolves to the instant of the jump (03:00 summer time), so an
  interval lying wholly inside the gap is empty that day;
- an ambiguous time (inside the repeated fall-back hour) resolves to its first occurrence.

Intervals are half-open, ``[start, end)``: a calendar is closed at the instant it closes.
Results are UTC, exact to the microsecond. A search that meets ``MAX_CLOSED_DAYS`` closed
dates in a row (say, every open weekday listed in ``closed``) raises ValueError.
``ALWAYS`` (named ``always``, 24x7 in UTC) is built in and cannot be redefined.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

Interval = tuple[int, int]
"""``(start, end)``: minutes after local midnight for hours, epoch microseconds for instants."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS_NAME = "always"
MAX_CLOSED_DAYS = 5 * 366
"""How many consecutive closed dates a search crosses before it gives up (ValueError)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class HolidayRegion:
    """Where public holidays come from: a ``holidays`` country code and subdivision."""

    country: str
    subdiv: str | None = None


class Calendar:
    """Open hours in one timezone; every method takes and returns aware instants.

    Built by :func:`parse_calendars`; the constructor trusts its (already validated)
    arguments: ``week`` holds seven sorted, non-overlapping lists of minute intervals,
    Monday first.
    """

    def __init__(
        self,
        name: str,
        *,
        tz: ZoneInfo,
        week: Sequence[Sequence[Interval]],
        holiday_region: HolidayRegion | None = None,
        closed: frozenset[date] = frozenset(),
        open_dates: frozenset[date] = frozenset(),
    ) -> None:
        self.name = name
        self.tz = tz
        self.week = tuple(tuple(day) for day in week)
        self.holiday_region = holiday_region
        self.closed = closed
        self.open_dates = open_dates
        # Per instance, so a calendar's cache dies with it.
        self._day = functools.lru_cache(maxsize=4096)(self._compute_day)
        self._holidays = functools.lru_cache(maxsize=64)(self._compute_holidays)

    def __repr__(self) -> str:
        return f"Calendar({self.name!r}, tz={self.tz.key!r})"

    def is_open(self, at: datetime) -> bool:
        now = _to_us(at)
        first = self._local_date(at) - timedelta(days=1)
        days = (first + timedelta(days=n) for n in range(3))
        return any(s <= now < e for day in days for s, e in self._day(day))

    def next_open(self, at: datetime) -> datetime:
        """``at`` if open, else the next opening instant (UTC)."""
        return self.add(at, 0)

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant (UTC) at which ``seconds`` business seconds have passed since ``start``.

        Zero seconds gives ``start`` if open, else the next opening. A target that runs out
        exactly at a closing time ends at that closing instant, never at the next opening,
        so the result is never strictly inside closed hours."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"business seconds must be finite and >= 0, got {seconds}")
        now = _to_us(start)
        left = round(seconds * 1_000_000)
        for s, e in self._intervals_from(self._local_date(start) - timedelta(days=1)):
            if e <= now:
                continue
            begin = max(s, now)
            if left <= e - begin:
                return _from_us(begin + left)
            left -= e - begin
        raise AssertionError("unreachable: _intervals_from is endless or raises")

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds in ``[start, end)``; 0 when ``end <= start``."""
        lo, hi = _to_us(start), _to_us(end)
        if hi <= lo:
            return 0.0
        day, last = self._local_date(start) - timedelta(days=1), self._local_date(end)
        total = 0
        while day <= last:
            for s, e in self._day(day):
                total += max(0, min(e, hi) - max(s, lo))
            day += timedelta(days=1)
        return total / 1_000_000

    def _intervals_from(self, day: date) -> Iterator[Interval]:
        """Open intervals (UTC µs) from local date ``day`` on, in order, without end."""
        closed_run = 0
        while True:
            spans = self._day(day)
            closed_run = 0 if spans else closed_run + 1
            if closed_run > MAX_CLOSED_DAYS:
                raise ValueError(
                    f"calendar {self.name!r} is closed for {MAX_CLOSED_DAYS} days after {day}"
                )
            yield from spans
            day += timedelta(days=1)

    def _local_date(self, at: datetime) -> date:
        _require_aware(at)
        return at.astimezone(self.tz).date()

    def _compute_day(self, day: date) -> tuple[Interval, ...]:
        if not self._is_business_date(day):
            return ()
        spans = (
            (_boundary(self.tz, day, a), _boundary(self.tz, day, b))
            for a, b in self.week[day.weekday()]
        )
        return tuple((s, e) for s, e in spans if e > s)

    def _is_business_date(self, day: date) -> bool:
        if day in self.closed:
            return False
        if day in self.open_dates or self.holiday_region is None:
            return True
        return day not in self._holidays(day.year)

    def _compute_holidays(self, year: int) -> frozenset[date]:
        region = self.holiday_region
        assert region is not None  # only asked when the calendar has a region
        return frozenset(holidays.country_holidays(region.country, region.subdiv, years=year))


ALWAYS = Calendar(ALWAYS_NAME, tz=ZoneInfo("UTC"), week=[[(0, _DAY_MIN)]] * 7)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"calendar arithmetic needs an aware datetime, got {at!r}")


def _to_us(at: datetime) -> int:
    _require_aware(at)
    return (at - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _boundary(tz: ZoneInfo, day: date, minute: int) -> int:
    """The first instant (epoch µs) at which the wall clock in ``tz`` shows ``day`` at
    ``minute`` or later: an ambiguous time's first occurrence, a skipped time's jump."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    early = wall.replace(tzinfo=tz)  # fold=0: the first occurrence, or pre-jump offset
    if early.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return _to_us(early)
    # ``wall`` falls in a gap: the jump lies between its two readings (whole seconds).
    before, after = _to_us(wall.replace(tzinfo=tz, fold=1)), _to_us(early)
    return _jump(tz, before // 1_000_000, after // 1_000_000) * 1_000_000


def _jump(tz: ZoneInfo, lo_s: int, hi_s: int) -> int:
    """Bisect ``(lo_s, hi_s]`` (epoch seconds) for the first second with ``hi_s``'s offset;
    tz transitions fall on whole seconds, so this is the exact transition instant."""
    offset = _offset(tz, hi_s)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(tz, mid) == offset:
            hi_s = mid
        else:
            lo_s = mid
    return hi_s


def _offset(tz: ZoneInfo, epoch_s: int) -> timedelta | None:
    return datetime.fromtimestamp(epoch_s, tz).utcoffset()


# --- configuration ---------------------------------------------------------------------

_KEYS = ("timezone", "hours", "holidays", "closed", "open")
_INTERVAL = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_calendars(
    raw: Mapping[str, Any], *, path: str = "calendars"
) -> tuple[dict[str, Calendar], list[str]]:
    """Every calendar of the ``calendars`` table (plus ``always``) and every problem found.

    A calendar with a problem is left out of the result; the caller refuses to start when
    problems is non-empty."""
    calendars: dict[str, Calendar] = {ALWAYS_NAME: ALWAYS}
    problems: list[str] = []
    for name, table in raw.items():
        where = f"{path}.{name}"
        if name == ALWAYS_NAME:
            problems.append(f"{where}: the built-in 24x7 calendar cannot be redefined")
        elif not isinstance(table, Mapping):
            problems.append(f"{where}: expected a table, got {_show(table)}")
        else:
            found: list[str] = []
            calendar = _parse_calendar(name, table, where, found)
            problems += found
            if calendar is not None and not found:
                calendars[name] = calendar
    return calendars, problems


def _parse_calendar(
    name: str, table: Mapping[str, Any], where: str, problems: list[str]
) -> Calendar | None:
    problems += [
        f"{where}.{key}: unknown key (expected one of {', '.join(_KEYS)})"
        for key in table
        if key not in _KEYS
    ]
    tz = _parse_timezone(table.get("timezone"), f"{where}.timezone", problems)
    week = _parse_hours(table.get("hours"), f"{where}.hours", problems)
    region = _parse_region(table.get("holidays"), f"{where}.holidays", problems)
    closed = _parse_dates(table.get("closed", []), f"{where}.closed", problems)
    open_dates = _parse_dates(table.get("open", []), f"{where}.open", problems)
    problems += [
        f"{where}.open: {day} is also listed in {where}.closed"
        for day in sorted(closed & open_dates)
    ]
    if tz is None or week is None:
        return None
    return Calendar(
        name, tz=tz, week=week, holiday_region=region, closed=closed, open_dates=open_dates
    )


def _parse_timezone(value: object, where: str, problems: list[str]) -> ZoneInfo | None:
    if value is None:
        problems.append(f'{where}: missing (an IANA name such as "Europe/Madrid")')
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: expected an IANA timezone name, got {_show(value)}")
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: unknown timezone {_show(value)}")
        return None


def _parse_hours(value: object, where: str, problems: list[str]) -> list[list[Interval]] | None:
    """Seven sorted, merged interval lists, or None if anything in ``hours`` is wrong."""
    if value is None:
        problems.append(f"{where}: missing (a calendar needs open hours)")
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a table of weekdays, got {_show(value)}")
        return None
    before = len(problems)
    week: list[list[Interval]] = [[] for _ in WEEKDAYS]
    for key, spans in value.items():
        if key not in WEEKDAYS:
            problems.append(f"{where}.{key}: unknown weekday (expected {', '.join(WEEKDAYS)})")
        else:
            week[WEEKDAYS.index(key)] = _parse_day(spans, f"{where}.{key}", problems)
    if len(problems) > before:
        return None
    if not any(week):
        problems.append(f"{where}: no open hours at all")
        return None
    return week


def _parse_day(value: object, where: str, problems: list[str]) -> list[Interval]:
    if not isinstance(value, list):
        problems.append(f'{where}: expected a list of "HH:MM-HH:MM", got {_show(value)}')
        return []
    spans: list[tuple[Interval, int]] = []
    for index, text in enumerate(value):
        span = _parse_interval(text, f"{where}[{index}]", problems)
        if span is not None:
            spans.append((span, index))
    spans.sort()
    merged: list[Interval] = []
    last = -1  # index of the interval that reaches furthest so far
    for (start, end), index in spans:
        if merged and start < merged[-1][1]:
            problems.append(
                f"{where}[{index}]: {_show(value[index])} overlaps {_show(value[last])}"
            )
            continue
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
        last = index
    return merged


def _parse_interval(text: object, where: str, problems: list[str]) -> Interval | None:
    match = _INTERVAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        problems.append(f'{where}: {_show(text)} is not "HH:MM-HH:MM"')
        return None
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or h1 > 23 or end > _DAY_MIN:
        problems.append(f"{where}: {_show(text)} is out of range (00:00 to 24:00)")
        return None
    if end <= start:
        problems.append(f"{where}: {_show(text)} ends before it starts")
        return None
    return start, end


def _parse_region(value: object, where: str, problems: list[str]) -> HolidayRegion | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a table {{ country, subdiv }}, got {_show(value)}")
        return None
    problems += [
        f"{where}.{key}: unknown key (expected country, subdiv)"
        for key in value
        if key not in ("country", "subdiv")
    ]
    country, subdiv = value.get("country"), value.get("subdiv")
    if not isinstance(country, str):
        problems.append(f'{where}.country: expected a country code such as "ES"')
        return None
    if subdiv is not None and not isinstance(subdiv, str):
        problems.append(f"{where}.subdiv: expected a subdivision code, got {_show(subdiv)}")
        return None
    try:
        holidays.country_holidays(country, subdiv)
    except NotImplementedError:
        if country in holidays.list_supported_countries():
            problems.append(f"{where}.subdiv: {country} has no subdivision {_show(subdiv)}")
        else:
            problems.append(f"{where}.country: unknown country {_show(country)}")
        return None
    return HolidayRegion(country, subdiv)


def _parse_dates(value: object, where: str, problems: list[str]) -> frozenset[date]:
    if not isinstance(value, list):
        problems.append(f'{where}: expected a list of dates "YYYY-MM-DD", got {_show(value)}')
        return frozenset()
    days: set[date] = set()
    for index, item in enumerate(value):
        day = _parse_date(item)
        if day is None:
            problems.append(f'{where}[{index}]: {_show(item)} is not a date "YYYY-MM-DD"')
        else:
            days.add(day)
    return frozenset(days)


def _parse_date(item: object) -> date | None:
    """A TOML date literal (``2026-12-24``) or the same as a string."""
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if not isinstance(item, str) or _DATE.fullmatch(item) is None:
        return None
    try:
        return date.fromisoformat(item)
    except ValueError:
        return None


def _show(value: object) -> str:
    """A string as TOML would write it, anything else by its type."""
    return f'"{value}"' if isinstance(value, str) else type(value).__name__
