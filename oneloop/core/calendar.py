"""Working-hours calendars: when a business unit works, and working time between two instants.

SLA clocks (lead first contact, issue 9; service tickets later) count working time, not wall
time: a lead created on Friday 17:30 with a one-hour target is due on Monday 09:30. This module
is pure (no database, no clock): the caller passes instants in and gets UTC instants back.

A ``WorkCalendar`` is a weekly pattern of local working windows, minus holidays, plus extra
working days (China's 调休 make-up days). Public holidays come from the ``holidays`` package,
computed per year on first use and cached. Its China calendar also records which weekend days
are worked in exchange for a longer holiday (``weekend_workdays``); we use them as extra working
days, so the default calendar knows the official make-up days for every year the package has
the State Council's notice for. Later years are the package's estimate and need configuration;
see docs/calendars.md.

Windows are wall-clock times in the calendar's zone and are turned into UTC day by day, so a
09:00–18:00 window stays 09:00–18:00 local when the clocks change, and a 00:00–24:00 window on
the day clocks go forward holds 23 hours of working time. The search steps by window and by day,
never by minute, and gives up with ``NoWorkingTime`` instead of looping over a calendar that
never works again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oneloop.core.errors import FieldError, ValidationFailed

DAY = timedelta(days=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Searching further than this for the next working moment means the calendar is broken (say,
# every day declared a holiday), not that work resumes in three years.
MAX_IDLE_DAYS = 2 * 366
_ONE_TICK = timedelta(microseconds=1)
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class NoWorkingTime(ValidationFailed):
    """The calendar has no working time within ``MAX_IDLE_DAYS`` of the instant asked about."""

    code = "no-working-time"
    title = "Calendar has no working time"


@dataclass(frozen=True, slots=True)
class Window:
    """A working window in local wall-clock time, as offsets from local midnight.

    Offsets rather than ``time`` values so that a window may end at 24:00 (a 24/7 desk is
    ``Window(timedelta(0), DAY)``). The end is exclusive: 18:00 is not working time.
    """

    start: timedelta
    end: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.start < self.end <= DAY:
            raise ValueError(f"a window needs 00:00 <= start < end <= 24:00, got {self}")

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"09:00-18:00"`` → ``Window``; ``ValueError`` saying what is wrong otherwise."""
        match = _WINDOW_RE.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a window like '09:00-18:00'")
        sh, sm, eh, em = (int(g) for g in match.groups())
        start, end = _offset(sh, sm, text), _offset(eh, em, text)
        if end <= start:
            raise ValueError(f"{text!r} ends before or when it starts")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _offset(hours: int, minutes: int, text: str) -> timedelta:
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r} has a time outside 00:00-24:00")
    return timedelta(hours=hours, minutes=minutes)


def _clock(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class WorkCalendar:
    """When a business unit works. Hashable, so callers may cache by calendar.

    ``week`` has seven entries, Monday first, each a sorted tuple of disjoint windows.
    Precedence for a date, strongest first: an explicit holiday, an explicit extra working
    day, a public holiday, a public make-up working day, the weekly pattern. Extra working days
    use ``makeup_windows``, by default the first working weekday's windows (Monday's, usually).
    """

    time_zone: str
    week: tuple[tuple[Window, ...], ...]
    holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    makeup_windows: tuple[Window, ...] | None = None
    public_holidays: str | None = None
    public_holidays_subdivision: str | None = None

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # fails early on an unknown zone
        if len(self.week) != 7:
            raise ValueError(f"a week has 7 days, got {len(self.week)}")
        for windows in (*self.week, self.makeup_windows or ()):
            if any(b.start < a.end for a, b in pairwise(windows)):
                raise ValueError(f"windows must be sorted and disjoint: {windows}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # zoneinfo caches instances per key

    def default_makeup_windows(self) -> tuple[Window, ...]:
        """A make-up day is worked like an ordinary working day unless configured otherwise."""
        return self.makeup_windows or next((w for w in self.week if w), ())

    def is_holiday(self, day: date) -> bool:
        """Whether the date is off as a holiday (explicit or public, on a weekday or not), as
        opposed to a day the weekly pattern does not work; an extra working day is not."""
        if day in self.holidays:
            return True
        if day in self.extra_working_days:
            return False
        return self.public_holidays is not None and day in self._public(day).days_off

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The local working windows of one date, holidays and make-up days applied."""
        if day in self.holidays:
            return ()
        if day in self.extra_working_days:
            return self.default_makeup_windows()
        if self.public_holidays is not None:
            public = self._public(day)
            if day in public.days_off:
                return ()
            if day in public.workdays:
                return self.default_makeup_windows()
        return self.week[day.weekday()]

    def _public(self, day: date) -> _PublicYear:
        assert self.public_holidays is not None
        return _public_year(self.public_holidays, self.public_holidays_subdivision, day.year)


@dataclass(frozen=True, slots=True)
class _PublicYear:
    days_off: frozenset[date]
    workdays: frozenset[date]


@lru_cache(maxsize=512)
def _public_year(country: str, subdivision: str | None, year: int) -> _PublicYear:
    """One year of a country's public holidays and make-up working days, computed once.

    A make-up day may precede its holiday's year (2001-12-29 was worked for New Year 2002),
    so the next year's table is read too; only this year's dates are kept.
    """
    this_year = holidays_lib.country_holidays(country, subdiv=subdivision, years=year)
    next_year = holidays_lib.country_holidays(country, subdiv=subdivision, years=year + 1)
    workdays = {
        d for table in (this_year, next_year) for d in table.weekend_workdays if d.year == year
    }
    return _PublicYear(
        days_off=frozenset(d for d in this_year if d.year == year),
        workdays=frozenset(workdays),
    )


# ---------------------------------------------------------------------------------------------
# Configuration: the JSON a business unit stores and the API accepts.


class WeekConfig(BaseModel):
    """Windows per weekday as ``"HH:MM-HH:MM"`` strings; a day left out is not worked."""

    model_config = ConfigDict(extra="forbid")

    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)


def _office_week() -> WeekConfig:
    office = ["09:00-18:00"]
    return WeekConfig(mon=office, tue=office, wed=office, thu=office, fri=office)


class CalendarConfig(BaseModel):
    """A business unit's calendar; the defaults are the group default (Shanghai office hours).

    Shape only: ``calendar_from_config`` checks the meaning (zone, windows, conflicts) and
    names every bad field at once.
    """

    model_config = ConfigDict(extra="forbid")

    time_zone: str = "Asia/Shanghai"
    week: WeekConfig = Field(default_factory=_office_week)
    public_holidays: str | None = Field(
        "CN", description="ISO 3166 country code for the holidays package, or null for none"
    )
    public_holidays_subdivision: str | None = None
    holidays: list[date] = Field(default_factory=list)
    extra_working_days: list[date] = Field(default_factory=list)
    makeup_windows: list[str] | None = Field(
        None, description="windows of extra working days; default: the first working weekday's"
    )


def calendar_from_config(config: CalendarConfig | Mapping[str, object]) -> WorkCalendar:
    """A stored or submitted calendar → ``WorkCalendar``, or ``ValidationFailed`` naming each
    bad field (the API answers 422 with them)."""
    if not isinstance(config, CalendarConfig):
        try:
            config = CalendarConfig.model_validate(config)
        except ValidationError as exc:
            raise _invalid([FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    errors: list[FieldError] = []
    _check_zone(config.time_zone, errors)
    week = tuple(_windows(getattr(config.week, name), ("week", name), errors) for name in WEEKDAYS)
    week_is_valid = not any(e.loc[:1] == ("week",) for e in errors)
    if week_is_valid and not any(week):
        errors.append(FieldError(("week",), "the week has no working time; add a window"))
    makeup = (
        None
        if config.makeup_windows is None
        else _windows(config.makeup_windows, ("makeup_windows",), errors)
    )
    if config.makeup_windows is not None and not config.makeup_windows:
        errors.append(FieldError(("makeup_windows",), "give at least one window, or omit it"))
    country = _check_public(config, errors)
    holidays = set(config.holidays)
    errors.extend(
        FieldError(("extra_working_days", i), f"{day} is also listed under holidays")
        for i, day in enumerate(config.extra_working_days)
        if day in holidays
    )
    if errors:
        raise _invalid(errors)
    return WorkCalendar(
        time_zone=config.time_zone,
        week=week,
        holidays=frozenset(holidays),
        extra_working_days=frozenset(config.extra_working_days),
        makeup_windows=makeup,
        public_holidays=country,
        public_holidays_subdivision=config.public_holidays_subdivision if country else None,
    )


def calendar_to_config(cal: WorkCalendar) -> CalendarConfig:
    """The inverse of ``calendar_from_config``, for showing and editing a calendar."""
    return CalendarConfig(
        time_zone=cal.time_zone,
        week=WeekConfig(**{name: [str(w) for w in cal.week[i]] for i, name in enumerate(WEEKDAYS)}),
        public_holidays=cal.public_holidays,
        public_holidays_subdivision=cal.public_holidays_subdivision,
        holidays=sorted(cal.holidays),
        extra_working_days=sorted(cal.extra_working_days),
        makeup_windows=None if cal.makeup_windows is None else [str(w) for w in cal.makeup_windows],
    )


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """Asia/Shanghai, Monday–Friday 09:00–18:00, Chinese public holidays and make-up days."""
    return calendar_from_config(CalendarConfig())


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    detail = "; ".join(f"{e.path or '(root)'}: {e.msg}" for e in errors)
    return ValidationFailed(f"calendar config is invalid: {detail}", errors=errors)


def _check_zone(name: str, errors: list[FieldError]) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError(("time_zone",), f"unknown time zone {name!r}; use an IANA name"))


def _windows(
    texts: list[str], loc: tuple[str | int, ...], errors: list[FieldError]
) -> tuple[Window, ...]:
    parsed: list[tuple[int, Window]] = []
    for i, text in enumerate(texts):
        try:
            parsed.append((i, Window.parse(text)))
        except ValueError as exc:
            errors.append(FieldError((*loc, i), str(exc)))
    parsed.sort(key=lambda item: item[1].start)
    reach: Window | None = None  # the window reaching latest so far
    for i, window in parsed:
        if reach is not None and window.start < reach.end:
            errors.append(FieldError((*loc, i), f"{window} overlaps {reach}"))
        if reach is None or window.end > reach.end:
            reach = window
    return tuple(w for _, w in parsed)


def _check_public(config: CalendarConfig, errors: list[FieldError]) -> str | None:
    if config.public_holidays is None:
        if config.public_holidays_subdivision is not None:
            errors.append(FieldError(("public_holidays_subdivision",), "needs public_holidays set"))
        return None
    country = config.public_holidays.strip().upper()
    if country not in holidays_lib.list_supported_countries():
        errors.append(FieldError(("public_holidays",), f"no public holidays known for {country!r}"))
        return None
    try:
        holidays_lib.country_holidays(country, subdiv=config.public_holidays_subdivision)
    except NotImplementedError as exc:
        errors.append(FieldError(("public_holidays_subdivision",), str(exc)))
    return country


# ---------------------------------------------------------------------------------------------
# Working time.


def is_working(cal: WorkCalendar, t: datetime) -> bool:
    """Whether ``t`` falls inside a working window (start inclusive, end exclusive)."""
    at = _utc(t)
    return next(_intervals(cal, at, until=at + _ONE_TICK), None) is not None


def next_working_moment(cal: WorkCalendar, t: datetime) -> datetime:
    """``t`` itself (in UTC) when working, else the start of the next working window."""
    start, _ = next(_intervals(cal, _utc(t)))
    return start


def add_working_time(cal: WorkCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which ``duration`` of working time has passed since ``start``.

    This is an SLA deadline: a duration used up exactly at a window's end gives that end
    (Friday 17:00 + 1 h is Friday 18:00, not Monday 09:00); a zero duration gives ``start``.
    """
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    at = _utc(start)
    if not duration:
        return at
    remaining = duration
    for begin, end in _intervals(cal, at):
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: _intervals without a bound never ends")


def working_time_between(cal: WorkCalendar, a: datetime, b: datetime) -> timedelta:
    """Working time in ``[a, b)``; zero when ``b <= a``."""
    since, until = _utc(a), _utc(b)
    if until <= since:
        return timedelta(0)
    total = timedelta(0)
    for begin, end in _intervals(cal, since, until=until):
        total += min(end, until) - begin
    return total


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got naive {t.isoformat()}")
    return t.astimezone(UTC)


def _local(day: date, offset: timedelta, zone: ZoneInfo) -> datetime:
    # Aware + timedelta is wall-clock arithmetic; the UTC offset is resolved afterwards, so
    # 09:00 means 09:00 local on either side of a DST change.
    return (datetime.combine(day, time(), tzinfo=zone) + offset).astimezone(UTC)


def _intervals(
    cal: WorkCalendar, since: datetime, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals in UTC, in order, clipped to start no earlier than ``since``.

    Stops before an interval starting at or after ``until``; without ``until`` it runs for
    ever, or raises ``NoWorkingTime`` after ``MAX_IDLE_DAYS`` days in a row without work.
    Each boundary is clamped to the previous one, so local times skipped or repeated by a DST
    change can neither reorder nor overlap intervals.
    """
    zone = cal.zone
    # Yesterday's windows cannot reach today, but starting a day early is cheap and safe in a
    # zone whose clocks change at midnight.
    day = max(since.astimezone(zone).date() - DAY, date.min)
    floor = since
    idle_days = 0
    while True:
        if until is not None and _local(day, timedelta(0), zone) >= until:
            return
        worked = False
        for window in cal.windows_on(day):
            begin = max(_local(day, window.start, zone), floor)
            end = _local(day, window.end, zone)
            if end <= begin:
                continue
            if until is not None and begin >= until:
                return
            floor = end
            worked = True
            yield begin, end
        idle_days = 0 if worked else idle_days + 1
        if until is None and idle_days > MAX_IDLE_DAYS:
            raise NoWorkingTime(
                f"the calendar ({cal.time_zone}) has no working time in the {MAX_IDLE_DAYS} days"
                f" after {since.isoformat()}; check its week and holidays",
                errors=[FieldError(("week",), "no working time within two years")],
            )
        day += DAY
